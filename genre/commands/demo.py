"""``genre demo``: the main job end to end on the built-in synthetic tree.

Synthesises a small validation-like CMRxRecon tree, reconstructs it with every available
method, scores each with the organizers' metrics, prints the comparison and writes a PNG
panel. The numbers are on synthetic phantoms, never CMRxRecon results.
"""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

from genre.commands.synth import parse_size
from genre.data.contract import OutputMode
from genre.device import DeviceUnavailable, resolve_device
from genre.recon import ALL_METHODS, METHODS, make_reconstructor
from genre.recon.base import MethodUnavailable

log = logging.getLogger("genre.demo")

EXAMPLE = """\
example:
  genre demo --out build/demo                       # all available methods, full-volume outputs
  genre demo --out build/demo --methods sense,zero-filled --size 162x448
  genre demo --out build/demo-bart --methods bart,sense,zero-filled   # BART needs apt-get install bart

writes:
  OUT/data/          the synthetic validation tree (UnderSample_, Mask_, FullSample_ folders)
  OUT/pred/METHOD/   each method's img4ranking outputs, mirrored as the grader expects
  OUT/eval/METHOD/   per_file.csv and summary.csv of each method
  OUT/panel.png      ground truth, reconstructions and error maps of one cine frame
"""


def register(subparsers, formatter_class) -> None:
    parser = subparsers.add_parser(
        "demo",
        help="synthesise a tree, reconstruct it with every available method, score and compare",
        description="Run the whole pipeline on the built-in synthetic CMRxRecon tree.\n\n" + EXAMPLE,
        formatter_class=formatter_class,
    )
    parser.add_argument("--out", type=Path, default=Path("build/demo"), help="folder for the tree, outputs, reports and panel")
    parser.add_argument("--methods", default=",".join(METHODS),
                        help=f"comma-separated methods to compare, from {', '.join(ALL_METHODS)}. "
                             "genre: the GENRE-CMR network, skipped with a note when no weights are available; sense: "
                             "CG-SENSE; zero-filled: RSS of the zero-filled data; bart: BART pics, a compressed-sensing "
                             "peer, skipped with a note when the bart binary is not on PATH")
    parser.add_argument("--size", type=parse_size, default=(120, 128),
                        help="base matrix NYxNX (phase encodes x readout) of the synthetic tree; domains add offsets")
    parser.add_argument("--seed", type=int, default=0, help="seed of the synthetic tree")
    parser.add_argument("--output-mode", choices=[m.value for m in OutputMode], default=OutputMode.FULL.value,
                        help="output reduction for predictions and ground truth")
    parser.add_argument("--checkpoint", type=Path, default=None, help="GENRE-CMR weights; default: the shipped ones")
    parser.add_argument("--device", choices=("auto", "cpu", "cuda"), default="auto", help="where to compute")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from genre.evaluation.evaluate import evaluate_methods
    from genre.evaluation.metrics import Grader
    from genre.evaluation.report import print_comparison, write_reports
    from genre.data.synthetic import SynthConfig, make_tree
    from genre.pipeline import log_summary, predict_tree

    mode = OutputMode(args.output_mode)
    names = [m.strip() for m in args.methods.split(",") if m.strip()]
    unknown = [m for m in names if m not in ALL_METHODS]
    if unknown or not names:
        log.error("unknown methods %s; choose from %s", unknown or "(none)", ", ".join(ALL_METHODS))
        return 2
    try:
        device = resolve_device(args.device)
    except DeviceUnavailable as exc:
        log.error("%s", exc)
        return 2
    methods = {}
    for name in names:
        try:
            methods[name] = make_reconstructor(name, device, args.checkpoint)
        except MethodUnavailable as exc:
            log.warning("skipping %s: %s", name, exc)
    if not methods:
        log.error("no method can run")
        return 2

    data = args.out / "data"
    log.info("synthesising the demo tree in %s", data)
    make_tree(data, SynthConfig(size=args.size, seed=args.seed))
    status = 0
    roots = {}
    for name, method in methods.items():
        roots[name] = args.out / "pred" / name
        report = predict_tree(data, roots[name], method, mode, overwrite=True)
        log_summary(report)
        status |= 0 if report.ok else 1
    # The test scorer: it ranks the container's outputs, which the demo's full mode stands for.
    results = evaluate_methods(roots, data, mode, grader=Grader.TEST)
    for name, result in results.items():
        write_reports(args.out / "eval" / name, result)
        status |= 0 if result.complete else 1
    print()
    print("Synthetic phantoms, not CMRxRecon data. Scores as the organizers compute them:")
    print_comparison(results)
    panel = write_demo_panel(args.out / "panel.png", data, roots, mode)
    log.info("reports in %s, panel %s", args.out / "eval", panel)
    return status


def write_demo_panel(path: Path, data: Path, roots: dict[str, Path], mode: OutputMode) -> Path:
    """Ground truth, each method and its error map for the first frame of a central cine slice."""
    from genre.evaluation.reference import read_img4ranking, reference_image
    from genre.evaluation.report import write_panel
    from genre.data.cmrx import find_cases

    cases = find_cases(data)
    case = max((c for c in cases if c.stem == "cine_sax"), key=lambda c: c.acceleration, default=cases[0])
    gt = reference_image(case, data, mode)
    plane = (slice(None), slice(None)) + tuple(n // 2 if i == 0 else 0 for i, n in enumerate(gt.shape[2:]))
    preds = {name: read_img4ranking(case.output_path(root))[plane].T for name, root in roots.items()}
    title = f"{case.stem} {case.pattern} R={case.acceleration}, {case.location.domain} (synthetic)"
    return write_panel(path, gt[plane].T, preds, title)
