"""BART ``pics``: a classical compressed-sensing peer with ESPIRiT coil maps.

The Berkeley Advanced Reconstruction Toolbox is a system binary (``apt-get install bart``);
this module talks to it through its file format only, one slice at a time:

* ``bart ecalib -m1``: one set of ESPIRiT coil maps from the calibration (ACS) block of the
  frame with the most ACS energy.
* ``bart pics``: ``min_x ||P F S x - y||^2 + ls ||W x||_1 (+ lt ||D_t x||_1)`` with an l1-wavelet
  spatial regulariser and, for periodic (cine) series, total variation along time, all frames
  of the slice solved jointly. Other series (mapping weightings, single frames) get the spatial
  term only, a sum of one term per frame: one call then solves every frame on its own.
* The measured samples are put back into ``F S x`` (data consistency) and the RSS image is
  returned, as :class:`genre.recon.sense.CGSense` does.

BART's arrays keep its own dimension meanings: ky -> 0, kx -> 1, coils -> 3, time -> 10.

Matrix sizes: ``bart fft -u`` equals :func:`genre.kspace.fft2c` at every size, but ``pics``
(0.8.00) centres its internal FFT by modulation, which is exact only when a side is a multiple
of 4 (measured): along an odd side its image comes out rolled by one pixel with a constant
phase, and each side of 2 mod 4 (162, the challenge's cine ky) negates it, so putting the
measured samples back would mix k-spaces of opposite sign. Each slice is therefore zero-padded in k-space (unsampled
lines at the edges, the centre kept at ``n // 2``) to multiples of 4, solved there, and the
estimate cropped back to the measured grid before data consistency.
"""

from __future__ import annotations

import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from genre.data.bartio import COIL_DIM, KX_DIM, KY_DIM, TIME_DIM, from_bart, read_cfl, run_bart, to_bart, write_cfl
from genre.kspace import acs_block, acs_kspace, center_crop, consistent_rss, crop_start, rss_from_kspace, sens_expand
from genre.recon.base import MethodUnavailable, SeriesInfo
from genre.series import Neighbours

#: Every side ``pics`` sees is padded to a multiple of this (see the module docstring).
GRID_MULTIPLE = 4
#: Quantile of the ACS image that the data are divided by before ``pics`` (BART's own choice, p90).
SCALE_QUANTILE = 0.9


@dataclass(frozen=True)
class BartConfig:
    # Chosen on the demo tree (genre demo --methods bart,sense,zero-filled, 15 files, mean SSIM).
    # Iterations matter most: at weights (0.005, 0.01) 15 gave 0.873, 30 0.898, 60 0.916, 100
    # 0.920, 200 no better (single frames' FISTA is done by 60, cine's ADMM gains up to 100).
    # At 100, spatial 0.002-0.02 with temporal 0.005-0.04 gave 0.915-0.921, best (0.003, 0.01).
    # ecalib's default map crop (-c 0.8) zeroes the maps on the noisy background that the
    # reference keeps and cost 0.002.
    iterations: int = 100
    spatial_weight: float = 0.003  # l1-wavelet weight, relative to an image scaled to p90 = 1
    temporal_weight: float = 0.01  # temporal TV weight (periodic series only), same units
    map_threshold: float = 0.0  # ecalib -c: maps are zeroed where the ESPIRiT eigenvalue is below this


def padded_shape(shape: tuple[int, int]) -> tuple[int, int]:
    """``(ny, nx)`` rounded up to multiples of :data:`GRID_MULTIPLE`."""
    return tuple(-(-n // GRID_MULTIPLE) * GRID_MULTIPLE for n in shape)


def embed(x: torch.Tensor, shape: tuple[int, int]) -> torch.Tensor:
    """Zero-pad the last two axes of ``(..., ny, nx)`` to ``shape``, the k-space centre ``n // 2`` staying at ``N // 2``.

    The inverse of :func:`genre.kspace.center_crop` (same placement, :func:`genre.kspace.crop_start`).
    """
    out = x.new_zeros(*x.shape[:-2], *shape)
    y0, x0 = crop_start(shape[0], x.shape[-2]), crop_start(shape[1], x.shape[-1])
    out[..., y0 : y0 + x.shape[-2], x0 : x0 + x.shape[-1]] = x
    return out


def calibration_frame(kspace: torch.Tensor, block: tuple[slice, slice]) -> int:
    """The frame of ``(frames, coils, ky, kx)`` k-space with the most energy in the ACS ``block``.

    Coil sensitivities do not move over frames but the object's phase does (inversion recovery
    flips its sign), so summing frames would cancel signal; ESPIRiT needs one consistent frame,
    and the strongest has the best SNR (not the nulled inversion time of a T1 map).
    """
    energy = kspace[..., block[0], block[1]].abs().square().sum(dim=(1, 2, 3))
    return int(energy.argmax())


def intensity_scale(kspace: torch.Tensor, block: tuple[slice, slice]) -> float:
    """The scale ``pics`` divides ``(frames, coils, ky, kx)`` k-space by: p90 of the RSS of the ACS images.

    BART's default (``-w`` unset) is the same rule on its own guess of the calibration region
    (within 12% of this on the demo tree). Fixing it here, from the ACS block of every frame of
    the slice, makes the regularisation weights mean the same on every file whatever the
    receiver's scale, independently of the BART version, and the same for every frame of a
    slice (a nulled T1-map weighting is not rescaled to look bright).
    """
    image = rss_from_kspace(acs_kspace(kspace, block))
    scale = float(torch.quantile(image.flatten().double(), SCALE_QUANTILE))
    return scale if scale > 0 else 1.0


def pics_arguments(config: BartConfig, scale: float, periodic: bool) -> list[str]:
    """``bart pics`` options: wavelets over ky/kx, temporal TV for a periodic series, fixed scale, rescaled output."""
    spatial = (1 << KY_DIM) | (1 << KX_DIM)
    args = ["-i", str(config.iterations), "-w", f"{scale:.9g}", "-S", "-R", f"W:{spatial}:0:{config.spatial_weight:g}"]
    if periodic:
        args += ["-R", f"T:{1 << TIME_DIM}:0:{config.temporal_weight:g}"]
    return args


class BartPics:
    """BART ``pics`` behind the :class:`~genre.recon.base.Reconstructor` interface; runs on the CPU."""

    name = "bart"

    def __init__(self, config: BartConfig = BartConfig()):
        executable = shutil.which("bart")
        if executable is None:
            raise MethodUnavailable("bart not found on PATH: install it (apt-get install bart) or choose another --method")
        self.executable = executable
        self.config = config

    def reconstruct(self, kspace: torch.Tensor, mask: torch.Tensor, info: SeriesInfo) -> torch.Tensor:
        """``(frames, slices, coils, ky, kx)`` complex, ``(frames, ky, kx)`` mask -> ``(frames, slices, ky, kx)`` float32."""
        kspace, mask = kspace.cpu(), mask.cpu()
        estimate = self.estimate_kspace(kspace, mask, info)
        return consistent_rss(kspace, estimate, mask.unsqueeze(1)).float()

    def estimate_kspace(self, kspace: torch.Tensor, mask: torch.Tensor, info: SeriesInfo) -> torch.Tensor:
        """The solution's coil k-space ``F S x``, complex64 ``(frames, slices, coils, ky, kx)``, before the measured samples are put back."""
        kspace, mask = kspace.cpu(), mask.cpu()
        periodic = info.neighbours is Neighbours.WRAP
        return torch.stack([self._slice(kspace[:, z], mask, periodic) for z in range(kspace.shape[1])], dim=1)

    def _slice(self, kspace: torch.Tensor, mask: torch.Tensor, periodic: bool) -> torch.Tensor:
        """k-space ``(frames, coils, ky, kx)`` and mask ``(frames, ky, kx)`` -> the estimate's k-space ``(frames, coils, ky, kx)``."""
        grid = padded_shape(tuple(kspace.shape[-2:]))
        image, maps = self._solve(embed(kspace, grid), embed(mask, grid), periodic)
        return center_crop(sens_expand(image, maps), tuple(kspace.shape[-2:])).to(torch.complex64)

    def _solve(self, kspace: torch.Tensor, mask: torch.Tensor, periodic: bool) -> tuple[torch.Tensor, torch.Tensor]:
        """k-space ``(frames, coils, ky, kx)``, mask ``(frames, ky, kx)`` -> image ``(frames, ky, kx)``, maps ``(coils, ky, kx)``."""
        block = acs_block(mask)
        calibration = acs_kspace(kspace[calibration_frame(kspace, block)], block)
        acs_size = f"{block[0].stop - block[0].start}:{block[1].stop - block[1].start}:1"
        with tempfile.TemporaryDirectory(prefix="genre-bart-") as tmp:
            work = Path(tmp)
            write_cfl(work / "calib", to_bart(calibration.numpy(), (COIL_DIM, KY_DIM, KX_DIM)))
            write_cfl(work / "kspace", to_bart(kspace.numpy(), (TIME_DIM, COIL_DIM, KY_DIM, KX_DIM)))
            write_cfl(work / "pattern", to_bart(mask.numpy(), (TIME_DIM, KY_DIM, KX_DIM)))
            # -r: calibrate on the whole ACS block (ecalib's default caps it at 24 lines).
            run_bart(self.executable, work, "ecalib", "-m1", "-c", f"{self.config.map_threshold:g}", "-r", acs_size, "calib", "maps")
            pics = pics_arguments(self.config, intensity_scale(kspace, block), periodic)
            run_bart(self.executable, work, "pics", *pics, "-p", "pattern", "kspace", "maps", "image")
            maps = torch.from_numpy(from_bart(read_cfl(work / "maps"), (COIL_DIM, KY_DIM, KX_DIM)).copy())
            image = torch.from_numpy(from_bart(read_cfl(work / "image"), (TIME_DIM, KY_DIM, KX_DIM)).copy())
        return image, maps
