"""``genre model-info``: parameter count and FLOPs per slice-frame of a generator preset."""

from __future__ import annotations

import argparse
import logging
import time

import torch
from torch.utils.flop_counter import FlopCounterMode

from genre.models.config import PRESETS, preset
from genre.models.generator import Generator
from genre.device import DeviceUnavailable, resolve_device

log = logging.getLogger("genre.model_info")

DESCRIPTION = """\
Build the generator of a preset with random weights and print its size: parameters (in total,
in the sensitivity network and per cascade) and the floating-point operations of one forward
pass that reconstructs one frame of one slice, counted with torch's FlopCounterMode at the
given matrix size. Convolutions and matrix products are counted (2 FLOPs per multiply-add);
FFTs and elementwise operations are not, they are a small fraction.

example:
  genre model-info --preset small
  genre model-info --preset paper --height 246 --width 512 --coils 10   # half a minute on CPU
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
    parser.add_argument(
        "--device", choices=("auto", "cpu", "cuda"), default="auto",
        help="where to run the counting forward pass; auto takes CUDA when present"
    )
    parser.set_defaults(func=run)


def count_flops(model: Generator, coils: int, height: int, width: int) -> int:
    """FLOPs of one inference pass of ``model`` reconstructing one slice-frame of ``coils x height x width``.

    Counted with torch's FlopCounterMode on random k-space ``(1, adjacent, coils, height, width)``
    on the model's device: convolutions and matrix products, 2 FLOPs per multiply-add.
    """
    device = next(model.parameters()).device
    adjacent = model.config.adjacent
    kspace = torch.randn(1, adjacent, coils, height, width, dtype=torch.complex64, device=device)
    # Fully sampled: the count does not depend on the mask, and a full mask always has a centre block.
    mask = torch.ones(1, adjacent, height, width, device=device)
    counter = FlopCounterMode(display=False)
    with torch.no_grad(), counter:
        model(kspace, mask, return_intermediate=False)
    return counter.get_total_flops()


def run(args: argparse.Namespace) -> int:
    try:
        device = resolve_device(args.device)
    except DeviceUnavailable as exc:
        log.error("%s", exc)
        return 2
    config = preset(args.preset)
    torch.manual_seed(0)
    model = Generator(config).to(device).eval()
    total = sum(p.numel() for p in model.parameters())
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    sens = sum(p.numel() for p in model.sensitivity.parameters())
    per_cascade = sum(p.numel() for p in model.cascades[0].parameters())

    start = time.perf_counter()
    flops = count_flops(model, args.coils, args.height, args.width)
    seconds = time.perf_counter() - start

    residual = "on" if config.residual else "off"
    print(f"preset       {args.preset}")
    print(f"cascades     {config.cascades} (update {config.update}, residual path {residual})")
    print(f"parameters   {total:,} (trainable {trainable:,})")
    print(f"  sensitivity  {sens:,}")
    print(f"  per cascade  {per_cascade:,}")
    print(f"input        {args.coils} coils x {config.adjacent} adjacent frames x {args.height} x {args.width}")
    print(f"FLOPs        {_flops(flops)} per slice-frame")
    print(f"counted in   {seconds:.1f} s on {device.type} (under the FLOP counter: not a speed measure)")
    return 0
