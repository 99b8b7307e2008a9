"""GENRE-CMR inference behind the common :class:`~genre.recon.base.Reconstructor` interface."""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path

import torch

from genre.weights_file import WeightsFileError, load_generator
from genre.models.generator import Generator
from genre.recon.base import MethodUnavailable, SeriesInfo
from genre.series import Neighbours, adjacent_positions

logger = logging.getLogger(__name__)

#: Target frames per network call unless asked otherwise.
DEFAULT_MAX_BATCH = 8
#: Where the weights shipped with the package live (``*.safetensors`` with their ``.json`` sidecars).
SHIPPED_WEIGHTS_DIR = Path(__file__).resolve().parents[1] / "weights"


class GenreReconstructor:
    """The trained generator applied to every (target frame, slice) of a series.

    Target frames are batched (``max_batch`` at a time; halved and retried on a CUDA
    out-of-memory error). The input (one slice as ``genre predict`` calls it, or a single-frame
    volume) crosses to the device once, and each batch gathers its adjacent frames there: no
    host work per batch beyond a few index lists, which matters where the network is fast (the
    small preset on a GPU; docs/benchmarks.md). Only one batch of adjacent inputs exists at a
    time. On CUDA the next batch is queued while the previous one computes, and the model's CNNs
    use bf16 autocast when its config says so (the
    default), with the FFTs and data consistency in complex64. ``channels_last`` stores the
    convolution weights, and thereby every activation, channels-last: the layout of cuDNN's
    fastest bf16 kernels, and on the CPU faster as well (docs/benchmarks.md); the arithmetic is
    that of the plain layout up to float rounding.
    """

    name = "genre"

    def __init__(
        self,
        model: Generator,
        device: str | torch.device = "cpu",
        max_batch: int = DEFAULT_MAX_BATCH,
        channels_last: bool = True,
    ):
        if max_batch < 1:
            raise ValueError(f"max_batch must be >= 1, got {max_batch}")
        self.device = torch.device(device)
        memory_format = torch.channels_last if channels_last else torch.contiguous_format
        self.model = model.to(self.device, memory_format=memory_format).eval()
        self.max_batch = max_batch

    def reconstruct(self, kspace: torch.Tensor, mask: torch.Tensor, info: SeriesInfo) -> torch.Tensor:
        """``kspace`` complex ``(frames, slices, coils, ky, kx)``, ``mask`` ``(frames, ky, kx)`` -> float32 ``(frames, slices, ky, kx)``."""
        return self._apply(kspace, mask, info, self.model.reconstruct)

    def estimate_kspace(self, kspace: torch.Tensor, mask: torch.Tensor, info: SeriesInfo) -> torch.Tensor:
        """The network's coil k-space, complex64 ``(frames, slices, coils, ky, kx)``, for the same inputs as :meth:`reconstruct`."""
        return self._apply(kspace, mask, info, self.model.reconstruct_kspace)

    def _apply(
        self,
        kspace: torch.Tensor,
        mask: torch.Tensor,
        info: SeriesInfo,
        forward: Callable[[torch.Tensor, torch.Tensor], torch.Tensor],
    ) -> torch.Tensor:
        """``forward`` (one of the generator's inference paths) for every (frame, slice) target, as ``(frames, slices, ...)`` on the host."""
        frames, slices, _, ny, nx = kspace.shape
        if tuple(mask.shape) != (frames, ny, nx):
            raise ValueError(f"mask must be (frames, ky, kx) = {(frames, ny, nx)}, got {tuple(mask.shape)}")
        mode = info.neighbours
        if mode is Neighbours.SLICES and frames != 1:
            raise ValueError(f"neighbouring slices stand in for frames only in single-frame series, got {frames} frames")
        targets = [(f, s) for s in range(slices) for f in range(frames)]
        out = None  # allocated at the first batch, whose result says the per-target shape and dtype
        device_kspace = self.to_device(kspace.to(torch.complex64))
        device_mask = self.to_device(mask.to(torch.float32))
        pending = None  # (targets, images, copied) of the batch launched last
        batch, start = self.max_batch, 0
        while start < len(targets):
            chunk = targets[start : start + batch]
            try:
                launched = self._launch(device_kspace, device_mask, chunk, mode, forward)
            except torch.cuda.OutOfMemoryError:
                if batch == 1:
                    raise
                launched = None
            if launched is None:
                # Outside the except clause, so the failed batch's tensors are already freed.
                batch //= 2
                torch.cuda.empty_cache()
                logger.warning("CUDA out of memory: retrying with %d target frames per batch", batch)
                continue
            # The previous batch is stored only now, so that on CUDA this batch was queued
            # while that one computed.
            if pending is not None:
                _store(out, *pending)
            if out is None:
                out = torch.empty(frames, slices, *launched[0].shape[1:], dtype=launched[0].dtype)
            pending = (chunk, *launched)
            start += len(chunk)
        if pending is not None:
            _store(out, *pending)
        return out

    def _launch(
        self,
        kspace: torch.Tensor,
        mask: torch.Tensor,
        chunk: list[tuple[int, int]],
        mode: Neighbours,
        forward: Callable[[torch.Tensor, torch.Tensor], torch.Tensor],
    ) -> tuple[torch.Tensor, torch.cuda.Event | None]:
        """``forward``'s results ``(len(chunk), ...)`` on the host for the (frame, slice) targets in ``chunk``.

        ``kspace`` complex64 ``(frames, slices, coils, ky, kx)`` and ``mask`` ``(frames, ky, kx)``
        are on the device. On CUDA the work is only queued: the images are valid once the
        returned event has completed (``None`` on other devices).
        """
        with torch.no_grad():
            images = forward(*self.gather(kspace, mask, chunk, mode))
        if self.device.type != "cuda":
            return images.cpu(), None
        # A blocking copy back would wait for the next batch too, queued behind this one by
        # then; an asynchronous one into pinned memory and an event wait only for this batch.
        host = torch.empty(images.shape, dtype=images.dtype, pin_memory=True)
        host.copy_(images, non_blocking=True)
        copied = torch.cuda.Event()
        copied.record(torch.cuda.current_stream(self.device))
        return host, copied

    def gather(
        self, kspace: torch.Tensor, mask: torch.Tensor, chunk: list[tuple[int, int]], mode: Neighbours
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """The network's inputs for the (frame, slice) targets in ``chunk``: k-space ``(len(chunk), adj, coils, ky, kx)`` and mask ``(len(chunk), adj, ky, kx)``.

        ``kspace`` ``(frames, slices, coils, ky, kx)`` and ``mask`` ``(frames, ky, kx)`` on the
        model's device; each target's adjacent frames (or slices) per :func:`adjacent_positions`.
        """
        adj = self.model.config.adjacent
        frames, slices = kspace.shape[:2]
        rows = [adjacent_positions(frames, slices, f, s, adj, mode) for f, s in chunk]
        index = self.to_device(torch.tensor(rows))  # (batch, adj, 2): frame, slice
        return kspace[index[..., 0], index[..., 1]], mask[index[..., 0]]  # copies

    def to_device(self, host: torch.Tensor) -> torch.Tensor:
        """``host`` on the model's device; to CUDA through pinned memory, so that the copy does not wait for queued work."""
        if self.device.type != "cuda":
            return host.to(self.device)
        return host.pin_memory().to(self.device, non_blocking=True)


def _store(
    out: torch.Tensor, chunk: list[tuple[int, int]], images: torch.Tensor, copied: torch.cuda.Event | None
) -> None:
    """Write a batch's host results ``(len(chunk), ...)`` into ``out`` ``(frames, slices, ...)`` once ``copied`` has completed."""
    if copied is not None:
        copied.synchronize()
    for (f, s), image in zip(chunk, images):
        out[f, s] = image


def build_genre_reconstructor(
    checkpoint: Path | None, device: torch.device, max_batch: int | None = None
) -> GenreReconstructor:
    """The reconstructor for ``genre.recon.make_reconstructor``: weights from ``checkpoint``, or the shipped ones.

    Raises :class:`~genre.recon.base.MethodUnavailable` with one line naming the file and the
    problem (no weights shipped, a missing sidecar, weights of another configuration).
    """
    if max_batch is not None and max_batch < 1:
        raise MethodUnavailable(f"--max-batch must be >= 1, got {max_batch}")
    path = checkpoint if checkpoint is not None else _shipped_weights()
    try:
        model = load_generator(path, device)
    except WeightsFileError as err:
        raise MethodUnavailable(str(err)) from None
    return GenreReconstructor(model, device, max_batch or DEFAULT_MAX_BATCH)


def _shipped_weights() -> Path:
    found = sorted(SHIPPED_WEIGHTS_DIR.glob("*.safetensors"))
    if len(found) == 1:
        return found[0]
    if not found:
        raise MethodUnavailable(f"no GENRE-CMR weights shipped in {SHIPPED_WEIGHTS_DIR}; pass --checkpoint PATH")
    names = ", ".join(p.name for p in found)
    raise MethodUnavailable(f"{SHIPPED_WEIGHTS_DIR} holds several weights files ({names}); pass --checkpoint PATH")
