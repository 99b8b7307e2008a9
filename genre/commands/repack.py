"""``genre repack``: rewrite the compressed (chunked) MATLAB v7.3 files of a tree as contiguous ones."""

from __future__ import annotations

import argparse
import logging
import shutil
import time
from pathlib import Path

log = logging.getLogger("genre.repack")

EXAMPLE = """\
examples:
  genre repack --input /data/CMRxRecon2025 --output /data/CMRxRecon2025-contiguous
  genre repack --input /data/CMRxRecon2025 --in-place       # rewrites the compressed files where they are

Why: MATLAB saves v7.3 files compressed by default, in chunks that may span slices and frames.
Reading one slice then inflates every chunk it touches; training reads one slice (and its
neighbouring frames) of a random file per sample, so each sample can cost inflating most of a
file. A contiguous file reads a slice as a plain strided read (18x faster than deflate on random
k-space in docs/benchmarks.md, "Reading compressed v7.3 files"), for about a tenth more disk.
`genre predict` needs no repacking: it reads each file front to back and caches its chunks.

Every *.mat below --input is considered: chunked v7.3 files are rewritten (values, dtypes,
MATLAB attributes and header kept; contiguous, uncompressed); other files are copied to
--output unchanged, or left alone with --in-place. Each write goes to a temporary file renamed
into place; a file already in --output is kept unless --overwrite. A file that fails is logged
in one line and the others still run. Exit status: 0 all done, 1 some file failed, 2 unusable
arguments.
"""


def register(subparsers, formatter_class) -> None:
    parser = subparsers.add_parser(
        "repack",
        help="rewrite compressed MATLAB v7.3 files as contiguous ones, for fast slice reads in training",
        description="Rewrite the chunked (compressed) MATLAB v7.3 files below --input as contiguous, uncompressed "
        "ones.\n\n" + EXAMPLE,
        formatter_class=formatter_class,
    )
    parser.add_argument("--input", type=Path, required=True, help="root of the tree to read (any layout; every *.mat)")
    target = parser.add_mutually_exclusive_group(required=True)
    target.add_argument("--output", type=Path, help="root of the repacked tree; mirrors --input's relative paths")
    target.add_argument("--in-place", action="store_true", help="rewrite the compressed files of --input itself")
    parser.add_argument("--overwrite", action="store_true", help="replace files that already exist in --output")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from tqdm import tqdm

    from genre.data.matio import MatFileError, atomic_path, is_chunked_mat73, repack_mat73

    if not args.input.is_dir():
        log.error("%s: input folder not found", args.input)
        return 2
    if args.output is not None and args.output.resolve().is_relative_to(args.input.resolve()):
        log.error("%s: --output must not lie inside --input", args.output)
        return 2
    sources = sorted(p for p in args.input.rglob("*.mat") if p.is_file())
    if not sources:
        log.error("%s: no .mat files below it", args.input)
        return 2
    started = time.perf_counter()
    counts = {"repacked": 0, "copied": 0, "kept": 0, "failed": 0}
    for source in tqdm(sources, desc="repack", unit="file"):
        target = source if args.in_place else args.output / source.relative_to(args.input)
        try:
            if not args.in_place and target.exists() and not args.overwrite:
                counts["kept"] += 1
            elif is_chunked_mat73(source):
                repack_mat73(source, target)
                counts["repacked"] += 1
            elif args.in_place:
                counts["kept"] += 1
            else:
                with atomic_path(target) as partial:
                    shutil.copy2(source, partial)
                counts["copied"] += 1
        except (MatFileError, OSError) as exc:
            counts["failed"] += 1
            log.error("%s", exc if isinstance(exc, MatFileError) else f"{source}: {exc}")
    summary = ", ".join(f"{n} {k}" for k, n in counts.items())
    log.info("done in %.1fs: %s", time.perf_counter() - started, summary)
    return 1 if counts["failed"] else 0
