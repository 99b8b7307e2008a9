"""``genre compare``: several methods' prediction trees scored side by side, seen vs unseen domains."""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

from genre.commands.evaluate import GRADER_HELP, add_grader_argument
from genre.data.contract import OutputMode

log = logging.getLogger(__name__)

DESCRIPTION = f"""\
Score several prediction trees of the same --gt tree with the organizers' metrics and print one
table: rows pattern x acceleration (and per acceleration, and all), one SSIM / PSNR / NMSE
column group per method. --unseen names the centre/vendor domains the model never trained on;
the table is then split into seen and unseen. Each method's per_file.csv and summary.csv go to
OUT/<method>/, and the table as Markdown (one table per metric, the best method of each row in
bold) to OUT/comparison.md. Exit status as genre evaluate: 1 when some file was missing or failed.

{GRADER_HELP}
examples:
  genre compare --gt data/val --pred out/zero-filled out/sense out/genre \\
      --unseen Center001/UIH_30T_umr780,Center006/UIH_50T_umr_jupiter --out out/compare
  genre compare --gt data/val --pred out/zero-filled out/sense --output-mode full --grader test --out out/compare-test
"""


def register(subparsers, formatter_class) -> None:
    parser = subparsers.add_parser(
        "compare",
        help="score several methods' prediction trees side by side (seen vs unseen domains)",
        description=DESCRIPTION,
        formatter_class=formatter_class,
    )
    parser.add_argument("--pred", type=Path, nargs="+", required=True, metavar="DIR",
                        help="prediction trees, one per method; the folder name is the method's name in the table")
    parser.add_argument("--gt", type=Path, required=True, metavar="DIR",
                        help="validation-like tree with UnderSample_<T> files and FullSample_<T> k-space")
    parser.add_argument("--output-mode", choices=[m.value for m in OutputMode], default=OutputMode.FULL.value,
                        help="reduction of the ground truth; must match the predictions'")
    add_grader_argument(parser)
    parser.add_argument("--unseen", default="", metavar="CENTRE/VENDOR,...",
                        help="domains held out of training; splits the table into seen and unseen")
    parser.add_argument("--symmetric", action="store_true",
                        help="print the GT-referenced score instead of the grader's argument order")
    parser.add_argument("--out", type=Path, required=True, metavar="DIR", help="folder for each method's reports and comparison.md")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from genre.evaluation.evaluate import EvaluationError, evaluate_methods
    from genre.evaluation.metrics import Grader
    from genre.evaluation.report import format_comparison_markdown, print_comparison, write_reports
    from genre.data.matio import atomic_path

    names = [p.name for p in args.pred]
    if len(set(names)) != len(names):
        log.error("prediction folders must have different names (they name the methods): %s", ", ".join(names))
        return 2
    unseen = {d.strip() for d in args.unseen.split(",") if d.strip()}
    try:
        results = evaluate_methods(dict(zip(names, args.pred)), args.gt, OutputMode(args.output_mode), grader=Grader(args.grader))
    except EvaluationError as exc:
        log.error("%s", exc)
        return 2
    known = {f.case.location.domain for f in next(iter(results.values())).files}
    if unseen - known:
        log.error("--unseen names domains not in %s: %s", args.gt, ", ".join(sorted(unseen - known)))
        return 2
    split = (lambda case: "unseen" if case.location.domain in unseen else "seen") if unseen else None
    print_comparison(results, args.symmetric, split=split)
    for name, result in results.items():
        write_reports(args.out / name, result)
    with atomic_path(args.out / "comparison.md") as tmp:
        tmp.write_text(format_comparison_markdown(results, args.symmetric, split=split), encoding="utf-8")
    log.info("reports in %s; the table as Markdown in %s", args.out, args.out / "comparison.md")
    return 0 if all(r.complete for r in results.values()) else 1
