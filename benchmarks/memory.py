"""``python -m benchmarks.memory``: how much tensor memory GENRE-CMR's reconstruction of one slice needs, counted on any device.

On CUDA ``benchmarks.speed`` reads the allocator's peak; without a GPU that figure does not
exist. This tool counts instead: every tensor an operation returns is recorded until the last
tensor on its storage is gone, and the largest total is the peak. It runs the reconstructor as
``genre predict`` does (one cine slice, ``--batch`` target frames per call) with random weights
and k-space. ``--emulate-bf16`` applies the CUDA precision policy on the CPU (bf16 activations
inside the U-Nets), which is what sets the activations' size on a GPU.

What it does not count: the weights and the caller's input slice (reported beside), the
allocator's rounding and caching, library workspaces (cuDNN's), and the host-side staging. So
it predicts the GPU's ``max_memory_allocated`` from below; on a GPU, measure.

examples:
  python -m benchmarks.memory --preset paper --size 162x448 --batch 8 --emulate-bf16
  python -m benchmarks.memory --preset tiny --size 32x48 --batch 1,4 --coils 4
"""

from __future__ import annotations

import argparse
import sys
import weakref
from collections.abc import Callable, Iterable
from dataclasses import dataclass, replace

import torch
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils._pytree import tree_leaves

from benchmarks.inference import slice_inputs
from benchmarks.speed import parse_benchmark_size
from genre.models import prompt_unet
from genre.models.config import PRESETS, preset
from genre.models.generator import Generator
from genre.recon.base import SeriesInfo
from genre.recon.network import GenreReconstructor

_MIB = 2**20


class LiveTensorPeak(TorchDispatchMode):
    """While active, the peak of the bytes held by storages that operations created (``peak``), and the bytes held now (``current``).

    A storage counts from the first operation that returns a tensor on it until the last
    tensor seen on it is garbage-collected. The storages of ``exclude`` (weights, inputs: made
    before, alive throughout) are never counted, also when an operation returns a view of them.
    """

    def __init__(self, exclude: Iterable[torch.Tensor] = ()):
        super().__init__()
        self.current = 0
        self.peak = 0
        self._tensors: dict[int, int] = {}  # storage address -> live tensors seen on it
        self._bytes: dict[int, int] = {}
        self._excluded = {t.untyped_storage().data_ptr() for t in exclude}

    def _forget(self, address: int) -> None:
        self._tensors[address] -= 1
        if self._tensors[address] == 0:
            del self._tensors[address]
            self.current -= self._bytes.pop(address)

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        out = func(*args, **(kwargs or {}))
        for tensor in tree_leaves(out):
            if not isinstance(tensor, torch.Tensor) or tensor.device.type == "meta":
                continue
            storage = tensor.untyped_storage()
            address = storage.data_ptr()
            if address == 0 or address in self._excluded:
                continue
            if address not in self._tensors:
                self._tensors[address] = 0
                self._bytes[address] = storage.nbytes()
                self.current += storage.nbytes()
                self.peak = max(self.peak, self.current)
            self._tensors[address] += 1
            weakref.finalize(tensor, self._forget, address)
        return out


def peak_tensor_bytes(fn: Callable[[], object], exclude: Iterable[torch.Tensor] = ()) -> int:
    """The peak of :class:`LiveTensorPeak` over one call of ``fn`` (its result is dropped inside), ``exclude`` not counted."""
    with LiveTensorPeak(exclude) as tracker:
        fn()
    return tracker.peak


@dataclass(frozen=True)
class Footprint:
    preset: str
    size: tuple[int, int]
    batch: int
    precision: str
    weights_bytes: int
    slice_bytes: int
    peak_bytes: int


def reconstruction_footprint(
    name: str, size: tuple[int, int], batch: int, coils: int, frames: int, emulate_bf16: bool
) -> Footprint:
    """Tensor memory of reconstructing one ``frames``-frame cine slice with preset ``name`` on the CPU."""
    torch.manual_seed(0)
    model = Generator(replace(preset(name), bf16=emulate_bf16))
    recon = GenreReconstructor(model, "cpu", max_batch=batch)
    kspace, mask = slice_inputs(frames, coils, size)
    info = SeriesInfo(stem="cine_sax", frames=frames)
    saved = prompt_unet.BF16_DEVICE_TYPES
    if emulate_bf16:
        prompt_unet.BF16_DEVICE_TYPES = (*saved, "cpu")
    try:
        held = [*model.parameters(), *model.buffers(), kspace, mask]
        peak = peak_tensor_bytes(lambda: recon.reconstruct(kspace, mask, info), exclude=held)
    finally:
        prompt_unet.BF16_DEVICE_TYPES = saved
    return Footprint(
        preset=name, size=size, batch=batch, precision="bf16 (CUDA policy, emulated)" if emulate_bf16 else "fp32",
        weights_bytes=sum(p.numel() * p.element_size() for p in model.parameters()),
        slice_bytes=kspace.numel() * kspace.element_size() + mask.numel() * mask.element_size(),
        peak_bytes=peak,
    )


def _positive_ints(text: str) -> list[int]:
    try:
        values = [int(v) for v in text.split(",")]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated integers, got {text!r}") from None
    if min(values) < 1:
        raise argparse.ArgumentTypeError(f"values must be >= 1, got {text!r}")
    return values


def _positive_int(text: str) -> int:
    (value,) = _positive_ints(text)
    return value


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.memory", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--preset", choices=PRESETS, default="paper", help="generator preset (default: paper)")
    parser.add_argument("--size", type=parse_benchmark_size, default=(162, 448), help="matrix KYxKX (default: 162x448)")
    parser.add_argument("--batch", type=_positive_ints, default=[8], help="target frames per network call, comma-separated "
                        "(default: 8, genre predict's)")
    parser.add_argument("--coils", type=_positive_int, default=10, help="receiver coils (default: 10)")
    parser.add_argument("--frames", type=_positive_int, default=12, help="frames of the slice (default: 12)")
    parser.add_argument("--emulate-bf16", action="store_true",
                        help="bf16 activations inside the U-Nets as on CUDA (default: float32, the CPU path)")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    print("| preset | size | batch | precision | weights MiB | tensors made, peak MiB | sum MiB | slice on the host MiB |")
    print("|---|---|---|---|---|---|---|---|")
    for batch in args.batch:
        f = reconstruction_footprint(args.preset, args.size, batch, args.coils, args.frames, args.emulate_bf16)
        print(f"| {f.preset} | {f.size[0]}x{f.size[1]} | {f.batch} | {f.precision} | {f.weights_bytes / _MIB:.0f} | "
              f"{f.peak_bytes / _MIB:.0f} | {(f.weights_bytes + f.peak_bytes) / _MIB:.0f} | {f.slice_bytes / _MIB:.0f} |",
              flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
