"""Inference timings: the generator alone in each precision, layout, batch and compilation, and the reconstructor end to end.

Network rows time ``Generator.forward(kspace, mask, return_intermediate=False)`` on inputs
already on the device: ``kspace`` ``(batch, adjacent, coils, ky, kx)`` complex64, ``mask``
``(batch, adjacent, ky, kx)``. End-to-end rows time :meth:`GenreReconstructor.reconstruct` on
one slice ``(frames, 1, coils, ky, kx)`` held on the host, as ``genre predict`` hands it over:
gathering, transfers, scaling and the copy back included. Inputs are random complex k-space
under a ktGaussian R = 8 mask with 20 ACS lines; weights are random (the time does not depend
on them).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace

import torch

from benchmarks.timing import Timing, time_call
from genre.masks import make_mask
from genre.models.config import GeneratorConfig
from genre.models.generator import Generator
from genre.models.prompt_unet import PromptUnet
from genre.recon.base import SeriesInfo
from genre.recon.network import GenreReconstructor

BATCHES = (1, 4, 8)


@dataclass(frozen=True)
class Variant:
    """One way of running the network; ``end_to_end`` rows go through the reconstructor on a whole slice."""

    name: str
    bf16: bool = False
    channels_last: bool = False
    batch: int = 1  # target frames per call; 0 on an end-to-end row: the reconstructor's default
    compile_mode: str | None = None  # torch.compile mode
    compile_cascades: bool = False  # compile each whole cascade (FFTs, data consistency) instead of its U-Net only
    cudnn_benchmark: bool = False
    end_to_end: bool = False


def variants(device: torch.device, compile_variants: bool = True) -> list[tuple[Variant, str | None]]:
    """Every variant with the reason it is skipped on ``device`` (``None``: it runs)."""
    cuda = device.type == "cuda"
    cpu_only = None if cuda else "n/a on CPU"
    no_bf16 = None if cuda else "n/a on CPU (the model's bf16 autocast is CUDA-only)"
    no_compile = cpu_only or (None if compile_variants else "skipped (--no-compile)")
    rows: list[tuple[Variant, str | None]] = []
    rows += [(Variant(f"fp32 batch {b}", batch=b), None) for b in BATCHES]
    rows += [(Variant(f"fp32 channels-last batch {b}", channels_last=True, batch=b), None) for b in BATCHES]
    rows += [(Variant(f"bf16 batch {b}", bf16=True, batch=b), no_bf16) for b in (1, 8)]
    rows += [(Variant(f"bf16 channels-last batch {b}", bf16=True, channels_last=True, batch=b), no_bf16) for b in BATCHES]
    fast = Variant("", bf16=True, channels_last=True, batch=8)
    rows += [
        (replace(fast, name="bf16 channels-last batch 8 + cudnn.benchmark", cudnn_benchmark=True), cpu_only),
        (replace(fast, name="bf16 channels-last batch 8 + torch.compile", compile_mode="default"), no_compile),
        # Inductor generates no code for complex operators (it warns and runs them eagerly), so
        # this row shows what compiling around the FFTs and data consistency is worth as they are.
        (replace(fast, name="bf16 channels-last batch 8 + torch.compile of whole cascades", compile_mode="default",
                 compile_cascades=True), no_compile),
        (replace(fast, name="bf16 channels-last batch 8 + CUDA graphs", compile_mode="reduce-overhead"), no_compile),
        (Variant("end to end: plain (fp32, batch 1)", end_to_end=True), None),
        # The reconstructor's defaults: what `genre predict` runs; batch 0 stands for its default.
        (Variant("end to end: final (predict default)", bf16=True, channels_last=True, batch=0, end_to_end=True), None),
        (Variant("end to end: predict --max-batch 1", bf16=True, channels_last=True, batch=1, end_to_end=True), None),
        # A 12-frame slice in one call rather than 8 + 4: whether the half batch costs more
        # than the larger batch's memory is for the GPU table to say.
        (Variant("end to end: predict --max-batch 12", bf16=True, channels_last=True, batch=12, end_to_end=True), None),
    ]
    return rows


def sampling_mask(frames: int, size: tuple[int, int]) -> torch.Tensor:
    """The benchmark's mask ``(frames, ky, kx)``: ktGaussian, R = 8, 20 ACS lines."""
    return torch.from_numpy(make_mask("ktGaussian", 8, frames, *size, seed=0))


def network_inputs(config: GeneratorConfig, batch: int, coils: int, size: tuple[int, int], device: torch.device):
    """``(kspace, mask)`` for one network call, on ``device``; see the module docstring."""
    ny, nx = size
    adjacent = config.adjacent
    mask = sampling_mask(adjacent, size)
    g = torch.Generator().manual_seed(0)
    kspace = torch.randn(batch, adjacent, coils, ny, nx, dtype=torch.complex64, generator=g) * mask.unsqueeze(1)
    return kspace.to(device), mask.expand(batch, adjacent, ny, nx).to(device)


def slice_inputs(frames: int, coils: int, size: tuple[int, int]) -> tuple[torch.Tensor, torch.Tensor]:
    """One cine slice on the host: k-space ``(frames, 1, coils, ky, kx)`` and mask ``(frames, ky, kx)``."""
    ny, nx = size
    mask = sampling_mask(frames, size)
    g = torch.Generator().manual_seed(0)
    kspace = torch.randn(frames, 1, coils, ny, nx, dtype=torch.complex64, generator=g)
    return kspace * mask[:, None, None], mask


def build(config: GeneratorConfig, state: Mapping[str, torch.Tensor], variant: Variant) -> Generator:
    """The generator of ``config`` with ``variant``'s precision and the weights ``state``, left where ``state`` is."""
    with torch.device("meta"):
        model = Generator(replace(config, bf16=variant.bf16))
    model.load_state_dict(state, assign=True)
    return model.eval()


def time_variant(
    variant: Variant,
    config: GeneratorConfig,
    state: Mapping[str, torch.Tensor],
    device: torch.device,
    coils: int,
    size: tuple[int, int],
    frames: int,
    repeats: int,
) -> tuple[Timing, int]:
    """The :class:`Timing` of one call and the slice-frames it reconstructs."""
    model = build(config, state, variant)
    benchmark_flag = torch.backends.cudnn.benchmark
    torch.backends.cudnn.benchmark = variant.cudnn_benchmark
    try:
        if variant.end_to_end:
            kspace, mask = slice_inputs(frames, coils, size)
            kwargs = {} if variant.batch == 0 else {"max_batch": variant.batch}
            if not variant.channels_last:
                kwargs["channels_last"] = False
            recon = GenreReconstructor(model, device, **kwargs)
            info = SeriesInfo(stem="cine_sax", frames=frames)
            return time_call(lambda: recon.reconstruct(kspace, mask, info), device, repeats), frames

        memory_format = torch.channels_last if variant.channels_last else torch.contiguous_format
        model = model.to(device, memory_format=memory_format)
        warmups = 1
        if variant.compile_mode is not None:
            if variant.compile_cascades:
                # The sensitivity model reads its mask on the host, a graph break: its U-Net only.
                targets = [*model.cascades, model.sensitivity.unet]
            else:
                targets = [module for module in model.modules() if isinstance(module, PromptUnet)]
            for module in targets:
                module.compile(mode=variant.compile_mode, dynamic=False)
            warmups = 3  # compilation, then CUDA graph recording
        kspace, mask = network_inputs(config, variant.batch, coils, size, device)

        def call() -> None:
            if variant.compile_mode == "reduce-overhead":
                torch.compiler.cudagraph_mark_step_begin()
            with torch.no_grad():
                model(kspace, mask, return_intermediate=False)

        return time_call(call, device, repeats, warmups), variant.batch
    finally:
        torch.backends.cudnn.benchmark = benchmark_flag
