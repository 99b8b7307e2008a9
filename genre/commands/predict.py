"""``genre predict``: reconstruct a CMRxRecon tree into mirrored ``img4ranking`` files."""

from __future__ import annotations

import argparse
import logging
import os
from collections.abc import Mapping
from pathlib import Path

from genre.data.contract import OutputMode
from genre.recon import ALL_METHODS, FALLBACKS

log = logging.getLogger("genre.predict")

EXAMPLE = """\
examples:
  genre synth --out data/demo --layout validation
  genre predict --input data/demo --output out/sense --method sense --output-mode ranking
  genre predict --input data/demo --output out/guarded --method genre --guard sense
  genre predict --input data/demo --output out/adapted --method genre --adapt 30

  # four workers sharing one tree, one per GPU, then one check of the whole tree
  for i in 1 2 3 4; do
    CUDA_VISIBLE_DEVICES=$((i - 1)) genre predict --input data/demo --output out/genre --shard $i/4 &
  done; wait
  genre validate-submission out/genre --input data/demo --mode test --output-mode full
  torchrun --nproc_per_node 4 -m genre predict --input data/demo --output out/genre   # the same, by rank

Every *_kus_*.mat below --input is reconstructed to OUT/<T>/MultiCoil/..., its relative path from
MultiCoil on below its task folder (the same relative path in the organizers' layout): variable
img4ranking, float32, MAT v5. A missing mask file is read off the k-space (a warning). A file
that fails is reported in one line and the others still run; the exit status is then 1.
Existing complete outputs are kept unless --overwrite, and temporaries left by a killed run are
removed (never one a live run is writing), so rerunning after any interruption finishes the
tree. Exit status 2 means the arguments cannot be used (no input, unwritable output, two inputs
with one output path, a bad --shard).
"""


def add_arguments(parser: argparse.ArgumentParser, input_default: str | None, output_default: str | None) -> None:
    parser.add_argument("--input", type=Path, default=input_default, required=input_default is None,
                        help="root of the CMRxRecon tree to reconstruct (read only; never written)")
    parser.add_argument("--output", type=Path, default=output_default, required=output_default is None,
                        help="root of the output tree: OUT/<T>/MultiCoil/..., the input's relative paths in the organizers' layout")
    parser.add_argument("--method", choices=ALL_METHODS, default="genre",
                        help="genre: the GENRE-CMR network; sense: CG-SENSE with ACS coil maps; zero-filled: RSS of the "
                             "zero-filled data; bart: BART pics (l1-wavelet, temporal TV for cine, ESPIRiT maps), a "
                             "classical compressed-sensing peer that needs the bart binary on PATH (apt-get install bart)")
    parser.add_argument("--output-mode", choices=[m.value for m in OutputMode], default=OutputMode.FULL.value,
                        help="full: the whole coil-combined volume; ranking: run4Ranking_2025's central slices, first frames and crop")
    parser.add_argument("--checkpoint", type=Path, default=None,
                        help="GENRE-CMR weights (.safetensors with its .json sidecar); default: the weights shipped with the package")
    parser.add_argument("--device", choices=("auto", "cpu", "cuda"), default="auto",
                        help="where to compute; auto takes CUDA when present")
    parser.add_argument("--max-batch", type=int, default=None,
                        help="GENRE-CMR: target frames per network call (halved automatically on CUDA out-of-memory)")
    parser.add_argument("--overwrite", action="store_true", help="reconstruct files whose output already exists")
    parser.add_argument("--guard", default="", metavar="METHOD[,METHOD]",
                        help="hold-out guard: on each slice, withhold 20%% of the acquired lines outside the calibration "
                             "block, reconstruct the rest with --method and with each METHOD (sense, bart, genre), and "
                             "reconstruct the slice with whichever predicted the withheld samples best; costs one extra "
                             "reconstruction per method and slice. Empty (the default): no guard")
    parser.add_argument("--adapt", type=int, default=0, metavar="STEPS",
                        help="GENRE-CMR test-time adaptation: before each slice, fine-tune a copy of the weights for "
                             "STEPS Adam steps on the slice's own acquired lines (some input, others predicted; ZS-SSL), "
                             "keep the weights that best predict a further 20%% of withheld lines, the trained ones "
                             "included, and reconstruct from every line with them. About STEPS x 3 network passes per "
                             "slice. 0 (the default): the trained weights as they are")
    parser.add_argument("--adapt-lr", type=float, default=None, metavar="LR",
                        help="Adam learning rate of --adapt (default: AdaptConfig's, genre/recon/adapt.py)")
    parser.add_argument("--time-budget-hours", type=float, default=None,
                        help="when the files left would not finish in this budget at the measured pace, switch to a "
                             "faster method for them (genre -> sense -> zero-filled; bart -> sense -> zero-filled) "
                             "rather than leave them missing")
    parser.add_argument("--shard", default=None, metavar="I/N",
                        help="reconstruct only share I of N (1 <= I <= N): the files at positions I, I+N, I+2N, ... of "
                             "the sorted walk, the same on every rerun, so N workers sharing --input and --output do "
                             "the tree once between them; a shard checks only its own outputs, so check the whole tree "
                             "with genre validate-submission (or a plain rerun, which also redoes anything missing) "
                             "once all have finished. Default: under torchrun (RANK and WORLD_SIZE set) the rank's "
                             "share, on GPU LOCAL_RANK; otherwise the whole tree")


def register(subparsers, formatter_class) -> None:
    parser = subparsers.add_parser(
        "predict",
        help="reconstruct every undersampled file of a CMRxRecon tree",
        description="Reconstruct every undersampled file of a CMRxRecon tree into mirrored img4ranking files.\n\n" + EXAMPLE,
        formatter_class=formatter_class,
    )
    add_arguments(parser, input_default=None, output_default=None)
    parser.set_defaults(func=run)


def parse_shard(text: str):
    """``--shard I/N`` (1-based) as a :class:`~genre.pipeline.Shard`; :class:`~genre.pipeline.PredictionSetupError` otherwise."""
    from genre.pipeline import PredictionSetupError, Shard

    index, sep, count = text.partition("/")
    if not (sep and index.isdecimal() and count.isdecimal() and 1 <= int(index) <= int(count)):
        raise PredictionSetupError(f"--shard {text}: expected I/N with whole numbers 1 <= I <= N (shards are counted "
                                   "from 1), e.g. --shard 2/4")
    return Shard(int(index) - 1, int(count))


def shard_from_environment(environ: Mapping[str, str]):
    """The torchrun worker's share (``RANK`` of ``WORLD_SIZE``, both 0-based), or None outside torchrun or alone."""
    from genre.pipeline import PredictionSetupError, Shard

    if "RANK" not in environ or "WORLD_SIZE" not in environ:
        return None
    try:
        shard = Shard(int(environ["RANK"]), int(environ["WORLD_SIZE"]))
    except ValueError:
        raise PredictionSetupError(f"RANK={environ['RANK']} WORLD_SIZE={environ['WORLD_SIZE']}: not a worker of a "
                                   "torchrun job (0 <= RANK < WORLD_SIZE); unset them or pass --shard") from None
    return shard if shard.count > 1 else None


def worker_device(device, environ: Mapping[str, str]):
    """``device``, on the GPU that ``LOCAL_RANK`` names when it is CUDA (one GPU per torchrun worker).

    Modulo the GPUs visible, for launchers that show each worker only its own.
    """
    import torch

    if device.type != "cuda" or not environ.get("LOCAL_RANK", "").isdecimal():
        return device
    device = torch.device("cuda", int(environ["LOCAL_RANK"]) % torch.cuda.device_count())
    torch.cuda.set_device(device)  # what torch puts on "cuda" without an index goes there too
    return device


def run(args: argparse.Namespace) -> int:
    from genre.device import DeviceUnavailable, resolve_device
    from genre.pipeline import PredictionSetupError, check_input, log_summary, predict_tree
    from genre.recon import make_reconstructor
    from genre.recon.adapt import adapted
    from genre.recon.base import MethodUnavailable

    try:
        # A missing /input is the first thing a harness operator must read, before any device talk.
        check_input(args.input)
        shard = parse_shard(args.shard) if args.shard is not None else shard_from_environment(os.environ)
        device = resolve_device(args.device)
        if shard is not None and args.shard is None:
            device = worker_device(device, os.environ)
            log.info("torchrun worker: shard %s on %s", shard, device)
        if args.device == "auto" and device.type == "cpu" and args.method == "genre":
            log.warning("no CUDA device found: reconstructing on the CPU, which is much slower")
        method = make_reconstructor(args.method, device, args.checkpoint, args.max_batch)
        adaptation = None
        if args.adapt or args.adapt_lr is not None:
            method = adaptation = adapted(method, args.adapt, args.adapt_lr)
        if args.guard:
            method = guarded(method, args.guard.split(","), lambda name: make_reconstructor(name, device, args.checkpoint, args.max_batch))
        budget = None if args.time_budget_hours is None else args.time_budget_hours * 3600
        fallbacks = [make_reconstructor(name, device) for name in FALLBACKS[args.method]] if budget else []
        report = predict_tree(args.input, args.output, method, OutputMode(args.output_mode), args.overwrite, budget,
                              fallbacks, shard)
    except (PredictionSetupError, DeviceUnavailable, MethodUnavailable) as exc:
        log.error("%s", exc)
        return 2
    log_summary(report)
    if adaptation is not None:
        log.info("adapt: the check kept adapted weights on %d of %d calls (the trained weights on the rest)",
                 adaptation.kept, adaptation.calls)
    if args.guard:
        log.info("guard: slices reconstructed by each method: %s", ", ".join(f"{k} {v}" for k, v in method.choices.items()))
    return 0 if report.ok else 1


def guarded(method, names: list[str], make):
    """``method`` behind a hold-out guard against the named methods (:mod:`genre.recon.guard`); raises ``MethodUnavailable``."""
    from genre.recon.base import MethodUnavailable
    from genre.recon.guard import Guarded

    alternatives = []
    for name in names:
        if name == method.name or not name:
            raise MethodUnavailable(f"--guard {','.join(names)}: name methods other than --method {method.name}")
        alternative = make(name)
        if not hasattr(alternative, "estimate_kspace"):
            raise MethodUnavailable(f"--guard: {name} has no k-space estimate to score; choose among sense, bart, genre")
        alternatives.append(alternative)
    if not hasattr(method, "estimate_kspace"):
        raise MethodUnavailable(f"--guard: --method {method.name} has no k-space estimate to score; choose sense, bart or genre")
    return Guarded(method, alternatives)
