"""``genre model-info``: parameter count and FLOPs per slice-frame of a generator preset."""

from __future__ import annotations

import argparse

from genre.models.config import PRESETS, preset
from genre.models.flops import count_flops, meta_generator

DESCRIPTION = """\
Print the size of a preset's generator: parameters (in total, in the sensitivity network and
per cascade) and the floating-point operations of one forward pass that reconstructs one frame
of one slice at the given matrix size, counted with torch's FlopCounterMode on the meta device
(shapes only: seconds, on any machine). Convolutions and matrix products are counted (2 FLOPs
per multiply-add); FFTs and elementwise operations are not, they are a small fraction.

example:
  genre model-info --preset small
  genre model-info --preset paper --height 246 --width 512 --coils 10
"""


def _positive_int(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be a positive integer, got {text}")
    return value


def _flops(count: int) -> str:
    for unit, size in (("TFLOP", 1e12), ("GFLOP", 1e9)):
        if count >= size:
            return f"{count / size:.2f} {unit}"
    return f"{count / 1e6:.2f} MFLOP"


def register(subparsers: argparse._SubParsersAction, formatter_class: type[argparse.HelpFormatter]) -> None:
    parser = subparsers.add_parser(
        "model-info",
        help="parameters and FLOPs per slice-frame of a generator preset",
        description=DESCRIPTION,
        formatter_class=formatter_class,
    )
    parser.add_argument("--preset", choices=PRESETS, default="paper", help="generator configuration to measure")
    parser.add_argument("--height", type=_positive_int, default=162, help="ky, phase-encoding lines of the input")
    parser.add_argument("--width", type=_positive_int, default=448, help="kx, readout samples of the input")
    parser.add_argument("--coils", type=_positive_int, default=10, help="receiver coils of the input")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    config = preset(args.preset)
    model = meta_generator(config)
    total = sum(p.numel() for p in model.parameters())
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    sens = sum(p.numel() for p in model.sensitivity.parameters())
    per_cascade = sum(p.numel() for p in model.cascades[0].parameters())
    flops = count_flops(config, args.coils, args.height, args.width)

    residual = "on" if config.residual else "off"
    print(f"preset       {args.preset}")
    print(f"cascades     {config.cascades} (update {config.update}, residual path {residual})")
    print(f"parameters   {total:,} (trainable {trainable:,})")
    print(f"  sensitivity  {sens:,}")
    print(f"  per cascade  {per_cascade:,}")
    print(f"input        {args.coils} coils x {config.adjacent} adjacent frames x {args.height} x {args.width}")
    print(f"FLOPs        {_flops(flops)} per slice-frame")
    return 0
