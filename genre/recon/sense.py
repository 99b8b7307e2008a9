"""CG-SENSE: a classical parallel-imaging baseline with coil maps from the ACS block.

Coil maps are the low-resolution coil images of the calibration block divided by their
root-sum-of-squares. Each frame is then solved independently,
``min_x ||M F S x - y||^2 + lam ||x||^2``, by conjugate gradients on the normal equations,
batched over frames and slices. Because the maps have unit RSS, the operator's spectrum lies in
[0, 1] and ``lam`` and the iteration count mean the same on every file, whatever its scale.
The measured samples are finally put back (data consistency) and the RSS image is returned,
which is what the challenge's reference is.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from genre.kspace import acs_block, acs_kspace, consistent_rss, ifft2c, normalize_sens, sens_expand, sens_reduce
from genre.recon.base import SeriesInfo


@dataclass(frozen=True)
class SenseConfig:
    # Chosen on the synthetic demo tree (docs/benchmarks.md): lam 0.03-0.1 with 6-20 iterations
    # beat zero-filled at R 8, 16 and 24 on SSIM and PSNR; lam 0.003 amplifies noise.
    iterations: int = 10
    lam: float = 5e-2  # Tikhonov weight relative to the unit-norm operator
    tolerance: float = 1e-6  # relative residual at which a system stops improving


def sens_maps_from_acs(kspace: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Coil maps ``(1, ..., coils, ky, kx)`` from the ACS block of ``mask`` ``(frames, ky, kx)``.

    ``kspace`` is ``(frames, ..., coils, ky, kx)``. Coil sensitivities do not move over the
    frames, but the object's phase does (inversion recovery flips its sign), so each frame's
    low-resolution coil images are first referred to the phase of the strongest coil and only
    then summed: a plain complex sum would cancel where the signal changes sign.
    """
    low_res = ifft2c(acs_kspace(kspace, acs_block(mask)))
    energy = low_res.abs().square().sum(dim=(0, -2, -1), keepdim=True)
    reference = torch.gather(low_res, -3, energy.argmax(dim=-3, keepdim=True).expand(*low_res.shape[:-3], 1, *low_res.shape[-2:]))
    aligned = low_res * torch.sgn(reference).conj()
    return normalize_sens(aligned.sum(dim=0, keepdim=True))


def cg_sense(kspace: torch.Tensor, mask: torch.Tensor, maps: torch.Tensor, config: SenseConfig) -> torch.Tensor:
    """Solve for the combined image ``(..., ky, kx)`` given k-space ``(..., coils, ky, kx)``.

    ``mask`` broadcasts against ``(..., ky, kx)`` and ``maps`` against ``(..., coils, ky, kx)``;
    every leading index is an independent system, solved in one batched CG.
    """
    coil_mask = mask.unsqueeze(-3)

    def normal(x: torch.Tensor) -> torch.Tensor:
        return sens_reduce(coil_mask * sens_expand(x, maps), maps) + config.lam * x

    def dot(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        return (a.conj() * b).sum(dim=(-2, -1), keepdim=True).real

    rhs = sens_reduce(kspace, maps)
    x = torch.zeros_like(rhs)
    residual = rhs.clone()
    direction = residual.clone()
    rr = dot(residual, residual)
    stop = config.tolerance**2 * dot(rhs, rhs)
    for _ in range(config.iterations):
        active = rr > stop
        if not bool(active.any()):
            break
        ap = normal(direction)
        alpha = torch.where(active, rr / dot(direction, ap).clamp_min(1e-30), torch.zeros_like(rr))
        x = x + alpha * direction
        residual = residual - alpha * ap
        rr_next = dot(residual, residual)
        beta = torch.where(active, rr_next / rr.clamp_min(1e-30), torch.zeros_like(rr))
        direction = residual + beta * direction
        rr = rr_next
    return x


class CGSense:
    name = "sense"

    def __init__(self, device: torch.device | str = "cpu", config: SenseConfig = SenseConfig()):
        self.device = torch.device(device)
        self.config = config

    @torch.no_grad()
    def reconstruct(self, kspace: torch.Tensor, mask: torch.Tensor, info: SeriesInfo) -> torch.Tensor:
        """``(frames, slices, coils, ky, kx)`` complex, ``(frames, ky, kx)`` mask -> ``(frames, slices, ky, kx)`` float32."""
        kspace, mask = kspace.to(self.device), mask.to(self.device)
        return consistent_rss(kspace, self._estimate(kspace, mask), mask.unsqueeze(1)).float().cpu()

    @torch.no_grad()
    def estimate_kspace(self, kspace: torch.Tensor, mask: torch.Tensor, info: SeriesInfo) -> torch.Tensor:
        """The solution's coil k-space ``F S x``, complex64 ``(frames, slices, coils, ky, kx)``, before the measured samples are put back."""
        return self._estimate(kspace.to(self.device), mask.to(self.device)).cpu()

    def _estimate(self, kspace: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        maps = sens_maps_from_acs(kspace, mask)
        image = cg_sense(kspace, mask.unsqueeze(1), maps, self.config)  # mask (frames, 1, ky, kx) against (frames, slices, ...)
        return sens_expand(image, maps)
