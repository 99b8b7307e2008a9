"""``genre evaluate``: score a prediction tree the way the CMRxRecon 2025 graders do."""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

from genre.evaluation.evaluate import EvaluationError, evaluate_tree
from genre.evaluation.metrics import Grader
from genre.evaluation.report import print_report, write_reports
from genre.data.contract import OutputMode

log = logging.getLogger(__name__)

GRADER_HELP = """\
--grader picks which of the organizers' two scorers to reproduce. They share the metrics and
the aggregation and differ only in how a file's two arrays are compared:
  validation  the default: the leaderboard shown during the challenge, which scores the
              validation zip of ranking outputs. It compares the arrays as stored, without
              squeezing. An (x, y, 1, t) img4ranking (one slice with frames: a cine
              long-axis view, a single-slice T2smap or flow2d) is then 4-D, and for 4-D
              arrays the scorer takes the SUBMISSION as the reference: its maximum sets the
              SSIM and PSNR data range and its energy is the NMSE denominator, so these
              files score differently from the test scorer. A prediction that dropped that
              interior 1 is a shape mismatch (scored 0). A 2-D img4ranking (one image:
              blackblood, a single-slice T1w, T2w or LGE) cannot be scored: the scorer's
              code raises IndexError there and its whole run stops, so such files are
              reported as failed. A MAT v7.3 prediction is read with its dimensions
              reversed: a shape mismatch.
  test        the final ranking, which scores the container's outputs. It squeezes both
              arrays first: the same (x, y, 1, t) file is 3-D with the ground truth as the
              reference, and a 2-D file is scored as one image.
Arrays without singleton dimensions score the same under both.
"""

DESCRIPTION = f"""\
Score reconstructions against ground truth with the organizers' metrics (per 2-D image
percentile normalisation, scikit-image SSIM / PSNR, NMSE) and their group-adjusted leaderboard
mean, beside a symmetric score that always takes the ground truth as reference.

Every *_kus_*.mat of the --gt tree is expected where genre predict writes it below --pred; a file
that is not there counts as missing (0 in the leaderboard score). Ground truth is the RSS image
of FullSample_<T> k-space, reduced by --output-mode, or img4ranking ground-truth files. A task
without any scored file scores SSIM 0 and PSNR 0 (NMSE undefined, printed -).

{GRADER_HELP}
Writes OUT/per_file.csv and OUT/summary.csv and prints the tables. Exit status: 0 when every
expected file was scored, 1 when some were missing or failed, 2 for unusable arguments.

examples:
  # the validation zip: ranking outputs, scored as the validation leaderboard does (default --grader)
  genre predict --input data/val --output runs/zf --method zero-filled --output-mode ranking
  genre evaluate --pred runs/zf --gt data/val --output-mode ranking
  # reports in runs/zf-eval/ (the default --out)

  # the container's full-volume outputs, scored as the final test ranking does
  genre predict --input data/val --output runs/zf-full --method zero-filled
  genre evaluate --pred runs/zf-full --gt data/val --output-mode full --grader test --out reports/zf-full
"""


def default_out(pred: Path) -> Path:
    """``<pred>-eval`` beside the prediction tree: never inside it (an extra file there breaks
    the validation scorer), and one folder per prediction tree."""
    pred = pred.resolve()
    return pred.with_name(f"{pred.name}-eval")


def add_grader_argument(parser: argparse.ArgumentParser) -> None:
    """``--grader validation|test``, shared by the commands that score files."""
    parser.add_argument("--grader", choices=[g.value for g in Grader], default=Grader.VALIDATION.value,
                        help="which organizers' scorer to reproduce: validation (the challenge's leaderboard; arrays "
                             "as stored, so (x, y, 1, t) files take the submission as reference and 2-D files fail) "
                             "or test (the final ranking; arrays squeezed); e.g. --grader test")  # fmt: skip


def register(subparsers, formatter_class) -> None:
    parser = subparsers.add_parser(
        "evaluate",
        help="score predictions against ground truth as the challenge does",
        description=DESCRIPTION,
        formatter_class=formatter_class,
    )
    parser.add_argument("--pred", type=Path, required=True, metavar="DIR",
                        help="prediction tree of img4ranking files mirroring the --gt tree (what genre predict writes); "
                             "e.g. --pred runs/zf")  # fmt: skip
    parser.add_argument("--gt", type=Path, required=True, metavar="DIR",
                        help="validation-like tree with UnderSample_<T> files and FullSample_<T> k-space, "
                             "or img4ranking ground-truth files; e.g. --gt data/val")  # fmt: skip
    parser.add_argument("--output-mode", choices=[m.value for m in OutputMode], default=OutputMode.FULL.value,
                        help="reduction of ground truth built from k-space; must match the predictions' "
                             "(ranking: run4Ranking crop of central slices and first frames; full: whole volume); "
                             "e.g. --output-mode ranking")  # fmt: skip
    add_grader_argument(parser)
    parser.add_argument("--out", type=Path, default=None, metavar="DIR",
                        help="folder for per_file.csv and summary.csv, outside --pred; if omitted, <pred>-eval beside --pred; "
                             "e.g. --out reports/zf")  # fmt: skip
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    pred: Path = args.pred
    out = args.out if args.out is not None else default_out(pred)
    if pred.is_dir() and out.resolve().is_relative_to(pred.resolve()):
        log.error("%s: --out lies inside the prediction tree %s, where extra files break the validation scorer", out, pred)
        return 2
    try:
        result = evaluate_tree(pred, args.gt, OutputMode(args.output_mode), grader=Grader(args.grader))
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
