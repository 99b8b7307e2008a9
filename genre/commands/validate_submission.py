"""``genre validate-submission``: check an output tree the way both graders read it."""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

from genre.data.contract import OutputMode

log = logging.getLogger("genre.submission")

EXAMPLE = """\
example:
  genre predict --input data/val --output out/val --output-mode ranking
  genre validate-submission out/val --input data/val --mode validation

  predict.py --input /data/test --output /data/out          # what the container runs
  genre validate-submission /data/out --input /data/test --mode test --output-mode full

--mode validation checks the validation zip: ranking-reduced outputs, nothing else in the tree.
--mode test checks what the test container writes, in the shape of --output-mode (default full).
Every problem is printed as one line naming the file. Exit status: 0 valid, 1 any problem,
2 unusable arguments (no input tree, no output folder, a mode that contradicts --mode).
"""


def register(subparsers, formatter_class) -> None:
    parser = subparsers.add_parser(
        "validate-submission",
        help="check an output tree against its input tree as the graders read it",
        description="Check that OUT holds exactly one valid img4ranking file per input *_kus_*.mat and nothing else.\n\n" + EXAMPLE,
        formatter_class=formatter_class,
    )
    parser.add_argument("out", type=Path, metavar="OUT", help="root of the output tree (what would be zipped or left in /output)")
    parser.add_argument("--input", type=Path, required=True, help="root of the input tree the outputs answer (the *_kus_*.mat files)")
    parser.add_argument("--mode", choices=("validation", "test"), default="test",
                        help="validation: the validation zip (ranking-reduced); test: the test container's output")
    parser.add_argument("--output-mode", choices=[m.value for m in OutputMode], default=None,
                        help="shape the outputs must have; default ranking for --mode validation, full for --mode test")
    parser.set_defaults(func=run)


def resolve_output_mode(mode: str, output_mode: str | None) -> OutputMode:
    """The output mode to check; raises ``ValueError`` when it contradicts ``mode``."""
    if mode == "validation":
        if output_mode not in (None, OutputMode.RANKING.value):
            raise ValueError(f"--mode validation checks ranking-reduced outputs; --output-mode {output_mode} contradicts it")
        return OutputMode.RANKING
    return OutputMode(output_mode or OutputMode.FULL.value)


def run(args: argparse.Namespace) -> int:
    from genre.submission import SubmissionSetupError, format_submission_report, validate_submission

    try:
        output_mode = resolve_output_mode(args.mode, args.output_mode)
        report = validate_submission(args.out, args.input, output_mode)
    except (ValueError, SubmissionSetupError) as exc:
        log.error("%s", exc)
        return 2
    print(format_submission_report(report), flush=True)
    return 0 if report.ok else 1
