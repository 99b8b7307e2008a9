"""``genre synth``: write a synthetic CMRxRecon 2025-format tree (phantom k-space, masks, kus)."""

from __future__ import annotations

import argparse
import logging
import time
from pathlib import Path

log = logging.getLogger("genre.synth")

EXAMPLE = """\
examples:
  genre synth --out data/demo                                   # small validation tree, seconds
  genre synth --out data/train --layout train --cases 2 --domains 5
  genre synth --out data/real --size 162x448 --coils 10 --frames 12 --slices 5 --domains 1
                                        # challenge shapes: 15 files, 1.4 GB, ~20 s, 2 GB RAM
  genre synth --out data/heldout-bio --family biological --frames 6 --slices 2 --seed 7
                                        # held-out images for a generalization benchmark

families (--family): where images and coil maps come from
  cardiac     the moving cardiac phantom with loop coils (default; what training uses)
  bart        BART's phantoms (Shepp-Logan, geometric, tubes, NIST, SONAR) with BART's coil
              sensitivities (needs `bart` on PATH)
  biological  biological images from installed packages (matplotlib's MR brain slice;
              scikit-image's retina, cell, immunohistochemistry, microaneurysms, moon) with
              smooth nonrigid motion, seen by birdcage coils
  The held-out families (bart, biological) are never for training: validation layout only. Their
  tree is a fixed list of 18 series (genre.data.synthetic.HELDOUT_SERIES: stems, matrices
  96x112 to 246x512, 4-32 coils, SNR 30-100, each pattern x R twice); --domains, --cases,
  --size, --coils and --stems do not apply, --frames and --slices do.

validation layout (what predict and evaluate read):
  <T>/MultiCoil/<Modality>/ValidationSet/UnderSample_<T>/<Centre>/<Vendor>/<Pxxx>/<stem>_kus_<Pattern><R>.mat
  <T>/MultiCoil/<Modality>/ValidationSet/Mask_<T>/.../<stem>_mask_<Pattern><R>.mat
  <T>/MultiCoil/<Modality>/ValidationSet/FullSample_<T>/.../<stem>.mat   (ground truth k-space)
  Each series gets one pattern x R (every one appears across the tree) unless --all-combos.
train layout:
  MultiCoil/<Modality>/TrainingSet/FullSample/<Centre>/<Vendor>/<Pxxx>/<stem>.mat
  MultiCoil/<Modality>/TrainingSet/Mask_TaskAll/.../<stem>_mask_<Pattern><R>.mat   (every pattern x R)

--size and --coils are the base values; each domain adds its own offsets, so the default
domains get 56x64, 57x64 and 71x65 matrices (ky x kx) with 6, 4 and 8 coils. The default tree
(3 domains, 1 patient, stems cine_sax, cine_lax_4ch, T1map, lge_sax, blackblood) is 45 files,
about 75 MB. The same --seed always writes identical arrays.
"""


def parse_size(text: str) -> tuple[int, int]:
    try:
        ny, nx = (int(v) for v in text.lower().split("x"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected NYxNX such as 162x448, got {text!r}") from None
    return ny, nx


def _list(kind):
    def parse(text: str):
        try:
            return tuple(kind(v) for v in text.split(",") if v)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected a comma-separated list, got {text!r}") from None

    return parse


def register(subparsers, formatter_class) -> None:
    from genre.data.synthetic import DOMAINS, FAMILIES, SERIES, SynthConfig

    d = SynthConfig()
    parser = subparsers.add_parser(
        "synth",
        help="write a synthetic CMRxRecon 2025-format tree",
        description="Write a synthetic CMRxRecon 2025-format tree: a moving cardiac phantom seen by smooth "
        "coils (or a held-out image family, --family), with Uniform / ktGaussian / ktRadial masks, as MATLAB v7.3 files.\n\n" + EXAMPLE,
        formatter_class=formatter_class,
    )
    parser.add_argument("--out", type=Path, required=True, help="root folder of the tree (created; existing files are replaced)")
    parser.add_argument("--layout", choices=("train", "validation"), default=d.layout,
                        help="validation: UnderSample/Mask/FullSample_<T> folders; train: FullSample + Mask_TaskAll")
    parser.add_argument("--task", default=d.task, help="task folder of the validation layout (TaskR1, TaskR2, TaskS1, TaskS2)")
    parser.add_argument("--seed", type=int, default=d.seed, help="seed of anatomy, coils, noise and random masks")
    parser.add_argument("--cases", type=int, default=d.cases, help="patients (P001, P002, ...) per domain")
    parser.add_argument("--domains", type=int, default=d.domains,
                        help=f"number of centre/vendor domains, the first N of: {', '.join(x.name for x in DOMAINS)}")
    parser.add_argument("--size", type=parse_size, default="x".join(map(str, d.size)), metavar="NYxNX",
                        help="base matrix, phase encodes x readout (domains add offsets)")
    parser.add_argument("--coils", type=int, default=d.coils, help="base coil count (domains add offsets)")
    parser.add_argument("--frames", type=int, default=d.frames, help="cardiac frames of cine, flow2d and perfusion series")
    parser.add_argument("--slices", type=int, default=d.slices, help="slices of stacks (cine_sax, mapping, lge_sax, perfusion, T1w, T2w)")
    parser.add_argument("--stems", type=_list(str), default=",".join(d.stems), metavar="STEM,...",
                        help=f"file stems to write; known: {', '.join(SERIES)}")
    parser.add_argument("--patterns", type=_list(str), default=",".join(d.patterns), metavar="PATTERN,...",
                        help="sampling patterns: Uniform, ktGaussian, ktRadial")
    parser.add_argument("--accelerations", type=_list(int), default=",".join(map(str, d.accelerations)), metavar="R,...",
                        help="nominal accelerations (ACS not counted, as the organizers define R)")
    parser.add_argument("--acs", type=int, default=d.acs, help="ACS lines (an ACS x ACS square for ktRadial)")
    parser.add_argument("--family", choices=FAMILIES, default=d.family,
                        help="images and coils: cardiac (training's phantom) or a held-out family (see below)")
    parser.add_argument("--all-combos", action="store_true",
                        help="validation layout: write every pattern x R for every series instead of one each")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from tqdm import tqdm

    from genre.data.heldout import BartUnavailable
    from genre.data.synthetic import SynthConfig, job_paths, plan, write_series

    try:
        config = SynthConfig(
            layout=args.layout, task=args.task, seed=args.seed, cases=args.cases, domains=args.domains,
            size=args.size, coils=args.coils, frames=args.frames, slices=args.slices, stems=args.stems,
            patterns=args.patterns, accelerations=args.accelerations, acs=args.acs, all_combos=args.all_combos,
            family=args.family,
        )
    except ValueError as exc:
        log.error("genre synth: %s", exc)
        return 2
    jobs = plan(config)
    total = sum(len(job_paths(args.out, job, config)) for job in jobs)
    start = time.perf_counter()
    written = []
    try:
        with tqdm(total=total, unit="file", desc="synth") as bar:
            for job in jobs:
                paths = write_series(args.out, job, config)
                written += paths
                bar.update(len(paths))
    except OSError as exc:
        log.error("%s: cannot write (%s)", getattr(exc, "filename", None) or args.out, exc.strerror or exc)
        return 2
    except BartUnavailable as exc:
        log.error("genre synth: %s", exc)
        return 2
    size = sum(p.stat().st_size for p in written)
    log.info("wrote %d files (%.1f MB, %d series, %s layout) below %s in %.1f s",
             len(written), size / 1e6, len(jobs), config.layout, args.out, time.perf_counter() - start)
    return 0
