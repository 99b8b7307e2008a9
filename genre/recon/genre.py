"""GENRE-CMR inference behind the common :class:`~genre.recon.base.Reconstructor` interface."""

from __future__ import annotations

import logging
from pathlib import Path

import torch

from genre.checkpoint import CheckpointError, load_generator
from genre.kspace import rss_from_kspace
from genre.models.generator import Generator
from genre.recon import MethodUnavailable
from genre.recon.base import SeriesInfo
from genre.series import Neighbours, adjacent_indices

logger = logging.getLogger(__name__)

#: Percentile of the zero-filled RSS image that the input is scaled to 1 by.
SCALE_PERCENTILE = 99.5
#: Target frames per network call unless asked otherwise.
DEFAULT_MAX_BATCH = 8
#: Where the weights shipped with the package live (``*.safetensors`` with their ``.json`` sidecars).
SHIPPED_WEIGHTS_DIR = Path(__file__).resolve().parents[1] / "weights"


def input_scale(kspace: torch.Tensor) -> torch.Tensor:
    """Per-sample scale ``(batch,)`` of k-space ``(batch, coils, ky, kx)``: a high percentile of its zero-filled RSS image.

    The generator is scale-equivariant (every U-Net normalises its input, data consistency is
    linear), so the scale only brings the numbers to O(1), where the bf16 range and the
    small floors in the normalisations are immaterial. A percentile rather than the maximum,
    so that one spike or one bright artefact does not set it.
    """
    image = rss_from_kspace(kspace).flatten(1)
    k = max(1, round(image.shape[1] * SCALE_PERCENTILE / 100))
    scale = image.kthvalue(k, dim=1).values
    return torch.where(scale > 0, scale, torch.ones_like(scale))


class GenreReconstructor:
    """The trained generator applied to every (target frame, slice) of a series.

    Target frames are batched (``max_batch`` at a time; halved and retried on a CUDA
    out-of-memory error). Only one batch of adjacent inputs is on the device at a time. The
    model runs in fp32 on CPU; on CUDA its CNNs use bf16 autocast when its config says so,
    with the FFTs and data consistency in complex64.
    """

    name = "genre"

    def __init__(self, model: Generator, device: str | torch.device = "cpu", max_batch: int = DEFAULT_MAX_BATCH):
        if max_batch < 1:
            raise ValueError(f"max_batch must be >= 1, got {max_batch}")
        self.device = torch.device(device)
        self.model = model.to(self.device).eval()
        self.max_batch = max_batch

    def reconstruct(self, kspace: torch.Tensor, mask: torch.Tensor, info: SeriesInfo) -> torch.Tensor:
        """``kspace`` complex ``(frames, slices, coils, ky, kx)``, ``mask`` ``(frames, ky, kx)`` -> float32 ``(frames, slices, ky, kx)``."""
        frames, slices, _, ny, nx = kspace.shape
        if tuple(mask.shape) != (frames, ny, nx):
            raise ValueError(f"mask must be (frames, ky, kx) = {(frames, ny, nx)}, got {tuple(mask.shape)}")
        mode = info.neighbours
        if mode is Neighbours.SLICES and frames != 1:
            raise ValueError(f"neighbouring slices stand in for frames only in single-frame series, got {frames} frames")
        targets = [(f, s) for s in range(slices) for f in range(frames)]
        out = torch.empty(frames, slices, ny, nx, dtype=torch.float32)
        batch, start = self.max_batch, 0
        while start < len(targets):
            chunk = targets[start : start + batch]
            try:
                images = self._reconstruct_batch(kspace, mask, chunk, mode)
            except torch.cuda.OutOfMemoryError:
                if batch == 1:
                    raise
                images = None
            if images is None:
                # Outside the except clause, so the failed batch's tensors are already freed.
                batch //= 2
                torch.cuda.empty_cache()
                logger.warning("CUDA out of memory: retrying with %d target frames per batch", batch)
                continue
            for (f, s), image in zip(chunk, images):
                out[f, s] = image
            start += len(chunk)
        return out

    def _reconstruct_batch(
        self, kspace: torch.Tensor, mask: torch.Tensor, chunk: list[tuple[int, int]], mode: Neighbours
    ) -> torch.Tensor:
        """RSS images ``(len(chunk), ky, kx)`` on the CPU for the (frame, slice) targets in ``chunk``."""
        adj = self.model.config.adjacent
        frames, slices = kspace.shape[:2]
        inputs_k, inputs_m = [], []
        for f, s in chunk:
            if mode is Neighbours.SLICES:
                frame_idx, slice_idx = [0] * adj, adjacent_indices(slices, s, adj, mode)
            else:
                frame_idx, slice_idx = adjacent_indices(frames, f, adj, mode), [s] * adj
            inputs_k.append(kspace[frame_idx, slice_idx])
            inputs_m.append(mask[frame_idx])
        k = torch.stack(inputs_k).to(self.device, torch.complex64)
        m = torch.stack(inputs_m).to(self.device, torch.float32)
        del inputs_k, inputs_m  # the stacked copies are all this batch needs
        scale = input_scale(k[:, adj // 2])
        with torch.no_grad():
            image = self.model(k / scale.view(-1, 1, 1, 1, 1), m, return_intermediate=False).image()
        return (image * scale.view(-1, 1, 1)).float().cpu()


def build_genre_reconstructor(
    checkpoint: Path | None, device: torch.device, max_batch: int | None = None
) -> GenreReconstructor:
    """The reconstructor for ``genre.recon.make_reconstructor``: weights from ``checkpoint``, or the shipped ones.

    Raises :class:`~genre.recon.MethodUnavailable` with one line naming the file and the
    problem (no weights shipped, a missing sidecar, weights of another configuration).
    """
    if max_batch is not None and max_batch < 1:
        raise MethodUnavailable(f"--max-batch must be >= 1, got {max_batch}")
    path = checkpoint if checkpoint is not None else _shipped_weights()
    try:
        model = load_generator(path, device)
    except CheckpointError as err:
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
