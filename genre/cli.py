"""The ``genre`` console script: one subcommand per module in :mod:`genre.commands`."""

from __future__ import annotations

import argparse
import importlib
import logging
import shlex
import sys

from genre.allocator import keep_freed_memory

# Imported lazily so that `genre synth --help` does not pay for building models.
COMMANDS = ("synth", "predict", "evaluate", "compare", "demo", "validate_submission", "model_info", "train", "repack")


class HelpFormatter(argparse.ArgumentDefaultsHelpFormatter, argparse.RawDescriptionHelpFormatter):
    """Shows defaults and keeps the worked examples in descriptions as written."""


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="genre",
        description="GENRE-CMR: reconstruction, evaluation and training for CMRxRecon 2025 multi-coil cardiac MRI.",
        formatter_class=HelpFormatter,
    )
    parser.add_argument("-v", "--verbose", action="store_true", help="log debug messages")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True
    for name in COMMANDS:
        module = importlib.import_module(f"genre.commands.{name}")
        module.register(sub, HelpFormatter)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    argv = sys.argv[1:] if argv is None else list(argv)
    args = parser.parse_args(argv)
    args.command_line = shlex.join(["genre", *argv])  # what a run records of how it was made
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO,
        format="%(asctime)s %(levelname)s %(message)s",
        datefmt="%H:%M:%S",
    )
    keep_freed_memory()
    return int(args.func(args))


if __name__ == "__main__":
    sys.exit(main())
