"""``genre train``: train the GENRE-CMR generator on a CMRxRecon 2025 training tree."""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

log = logging.getLogger("genre.train")

EXAMPLE = """\
examples:
  genre synth --out data/train --layout train --cases 2 --domains 3
  genre train --data data/train --out runs/tiny --preset tiny --epochs 2 --steps-per-epoch 50
  genre train --data data/train --out runs/tiny --resume                # continue after a stop
  genre train --data data/train --out runs/tiny --resume --stop-after 120   # at most 2 h this session
  genre train --data /data/CMRxRecon2025 --out runs/paper --no-sda     # the paper's ablation
  torchrun --nproc_per_node 2 -m genre train --data /data/CMRxRecon2025 --out runs/paper
  genre train --simulated 2000 --out runs/sim --preset small --curriculum "0:4,8;0.3:4,8,16;0.6:4,8,16,24"
                                        # no files: samples simulated on the fly (the shipped weights' recipe)

--data is a training release: MultiCoil/<Modality>/TrainingSet/FullSample/<Centre>/<Vendor>/<Pxxx>/<stem>.mat
with its masks under .../Mask_TaskAll/... (files without masks get masks made on the fly).
--simulated N adds (or, without --data, is) N samples per epoch drawn on the fly from the
cardiac phantom, scikit-image photographs and procedural textures, with random coil models,
coil counts, matrix sizes, SNRs and masks (genre/data/simulation.py; validated on
--simulated-val fixed samples).
One sample is one target frame of one slice with its adjacent frames (neighbouring slices in
single-frame series); the sampler interleaves the domains round-robin. Batch size 1 (the
paper's): matrix sizes differ between files. Curriculum: acceleration 8, then 8 and 16 from a
third of the epochs, then 8, 16 and 24 from two thirds.

--out receives: config.json; log.csv (every step: losses, CoV weights, learning rate);
val.csv (every epoch: SSIM / PSNR / NMSE of held-out patients, and of the zero-filled input);
plots/losses.png, plots/cov_weights.png, plots/val_epochNNN.png; checkpoints/step_*.pt
(training state for --resume); last.safetensors and best.safetensors (generator weights with
their .json sidecar, for `genre predict --checkpoint`). Under torchrun only rank 0 writes.

Exit status: 0 done (or stopped by --stop-after, resumable); 1 a file failed while training; 2 unusable arguments (no training files,
an existing run in --out without --resume, no CUDA for --device cuda).
"""


def _domains(text: str) -> tuple[str, ...]:
    return tuple(v.strip() for v in text.split(",") if v.strip())


def _optional_positive(text: str) -> int | None:
    value = int(text)
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be >= 0, got {text}")
    return value or None


def _range(text: str) -> tuple[int, int]:
    try:
        low, high = (int(v) for v in text.split(":"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected MIN:MAX such as 48:256, got {text!r}") from None
    return low, high


def _curriculum(text: str) -> tuple[tuple[float, tuple[int, ...]], ...]:
    try:
        stages = tuple((float(f), tuple(int(r) for r in rs.split(","))) for f, rs in (p.split(":") for p in text.split(";")))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected stages such as 0:4,8;0.5:4,8,16, got {text!r}") from None
    return stages


def register(subparsers, formatter_class) -> None:
    from genre.data.dataset import DOMAIN_KEYS
    from genre.models.config import PRESETS
    from genre.data.simulation import SimulationConfig
    from genre.train.config import TrainConfig

    d = TrainConfig()
    parser = subparsers.add_parser(
        "train",
        help="train the GENRE-CMR generator on a CMRxRecon training tree",
        description="Train the GENRE-CMR generator (with its patch discriminator) on a CMRxRecon 2025 training tree.\n\n"
        + EXAMPLE,
        formatter_class=formatter_class,
    )
    parser.add_argument("--data", type=Path, default=None,
                        help="root of a training tree (holds MultiCoil/...); optional with --simulated")
    parser.add_argument("--init-weights", default=None, metavar="PATH",
                        help="start the generator from this weights file (e.g. genre/weights/*.safetensors) instead of "
                        "a random initialisation; it must be of --preset's configuration, with at most --cascades cascades (the ones "
                        "it lacks are appended and start near the identity); optimisers start afresh")
    parser.add_argument("--simulated", type=int, default=d.simulated, metavar="N",
                        help="also (or only) train on N samples per epoch simulated on the fly from several image "
                        "sources, coil models, sizes, SNRs and masks (genre.data.simulation); 0: none")
    parser.add_argument("--simulated-val", type=int, default=d.simulated_val, metavar="N",
                        help="fixed simulated samples validated every epoch (group 'simulated'), with --simulated")
    sim = SimulationConfig()
    parser.add_argument("--sim-ny", type=_range, default=f"{sim.ny[0]}:{sim.ny[1]}", metavar="MIN:MAX",
                        help="phase encodes of the simulated samples (the challenge's files have up to 246)")
    parser.add_argument("--sim-nx", type=_range, default=f"{sim.nx[0]}:{sim.nx[1]}", metavar="MIN:MAX",
                        help="readout points of the simulated samples; the readout is fully sampled, so a narrow range "
                        "crops it without changing the undersampling")
    parser.add_argument("--sim-coils", type=_range, default=f"{sim.coils[0]}:{sim.coils[1]}", metavar="MIN:MAX",
                        help="coils of the simulated samples, drawn log-uniformly")
    parser.add_argument("--curriculum", type=_curriculum, default=None, metavar="F:R,R;F:R,...",
                        help="accelerations per stage, from the fraction F of the epochs on; default the paper's "
                        "0:8;0.333:8,16;0.667:8,16,24")
    parser.add_argument("--out", type=Path, required=True, help="run folder: checkpoints, logs, plots, weights")
    parser.add_argument("--preset", choices=PRESETS, default=d.preset,
                        help="generator size: paper (108 M parameters), small (CPU demos), tiny (tests)")
    parser.add_argument("--cascades", type=int, default=None, metavar="N",
                        help="unrolled cascades instead of the preset's (small: 4, paper: 16); with --init-weights of "
                        "fewer cascades, the network is grown (e.g. --preset small --cascades 8)")
    parser.add_argument("--resume", action="store_true",
                        help="continue the run in --out from its latest checkpoint, with the run's saved settings "
                        "(only --num-workers, --ckpt-every, --keep-checkpoints and --stop-after may change)")
    parser.add_argument("--epochs", type=int, default=d.epochs, help="epochs to train (StepLR and the curriculum follow them)")
    parser.add_argument("--steps-per-epoch", type=_optional_positive, default="0", metavar="N",
                        help="cap on the steps of an epoch, for quick runs; 0: the sampler's whole epoch")
    parser.add_argument("--device", choices=("auto", "cpu", "cuda"), default="auto",
                        help="where to train; auto takes CUDA when present")
    parser.add_argument("--seed", type=int, default=d.seed, help="seed of the weights, the sampler and the masks")
    parser.add_argument("--domain-key", choices=DOMAIN_KEYS, default=d.domain_key,
                        help="what a domain is for the sampler and the SDA loss")
    parser.add_argument("--holdout-domains", type=_domains, default=(), metavar="CENTRE/VENDOR,...",
                        help="centre/vendor domains never trained on (validated as 'unseen'), e.g. Center005/Siemens_30T_CIMA.X")
    parser.add_argument("--val-patients", type=int, default=d.val_patients,
                        help="patients per centre/vendor domain held out for validation (kept where a domain has more)")
    parser.add_argument("--val-max-samples", type=_optional_positive, default=d.val_max_samples, metavar="N",
                        help="validation samples per group and epoch, evenly spaced; 0: all")
    parser.add_argument("--ckpt-every", type=int, default=d.ckpt_every, metavar="N",
                        help="steps between training-state checkpoints (one is also written after every epoch)")
    parser.add_argument("--keep-checkpoints", type=int, default=d.keep_checkpoints, metavar="N",
                        help="training-state checkpoints kept (the newest)")
    parser.add_argument("--stop-after", type=float, default=None, metavar="MINUTES",
                        help="save the training state and last.safetensors at the first step after this many minutes "
                        "of training and stop (exit 0); the same command with --resume continues from that step. "
                        "For machines lent by the hour, e.g. --stop-after 8 within a 10-minute call")
    parser.add_argument("--batch-size", type=int, default=d.batch_size,
                        help="samples per step and process; above 1 every file must have the same matrix size")
    parser.add_argument("--lr", type=float, default=d.lr, help="AdamW learning rate of the generator")
    parser.add_argument("--num-workers", type=int, default=d.num_workers, help="data-loading worker processes")
    ablation = parser.add_argument_group("ablations (the paper's Table 2, and the GAN)")
    ablation.add_argument("--no-sda", action="store_true", help="without the statistical distribution alignment loss")
    ablation.add_argument("--no-ear", action="store_true", help="without the edge-aware region loss")
    ablation.add_argument("--no-residual", action="store_true", help="without the residual path across cascades")
    ablation.add_argument("--no-gan", action="store_true", help="without the discriminator and the adversarial loss")
    ablation.add_argument("--disc-per-cascade", action="store_true",
                          help="update the discriminator on every cascade's output (the paper's loop) instead of once")
    ablation.add_argument("--no-checkpointing", action="store_true",
                          help="keep every cascade's activations instead of recomputing them (faster, more memory)")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from genre.data.matio import MatFileError
    from genre.data.simulation import SimulationConfig
    from genre.device import DeviceUnavailable
    from genre.train.config import TrainConfig
    from genre.train.run import TrainingSetupError, run_training

    try:
        config = TrainConfig(
            preset=args.preset, cascades=args.cascades, epochs=args.epochs, steps_per_epoch=args.steps_per_epoch, seed=args.seed,
            domain_key=args.domain_key, holdout_domains=args.holdout_domains, val_patients=args.val_patients,
            val_max_samples=args.val_max_samples, ckpt_every=args.ckpt_every, keep_checkpoints=args.keep_checkpoints, stop_after=args.stop_after,
            batch_size=args.batch_size, lr=args.lr, num_workers=args.num_workers, sda=not args.no_sda,
            ear=not args.no_ear, residual=not args.no_residual, gan=not args.no_gan,
            disc_per_cascade=args.disc_per_cascade, activation_checkpointing=not args.no_checkpointing,
            simulated=args.simulated, simulated_val=args.simulated_val, init_weights=args.init_weights,
            simulation=SimulationConfig(ny=args.sim_ny, nx=args.sim_nx, coils=args.sim_coils),
            **({"curriculum": args.curriculum} if args.curriculum else {}),
        )
    except ValueError as exc:
        log.error("genre train: %s", exc)
        return 2
    try:
        summary = run_training(config, args.data, args.out, resume=args.resume, device=args.device,
                               command=args.command_line)
    except (TrainingSetupError, DeviceUnavailable) as exc:
        log.error("%s", exc)
        return 2
    except MatFileError as exc:
        log.error("FAILED %s", exc)
        return 1
    except RuntimeError as exc:
        problem = worker_error(exc)
        if problem is None:
            raise
        log.error("FAILED %s", problem)
        return 1
    if summary["stopped"]:
        return 0  # the trainer said where it stopped and how to continue
    seen = summary["validation"].get("seen")
    result = f"; validation SSIM {seen['ssim']:.4f}" if seen else ""
    log.info("done: %d epochs, %d steps%s; weights in %s", summary["epoch"], summary["step"], result,
             args.out / "last.safetensors")
    return 0


def worker_error(exc: RuntimeError) -> str | None:
    """The one line of a ``MatFileError`` raised in a DataLoader worker, or None for any other error.

    torch re-raises a worker's exception in the main process with the worker's traceback in its
    message, and as a ``RuntimeError`` when the original type cannot be rebuilt from that message
    (``MatFileError`` takes a path and a problem); the traceback's last line is the error itself.
    """
    text = str(exc).rstrip()
    if not text.startswith("Caught MatFileError"):
        return None
    return text.splitlines()[-1].split("MatFileError: ", 1)[-1]
