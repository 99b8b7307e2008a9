"""The hardware floor of one slice-frame: work per preset, the device's measured rates, and the time they allow.

Work (:func:`count_work`) is counted on one inference pass at batch 1 and the benchmark size:

* FLOPs from :func:`genre.models.flops.count_flops` (torch's FlopCounterMode on the meta device:
  convolutions and matrix products, 2 FLOPs per multiply-add; FFTs and elementwise work not
  counted).
* Minimum bytes moved, the model being: every weight read once per batch, the input k-space
  (adjacent frames x coils) and mask read once, the output image written once, and the output
  of every convolution (in the compute precision: 4 bytes fp32, 2 bytes bf16) and of every FFT
  (complex64, 8 bytes) written once. Everything between two such layers (activations,
  normalisation, residual sums, data consistency) is taken as fused into them, and re-reads
  are not counted: a floor, not an estimate of the traffic of the real kernels.

The floor time is the larger of FLOPs at the measured matrix-product rate and bytes at the
measured copy bandwidth (a roofline with no overlap penalty).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch.utils._python_dispatch import TorchDispatchMode

from benchmarks.timing import time_call
from genre.models.config import GeneratorConfig
from genre.models.flops import count_flops, meta_generator

_ATEN = torch.ops.aten
_CONVOLUTIONS = {_ATEN.convolution}
_FFTS = {_ATEN._fft_c2c, _ATEN._fft_r2c, _ATEN._fft_c2r}


@dataclass(frozen=True)
class DeviceRates:
    """Measured rates: matrix products in FLOP/s, copies in bytes/s (read plus write).

    ``matmul_tf32`` is fp32 on tensor cores, what cuDNN uses for fp32 convolutions by default
    (``torch.backends.cudnn.allow_tf32``); ``None`` where it does not apply (CPU), as is
    ``matmul_bf16`` on the CPU, where the model never runs in bf16.
    """

    matmul_size: int
    matmul_fp32: float
    matmul_tf32: float | None
    matmul_bf16: float | None
    copy_bytes: int
    copy: float

    def matmul(self, bf16: bool) -> float:
        """The rate the floor of a path uses: bf16, else what fp32 convolutions run at here."""
        if bf16:
            if self.matmul_bf16 is None:
                raise ValueError("no bf16 rate was measured on this device")
            return self.matmul_bf16
        if self.matmul_tf32 is not None and torch.backends.cudnn.allow_tf32:
            return self.matmul_tf32
        return self.matmul_fp32


@dataclass(frozen=True)
class Work:
    """One slice-frame's work at batch 1; see the module docstring for what is counted."""

    flops: int
    parameters: int
    conv_elements: int  # outputs of all convolutions
    fft_elements: int  # complex outputs of all FFTs
    io_bytes: int  # input k-space and mask, output image

    def bytes(self, bf16: bool, batch: int = 1) -> float:
        """Minimum bytes per slice-frame when ``batch`` slice-frames share one read of the weights."""
        width = 2 if bf16 else 4
        per_frame = self.conv_elements * width + self.fft_elements * 8 + self.io_bytes
        return per_frame + self.parameters * width / batch

    def floor_s(self, rates: DeviceRates, bf16: bool, batch: int = 1) -> float:
        """Seconds per slice-frame at the measured rates: compute or memory, whichever is slower."""
        return max(self.flops / rates.matmul(bf16), self.bytes(bf16, batch) / rates.copy)


class _OutputCounter(TorchDispatchMode):
    """Counts the output elements of convolutions and FFTs dispatched under it."""

    def __init__(self) -> None:
        super().__init__()
        self.conv_elements = 0
        self.fft_elements = 0

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        out = func(*args, **(kwargs or {}))
        if func.overloadpacket in _CONVOLUTIONS:
            self.conv_elements += out.numel()
        elif func.overloadpacket in _FFTS:
            self.fft_elements += out.numel()
        return out


def count_work(config: GeneratorConfig, coils: int, height: int, width: int) -> Work:
    """The :class:`Work` of one slice-frame of ``coils x height x width`` for a ``config`` generator (on the meta device)."""
    counter = _OutputCounter()
    with counter:
        flops = count_flops(config, coils, height, width)
    adjacent = config.adjacent
    pixels = height * width
    io_bytes = adjacent * coils * pixels * 8 + adjacent * pixels * 4 + pixels * 4
    return Work(
        flops=flops,
        parameters=sum(p.numel() for p in meta_generator(config).parameters()),
        conv_elements=counter.conv_elements,
        fft_elements=counter.fft_elements,
        io_bytes=io_bytes,
    )


def measure_rates(device: torch.device, quick: bool = False) -> DeviceRates:
    """Matrix-product rates (``torch.mm``, 8192 on CUDA, 2048 on the CPU, 512 with ``quick``) and
    the bandwidth of one large copy on ``device`` (1 GiB on CUDA, 256 MiB on the CPU, 16 MiB with ``quick``)."""
    cuda = device.type == "cuda"
    size = 512 if quick else 8192 if cuda else 2048
    repeats = 3 if quick else 10 if cuda else 5

    def mm_rate(dtype: torch.dtype) -> float:
        a = torch.randn(size, size, device=device, dtype=dtype)
        b = torch.randn(size, size, device=device, dtype=dtype)
        out = torch.empty(size, size, device=device, dtype=dtype)
        timing = time_call(lambda: torch.mm(a, b, out=out), device, repeats, warmups=2)
        return 2 * size**3 / timing.median_s

    fp32 = mm_rate(torch.float32)
    tf32 = bf16 = None
    if cuda:
        bf16 = mm_rate(torch.bfloat16)
        allowed = torch.backends.cuda.matmul.allow_tf32
        torch.backends.cuda.matmul.allow_tf32 = True
        try:
            tf32 = mm_rate(torch.float32)
        finally:
            torch.backends.cuda.matmul.allow_tf32 = allowed

    copy_bytes = 2**24 if quick else 2**30 if cuda else 2**28
    source = torch.empty(copy_bytes // 4, device=device).fill_(1.0)
    target = torch.empty_like(source)
    timing = time_call(lambda: target.copy_(source), device, repeats, warmups=2)
    return DeviceRates(
        matmul_size=size,
        matmul_fp32=fp32,
        matmul_tf32=tf32,
        matmul_bf16=bf16,
        copy_bytes=copy_bytes,
        copy=2 * copy_bytes / timing.median_s,
    )
