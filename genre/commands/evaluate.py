"""``genre evaluate``: score a prediction tree the way the CMRxRecon 2025 grader does."""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

from genre.evaluation.evaluate import EvaluationError, evaluate_tree
from genre.evaluation.report import print_report, write_reports
from genre.data.contract import OutputMode

log = logging.getLogger(__name__)

DESCRIPTION = """\
Score reconstructions against ground truth with the organizers' metrics (per 2-D image
percentile normalisation, scikit-image SSIM / PSNR, NMSE) and their group-adjusted leaderboard
mean, beside a symmetric score that always takes the ground truth as reference.

Every *_kus_*.mat of the --gt tree is expected where genre predict writes it below --pred; a file
that is not there counts as missing (0 in the leaderboard score). Ground truth is the RSS image
of FullSample_<T> k-space, reduced by --output-mode, or img4ranking ground-truth files.

Writes OUT/per_file.csv and OUT/summary.csv and prints the tables. Exit status: 0 when every
expected file was scored, 1 when some were missing or failed, 2 for unusable arguments.

example:
  genre predict --input data/val --output runs/zf --method zero-filled --output-mode ranking
  genre evaluate --pred runs/zf --gt data/val --output-mode ranking
  # reports in runs/zf-eval/
"""


def default_out(pred: Path) -> Path:
    """``<pred>-eval`` beside the prediction tree: never inside it (an extra file there breaks
    the validation scorer), and one folder per prediction tree."""
    pred = pred.resolve()
    return pred.with_name(f"{pred.name}-eval")


def register(subparsers, formatter_class) -> None:
    parser = subparsers.add_parser(
        "evaluate",
        help="score predictions against ground truth as the challenge does",
        description=DESCRIPTION,
        formatter_class=formatter_class,
    )
    parser.add_argument("--pred", type=Path, required=True, metavar="DIR",
                        help="prediction tree of img4ranking files mirroring the --gt tree (what genre predict writes)")
    parser.add_argument("--gt", type=Path, required=True, metavar="DIR",
                        help="validation-like tree with UnderSample_<T> files and FullSample_<T> k-space, "
                             "or img4ranking ground-truth files")  # fmt: skip
    parser.add_argument("--output-mode", choices=[m.value for m in OutputMode], default=OutputMode.FULL.value,
                        help="reduction of ground truth built from k-space; must match the predictions' "
                             "(ranking: run4Ranking crop of central slices and first frames; full: whole volume)")  # fmt: skip
    parser.add_argument("--out", type=Path, default=None, metavar="DIR",
                        help="folder for per_file.csv and summary.csv, outside --pred; if omitted, <pred>-eval beside --pred")  # fmt: skip
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    pred: Path = args.pred
    out = args.out if args.out is not None else default_out(pred)
    if pred.is_dir() and out.resolve().is_relative_to(pred.resolve()):
        log.error("%s: --out lies inside the prediction tree %s, where extra files break the validation scorer", out, pred)
        return 2
    try:
        result = evaluate_tree(pred, args.gt, OutputMode(args.output_mode))
    except EvaluationError as exc:
        log.error("%s", exc)
        return 2
    print_report(result)
    try:
        per_file, summary = write_reports(out, result)
    except OSError as exc:
        log.error("%s: cannot write the reports (%s)", out, exc.strerror or exc)
        return 2
    log.info("wrote %s and %s", per_file, summary)
    return 0 if result.complete else 1
