"""k-space mathematics: pure tensor functions, no I/O.

Conventions used everywhere in the package:

* k-space of one slice is complex ``(frames, coils, ky, kx)``; a volume adds a slice axis,
  ``(frames, slices, coils, ky, kx)``. ``ky`` is the phase-encoding axis (undersampled),
  ``kx`` the readout. Any number of leading axes is allowed where a docstring says ``...``.
* Images are complex ``(..., ky, kx)`` with the same trailing axes.
* Sampling masks are real ``(..., ky, kx)`` with 0/1 entries and broadcast against k-space.
* The 2-D transforms are centred and orthonormal: ``ifftshift -> fft -> fftshift`` over the
  last two axes. This shift order is the organizers' and keeps odd-sized images in place;
  the reverse order moves them by one pixel.
"""

from __future__ import annotations

import torch

_SPATIAL = (-2, -1)


def _centred(transform, x: torch.Tensor, dim: tuple[int, ...]) -> torch.Tensor:
    """``transform`` (``torch.fft.fftn`` or ``ifftn``, orthonormal) over ``dim`` with the centre at ``n // 2``."""
    return torch.fft.fftshift(transform(torch.fft.ifftshift(x, dim=dim), dim=dim, norm="ortho"), dim=dim)


def fft2c(image: torch.Tensor) -> torch.Tensor:
    """Centred orthonormal 2-D FFT over the last two axes: image ``(..., ky, kx)`` -> k-space."""
    return _centred(torch.fft.fftn, image, _SPATIAL)


def ifft2c(kspace: torch.Tensor) -> torch.Tensor:
    """Centred orthonormal inverse 2-D FFT over the last two axes: k-space ``(..., ky, kx)`` -> image."""
    return _centred(torch.fft.ifftn, kspace, _SPATIAL)


def readout_to_image(kspace: torch.Tensor) -> torch.Tensor:
    """Centred orthonormal inverse 1-D FFT over the readout (last) axis: ``(..., ky, kx)`` -> hybrid ``(..., ky, x)``."""
    return _centred(torch.fft.ifftn, kspace, (-1,))


def readout_to_kspace(hybrid: torch.Tensor) -> torch.Tensor:
    """Inverse of :func:`readout_to_image`: hybrid ``(..., ky, x)`` -> k-space ``(..., ky, kx)``."""
    return _centred(torch.fft.fftn, hybrid, (-1,))


def rss(coil_images: torch.Tensor, coil_dim: int = -3) -> torch.Tensor:
    """Root-sum-of-squares magnitude over the coil axis: ``(..., coils, ky, kx)`` -> ``(..., ky, kx)``."""
    if coil_images.is_complex():
        power = coil_images.real.square() + coil_images.imag.square()
    else:
        power = coil_images.square()
    return power.sum(dim=coil_dim).sqrt()


def rss_from_kspace(kspace: torch.Tensor) -> torch.Tensor:
    """The reference image of the challenge: RSS of the coil images of ``(..., coils, ky, kx)``."""
    return rss(ifft2c(kspace))


def consistent_rss(kspace: torch.Tensor, estimate: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """RSS image ``(..., ky, kx)`` of an estimate with its measured samples put back.

    ``kspace`` and ``estimate`` are coil k-space ``(..., coils, ky, kx)``; ``mask`` is 0/1 and
    broadcasts against ``(..., ky, kx)``. Where a line was measured the data win (the classical
    methods' final data-consistency step), elsewhere the estimate stands.
    """
    coil_mask = mask.unsqueeze(-3)
    return rss_from_kspace(coil_mask * kspace + (1 - coil_mask) * estimate)


def sens_expand(image: torch.Tensor, sens: torch.Tensor) -> torch.Tensor:
    """Coil expansion ``FFT(S_c * x)``: image ``(..., ky, kx)``, maps ``(..., coils, ky, kx)`` -> k-space ``(..., coils, ky, kx)``."""
    return fft2c(sens * image.unsqueeze(-3))


def sens_reduce(kspace: torch.Tensor, sens: torch.Tensor) -> torch.Tensor:
    """Coil combination ``sum_c conj(S_c) * IFFT(k_c)``: k-space and maps ``(..., coils, ky, kx)`` -> image ``(..., ky, kx)``.

    This is the adjoint of :func:`sens_expand`.
    """
    return (sens.conj() * ifft2c(kspace)).sum(dim=-3)


def crop_start(length: int, size: int) -> int:
    """Start of a centred window of ``size`` in an axis of ``length``, as ``run4Ranking_2025.m`` crops.

    MATLAB writes it ``length//2 + ceil(-size/2)``: the window is centred on index ``length // 2``
    (the k-space / fftshift centre); for an even length and an odd size this differs by one
    from ``(length - size) // 2``.
    """
    if not 0 < size <= length:
        raise ValueError(f"cannot crop an axis of length {length} to {size}")
    return length // 2 - size // 2


def center_crop(x: torch.Tensor, shape: tuple[int, int]) -> torch.Tensor:
    """Centred crop of the last two axes of ``(..., ny, nx)`` to ``shape`` = (sy, sx), MATLAB-consistent."""
    sy, sx = shape
    y0 = crop_start(x.shape[-2], sy)
    x0 = crop_start(x.shape[-1], sx)
    return x[..., y0 : y0 + sy, x0 : x0 + sx]


def acs_block(mask: torch.Tensor) -> tuple[slice, slice]:
    """The central fully-sampled block of a sampling mask, as ``(ky_slice, kx_slice)``.

    ``mask`` is ``(ky, kx)`` or ``(frames, ky, kx)``; a sample counts as calibration data only if
    it is acquired in every frame. The block grows from the k-space centre one row or column at
    a time on each side while the new edge is fully sampled, so it finds the ACS lines of
    Cartesian patterns (full width in kx) and the square block of pseudo-radial ones, whatever
    their extent; never assume 16 or 20. Raises ``ValueError`` when the centre is not sampled.
    """
    sampled = mask.bool()
    if sampled.ndim == 3:
        sampled = sampled.all(dim=0)
    if sampled.ndim != 2:
        raise ValueError(f"mask must be (ky, kx) or (frames, ky, kx), got shape {tuple(mask.shape)}")
    ny, nx = sampled.shape
    y0, x0 = ny // 2, nx // 2
    if not bool(sampled[y0, x0]):
        raise ValueError("the k-space centre is not sampled: the mask has no calibration block")
    y1, x1 = y0 + 1, x0 + 1
    growing = {"up": True, "down": True, "left": True, "right": True}
    while any(growing.values()):
        # Each side grows at most one step per round so the block stays compact: a long
        # sampled line (a radial spoke) cannot pull one side far out before the others grow.
        if growing["up"]:
            growing["up"] = y0 > 0 and bool(sampled[y0 - 1, x0:x1].all())
            y0 -= growing["up"]
        if growing["down"]:
            growing["down"] = y1 < ny and bool(sampled[y1, x0:x1].all())
            y1 += growing["down"]
        if growing["left"]:
            growing["left"] = x0 > 0 and bool(sampled[y0:y1, x0 - 1].all())
            x0 -= growing["left"]
        if growing["right"]:
            growing["right"] = x1 < nx and bool(sampled[y0:y1, x1].all())
            x1 += growing["right"]
    return slice(y0, y1), slice(x0, x1)


def limit_block(block: tuple[slice, slice], shape: tuple[int, int], max_lines: int | None) -> tuple[slice, slice]:
    """Shrink the ky extent of an ACS ``block`` to at most ``max_lines`` lines around the k-space centre.

    The kx extent is capped the same way when the block is narrower than the readout (a
    pseudo-radial calibration square), so that a square stays square.
    """
    if max_lines is None:
        return block
    ky, kx = block
    ny, nx = shape

    def _cap(s: slice, n: int) -> slice:
        if s.stop - s.start <= max_lines:
            return s
        start = max(s.start, n // 2 - max_lines // 2)
        return slice(start, start + max_lines)

    return _cap(ky, ny), (kx if kx.stop - kx.start == nx else _cap(kx, nx))


def acs_kspace(kspace: torch.Tensor, block: tuple[slice, slice]) -> torch.Tensor:
    """Zero everything of ``(..., ky, kx)`` k-space outside the calibration ``block``."""
    out = torch.zeros_like(kspace)
    out[..., block[0], block[1]] = kspace[..., block[0], block[1]]
    return out


def normalize_sens(maps: torch.Tensor, eps: float = 1e-12) -> torch.Tensor:
    """Scale coil maps ``(..., coils, ky, kx)`` so that their root-sum-of-squares is 1 at every pixel."""
    return maps / (rss(maps).unsqueeze(-3) + eps)
