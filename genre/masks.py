"""The CMRxRecon 2025 undersampling patterns: Uniform, ktGaussian and ktRadial, with ACS.

Pure numpy, no I/O. Every generator returns a float32 0/1 mask ``(frames, ny, nx)``: ``ny`` is
the phase-encoding axis (ky), ``nx`` the readout (kx), as in :mod:`genre.kspace`. Files store
masks as MATLAB doubles; the writer converts.

The recipes follow the organizers' MATLAB mask generator (``ktMaskGenerator.m`` of the
CMRxRecon 2025 release, which produced the training, validation and test masks):

* ``Uniform``: ky lines ``0, R, 2R, ...`` (counted from the first line, not the centre), the same
  in every frame, plus ``acs`` central lines.
* ``ktGaussian``: per frame ``round(ny / R)`` distinct ky lines drawn from the density
  ``0.1 + alpha / (1 - alpha) * exp(-(ky / (ny / 5))**2)`` with ``alpha = 0.2``, plus the ACS
  lines. Draws may land inside the ACS, which then absorbs them.
* ``ktRadial``: ``floor(180 / (0.6 R))`` straight spokes through the k-space centre, each as long
  as the larger matrix side (so the corners of the kx-ky plane stay empty), evenly spread over
  180 degrees and rotated by 137.5 degrees from one frame to the next, plus a central
  ``acs x acs`` square. The 0.6 is the organizers' correction that brings the realised
  fraction of a 1-pixel-wide spoke pattern near 1/R.

The nominal R, as the organizers define it, does not count the ACS ("ACS not included for
calculations"): with 20 ACS lines a Cartesian mask samples more than 1/R of k-space, e.g. on
a 162 x 448 cine (ky x kx) with 12 frames

============  ========  ========  ========
pattern       R = 8     R = 16    R = 24
============  ========  ========  ========
Uniform       1/4.3     1/5.4     1/6.2
ktGaussian    1/4.6     1/5.8     1/6.4
ktRadial      1/8.0     1/15.8    1/22.7
============  ========  ========  ========

(realised fractions counting the ACS; on tiny synthetic matrices the ACS dominates even more).
What does hold, and the tests check, is the organizers' definition: outside the ACS a Uniform
mask samples one line in R, a ktGaussian mask draws ``round(ny / R)`` lines per frame, and a
ktRadial mask, ACS included, samples about 1/R of the plane.

The ACS sits where ``zpad`` puts it in the MATLAB code, rows ``ny//2 - acs//2`` onwards (the
same centring as :func:`genre.kspace.crop_start`), so odd matrix sizes are handled like the
organizers' files; :func:`genre.kspace.acs_block` finds it again. A line that the pattern
samples right beside the ACS widens the fully sampled block (Uniform R = 8 on ny = 204 gives 21
lines), in the organizers' masks as here: read the calibration extent from the mask.
"""

from __future__ import annotations

import enum
import math

import numpy as np
from skimage.draw import line

from genre.matlab_round import mround

#: Angle between the spokes of consecutive ktRadial frames, degrees (the organizers' value).
GOLDEN_ANGLE = 137.5
#: The organizers' factor on R for ktRadial, so that 1-pixel spokes realise about 1/R.
RADIAL_SPOKE_FACTOR = 0.6
#: ktGaussian density parameter of the organizers: 0 is uniform density, towards 1 strongly peaked.
GAUSSIAN_ALPHA = 0.2
DEFAULT_ACS = 20


class Pattern(str, enum.Enum):
    """The sampling patterns of CMRxRecon 2025, spelled as in the file names."""

    UNIFORM = "Uniform"
    KT_GAUSSIAN = "ktGaussian"
    KT_RADIAL = "ktRadial"


PATTERNS: tuple[str, ...] = tuple(p.value for p in Pattern)
ACCELERATIONS: tuple[int, ...] = (8, 16, 24)


def _check(frames: int, ny: int, nx: int, acceleration: float, acs: int) -> None:
    if frames < 1 or ny < 1 or nx < 1:
        raise ValueError(f"mask shape must be positive, got frames={frames}, ny={ny}, nx={nx}")
    if acceleration < 1:
        raise ValueError(f"acceleration must be at least 1, got {acceleration}")
    if acs < 0:
        raise ValueError(f"ACS size must not be negative, got {acs}")


def acs_lines(ny: int, acs: int = DEFAULT_ACS) -> slice:
    """The ky rows of a centred ACS of ``acs`` lines (clipped to ``ny``), as MATLAB's ``zpad`` places them."""
    acs = min(acs, ny)
    start = ny // 2 - acs // 2
    return slice(start, start + acs)


def uniform(frames: int, ny: int, nx: int, acceleration: int, acs: int = DEFAULT_ACS) -> np.ndarray:
    """Uniform: every ``acceleration``-th ky line from line 0, the same in every frame, plus ACS lines."""
    _check(frames, ny, nx, acceleration, acs)
    rows = np.zeros(ny, np.float32)
    rows[::acceleration] = 1
    rows[acs_lines(ny, acs)] = 1
    return np.broadcast_to(rows[None, :, None], (frames, ny, nx)).copy()


def kt_gaussian(
    frames: int,
    ny: int,
    nx: int,
    acceleration: float,
    acs: int = DEFAULT_ACS,
    rng: np.random.Generator | int | None = None,
    alpha: float = GAUSSIAN_ALPHA,
) -> np.ndarray:
    """ktGaussian: per frame ``round(ny / acceleration)`` distinct random ky lines from a Gaussian density, plus ACS lines.

    The organizers draw with replacement and move duplicates to the nearest free line of the
    same frame; drawing without replacement from the same density gives the same line count
    and nearly the same distribution. The draws do not depend on ``acs``, so the same ``rng``
    state gives the same random lines with and without calibration.
    """
    _check(frames, ny, nx, acceleration, acs)
    if not 0 <= alpha < 1:
        raise ValueError(f"alpha must be in [0, 1), got {alpha}")
    rng = np.random.default_rng(rng)
    ky = np.arange(ny) - ny // 2
    density = 0.1 + alpha / (1 - alpha) * np.exp(-((ky / (ny / 5)) ** 2))
    density /= density.sum()
    lines = min(mround(ny / acceleration), ny)
    mask = np.zeros((frames, ny, nx), np.float32)
    for frame in range(frames):
        mask[frame, rng.choice(ny, size=lines, replace=False, p=density)] = 1
    mask[:, acs_lines(ny, acs)] = 1
    return mask


def radial_spokes(acceleration: float) -> int:
    """Number of ktRadial spokes per frame at nominal ``acceleration`` (the organizers' formula)."""
    return max(1, math.floor(180 / (RADIAL_SPOKE_FACTOR * acceleration)))


def kt_radial(
    frames: int,
    ny: int,
    nx: int,
    acceleration: float,
    acs: int = DEFAULT_ACS,
    first_angle: float = 0.0,
) -> np.ndarray:
    """ktRadial: pseudo-radial 1-pixel spokes through the centre, golden-angle rotated per frame, plus an ``acs x acs`` square.

    Angles are degrees from the ky axis; frame ``f`` holds spokes at ``first_angle + 137.5 f +
    k * 180 / spokes``. Each spoke is a digital line of length ``max(ny, nx)`` centred on
    ``(ny // 2, nx // 2)`` and clipped to the matrix. ``first_angle`` varies the pattern for
    training augmentation; the organizers' masks use 0.
    """
    _check(frames, ny, nx, acceleration, acs)
    spokes = radial_spokes(acceleration)
    cy, cx = ny // 2, nx // 2
    half = max(ny, nx) / 2
    mask = np.zeros((frames, ny, nx), np.float32)
    for frame in range(frames):
        angles = np.deg2rad(first_angle + GOLDEN_ANGLE * frame + np.arange(spokes) * 180 / spokes)
        for angle in angles:
            # Endpoints symmetric about the centre so that every spoke passes through it.
            dy, dx = round(half * math.cos(angle)), round(half * math.sin(angle))
            rows, cols = line(cy - dy, cx - dx, cy + dy, cx + dx)
            inside = (rows >= 0) & (rows < ny) & (cols >= 0) & (cols < nx)
            mask[frame, rows[inside], cols[inside]] = 1
    mask[:, acs_lines(ny, acs), acs_lines(nx, acs)] = 1
    return mask


def make_mask(
    pattern: str | Pattern,
    acceleration: int,
    frames: int,
    ny: int,
    nx: int,
    acs: int = DEFAULT_ACS,
    seed: np.random.Generator | int | None = None,
) -> np.ndarray:
    """A CMRxRecon 2025 mask ``(frames, ny, nx)`` float32 0/1 of ``pattern`` at nominal ``acceleration``.

    ``seed`` (an int or a numpy Generator) drives ktGaussian; Uniform and ktRadial are
    deterministic, as the organizers' are. The same arguments always give the same mask.
    """
    pattern = Pattern(pattern)
    if pattern is Pattern.UNIFORM:
        return uniform(frames, ny, nx, acceleration, acs)
    if pattern is Pattern.KT_GAUSSIAN:
        return kt_gaussian(frames, ny, nx, acceleration, acs, rng=seed)
    return kt_radial(frames, ny, nx, acceleration, acs)


def mask_from_samples(acquired: np.ndarray) -> tuple[np.ndarray, bool]:
    """The sampling mask float32 ``(frames, ky, kx)`` of 0/1 of the ``acquired`` samples (bool, same shape); whether it is whole lines.

    Cartesian patterns (Uniform, ktGaussian) acquire whole ky lines, and a sample of an acquired
    line can still be exactly 0 (a zero-padded readout end), so when every line with an acquired
    sample has at least half of its samples, the mask is those lines in full. Spokes
    (ktRadial) cross most lines in a few samples only, so there the mask is the acquired samples
    themselves. Measured zeros are then lost, but a nonzero sample is never marked unmeasured.
    """
    lines = acquired.any(axis=-1)
    whole = bool(lines.any()) and bool((acquired.sum(axis=-1)[lines] * 2 >= acquired.shape[-1]).all())
    mask = np.broadcast_to(lines[..., None], acquired.shape) if whole else acquired
    return mask.astype(np.float32), whole
