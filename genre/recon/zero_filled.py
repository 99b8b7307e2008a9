"""Zero-filled reconstruction: the RSS of the inverse FFT of the measured samples."""

from __future__ import annotations

import torch

from genre.kspace import rss_from_kspace
from genre.recon.base import SeriesInfo


class ZeroFilled:
    """The floor every method must beat; costs one FFT per coil image."""

    name = "zero-filled"

    def __init__(self, device: torch.device | str = "cpu"):
        self.device = torch.device(device)

    @torch.no_grad()
    def reconstruct(self, kspace: torch.Tensor, mask: torch.Tensor, info: SeriesInfo) -> torch.Tensor:
        """``(frames, slices, coils, ky, kx)`` complex -> ``(frames, slices, ky, kx)`` float32."""
        return rss_from_kspace(kspace.to(self.device)).float().cpu()
