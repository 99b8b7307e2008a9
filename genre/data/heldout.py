"""Held-out image families for the generalization benchmark: images and coils that training never sees.

The shipped network learned from :mod:`genre.data.phantom`; the training mixture adds natural
photographs of ``skimage.data``, binary blobs and Gaussian textures, seen by loop coils and
random smooth coil fields. The families here share none of those sources (:data:`IMAGE_SOURCES`,
:data:`COIL_MODELS`; the training side can assert disjointness against them), so a benchmark
on them measures generalization:

* ``bart``: BART's numerical phantoms (``bart phantom``: Shepp-Logan, the geometric object
  phantom ``-G``, tubes ``-T``, random tubes ``-N``, ``--NIST``, ``--SONAR``) seen by BART's
  own simulated coil sensitivities (``bart phantom -S``). BART simulates at most 8 coils; more
  are the same 8 maps rotated about the centre by a fraction of the 45 degrees between
  neighbouring BART coils (a ring of 8 repeated), the whole set turned by a random angle.
  Series of several images (frames or slices) use the kinds BART rotates (tubes, NIST, SONAR):
  frames by ``10 deg * (1 - cos(2 pi t / frames)) / 2`` (periodic, as a heart cycle), slices
  offset by 6 degrees each. BART phantoms are square: rendered at ``min(ny, nx)`` and
  zero-padded to the matrix; sensitivities rendered at the matrix diagonal (so that rotated
  maps still cover it) and cropped.
* ``biological``: real biological and medical images shipped in installed packages:
  matplotlib's ``s1045.ima.gz`` (a 256 x 256 MR brain slice, big-endian 16-bit: the values
  are 0-215) and scikit-image's retina, cell, immunohistochemistry, microaneurysms and moon
  images, made grayscale, cropped to the matrix's aspect ratio and resized to its central 80%
  (a dark margin all round, as air around a body: ESPIRiT's calibration failed on images that
  fill the field of view edge to edge under birdcage coils, docs/benchmarks.md). Frames move
  periodically by a smooth nonrigid deformation (a smooth random displacement field of up to
  3% of the short side, scaled by ``(1 - cos(2 pi t / frames)) / 2``); the slices of a stack
  are the image under different static smooth deformations. Seen by birdcage coils
  (:func:`birdcage_maps`).

Both families add a smooth random phase, and mapping stems (weightings, not cardiac phases:
:func:`genre.series.is_mapping`) do not move but decay over their weightings, ``exp(-w_t
rate(x))`` with a smooth random rate map, so that their frames differ in contrast.

Images are ``(frames, slices, ny, nx)`` complex64 whose magnitude peaks at 1; coil maps are
``(coils, ny, nx)`` complex64 whose root-sum-of-squares peaks at 1, as :mod:`genre.data.phantom`'s
(ny = phase encodes, nx = readout). Randomness is keyed on ``(seed, key)`` by
:func:`genre.data.phantom.keyed_rng`. Source images are read from the installed packages' files,
BART phantoms by running the ``bart`` binary in a temporary folder; the rest is numpy and scipy.
"""

from __future__ import annotations

import gzip
import math
import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path

import numpy as np
from scipy.ndimage import gaussian_filter, map_coordinates, rotate

from genre.data.bartio import COIL_DIM, KX_DIM, KY_DIM, TIME_DIM, from_bart, read_cfl, run_bart
from genre.data.phantom import keyed_rng
from genre.series import has_time_axis, is_mapping

#: ``bart phantom`` options of each BART phantom kind.
BART_KINDS: dict[str, tuple[str, ...]] = {
    "shepp-logan": (),
    "geometric": ("-G",),
    "tubes": ("-T",),
    "random-tubes": ("-N", "8"),
    "NIST": ("--NIST",),
    "SONAR": ("--SONAR",),
}
#: The kinds ``bart phantom --rotation-steps`` rotates (0.8.00 ignores it for the others).
ROTATING_KINDS = ("tubes", "NIST", "SONAR")
#: BART's simulated coil sensitivities stop at this many coils (an assertion in phantom.c).
BART_MAX_COILS = 8
#: Angle between consecutive ``--rotation-steps``, degrees; frames swing over 5 steps, slices are 3 apart.
_BART_STEP_DEG, _BART_SWING_STEPS, _BART_SLICE_STEPS = 2.0, 5, 3


def _mr_brain() -> np.ndarray:
    import matplotlib.cbook

    with gzip.open(matplotlib.cbook.get_sample_data("s1045.ima.gz", asfileobj=False)) as raw:
        return np.frombuffer(raw.read(), ">u2").reshape(256, 256)


def _skimage(name: str) -> Callable[[], np.ndarray]:
    def load() -> np.ndarray:
        import skimage.data

        return getattr(skimage.data, name)()

    return load


#: Loader of each biological source image, keyed by its source name.
BIOLOGICAL_IMAGES: dict[str, Callable[[], np.ndarray]] = {
    "matplotlib.sample_data:s1045.ima.gz": _mr_brain,
    **{f"skimage.data:{name}": _skimage(name)
       for name in ("retina", "cell", "immunohistochemistry", "microaneurysms", "moon")},
}

#: Every image source of each held-out family, ``package.module:name``.
IMAGE_SOURCES: dict[str, tuple[str, ...]] = {
    "bart": tuple(f"bart.phantom:{kind}" for kind in BART_KINDS),
    "biological": tuple(BIOLOGICAL_IMAGES),
}
#: The coil model of each held-out family.
COIL_MODELS: dict[str, str] = {"bart": "bart.phantom:sensitivities", "biological": "birdcage"}
FAMILIES = tuple(IMAGE_SOURCES)


class BartUnavailable(RuntimeError):
    """The ``bart`` family needs BART's binary."""


def _bart() -> str:
    executable = shutil.which("bart")
    if executable is None:
        raise BartUnavailable("the bart family needs BART's `bart` binary on PATH (apt-get install bart)")
    return executable


def _bart_phantom(options: tuple[str, ...], size: int) -> np.ndarray:
    """``bart phantom -x size OPTIONS``: images ``(steps, size, size)`` (steps: BART's rotation axis) or maps ``(coils, size, size)``."""
    with tempfile.TemporaryDirectory(prefix="genre-phantom-") as tmp:
        run_bart(_bart(), Path(tmp), "phantom", "-x", str(size), *options, "out")
        array = read_cfl(Path(tmp) / "out")
    axis = COIL_DIM if "-S" in options else TIME_DIM
    return from_bart(array, (axis, KY_DIM, KX_DIM))


def smooth_field(rng: np.random.Generator, shape: tuple[int, ...], sigma: float) -> np.ndarray:
    """Gaussian-filtered white noise of unit standard deviation, ``shape`` float64, features ~``sigma`` pixels wide."""
    field = gaussian_filter(rng.standard_normal(shape), sigma)
    return field / max(field.std(), 1e-12)


def motion_cycle(stem: str, frames: int) -> np.ndarray:
    """Motion amplitude per frame ``(frames,)`` in [0, 1]: one periodic cycle, or none for mapping and single-frame series."""
    if frames == 1 or is_mapping(stem):
        return np.zeros(frames)
    return (1 - np.cos(2 * np.pi * np.arange(frames) / frames)) / 2


def _finish(magnitude: np.ndarray, stem: str, rng: np.random.Generator) -> np.ndarray:
    """Magnitude ``(frames, slices, ny, nx)`` -> complex64 with a smooth phase, mapping decay, peak 1."""
    frames, _, ny, nx = magnitude.shape
    sigma = min(ny, nx) / 6
    image = magnitude * np.exp(1j * 1.2 * smooth_field(rng, (ny, nx), sigma))
    if is_mapping(stem):
        rate = np.clip(1 + 0.4 * smooth_field(rng, (ny, nx), sigma), 0.2, None)
        image = image * np.exp(-np.linspace(0, 1.5, frames)[:, None, None, None] * rate)
    return (image / np.abs(image).max()).astype(np.complex64)


def _check_series(stem: str, frames: int, slices: int) -> None:
    if frames < 1 or slices < 1 or (frames > 1 and not has_time_axis(stem)):
        raise ValueError(f"{stem}: {frames} frames and {slices} slices are not a series of this stem")


def bart_images(stem: str, frames: int, slices: int, ny: int, nx: int, seed: int = 0, key: str = "P001") -> np.ndarray:
    """A BART phantom series ``(frames, slices, ny, nx)`` complex64, magnitude peak 1 (module docstring)."""
    _check_series(stem, frames, slices)
    rng = keyed_rng(seed, "bart", key, stem)
    kinds = ROTATING_KINDS if frames * slices > 1 else tuple(BART_KINDS)
    kind = kinds[int(rng.integers(len(kinds)))]
    step = np.rint(_BART_SWING_STEPS * motion_cycle(stem, frames)).astype(int)
    steps = int(step.max()) + _BART_SLICE_STEPS * (slices - 1) + 1
    options = BART_KINDS[kind] + (("-r", str(int(rng.integers(1, 2**16)))) if kind == "random-tubes" else ())
    if kind in ROTATING_KINDS:
        options += ("--rotation-steps", str(steps), "--rotation-angle", f"{_BART_STEP_DEG:g}")
    n = min(ny, nx)
    rendered = np.abs(_bart_phantom(options, n))
    index = step[:, None] + _BART_SLICE_STEPS * np.arange(slices)[None, :]
    top, left = ny // 2 - n // 2, nx // 2 - n // 2  # the phantom's centre on the FFT centre
    magnitude = np.zeros((frames, slices, ny, nx))
    magnitude[:, :, top : top + n, left : left + n] = rendered[index]
    return _finish(magnitude, stem, rng)


def bart_maps(coils: int, ny: int, nx: int, seed: int = 0, key: str = "P001") -> np.ndarray:
    """BART's simulated coil sensitivities ``(coils, ny, nx)`` complex64, RSS peak 1; rotated repeats beyond 8 coils."""
    rng = keyed_rng(seed, "bart-coils", key, str(coils))
    size = math.ceil(math.hypot(ny, nx)) + 2
    base = _bart_phantom(("-S", str(min(coils, BART_MAX_COILS))), size)
    rings = math.ceil(coils / BART_MAX_COILS)
    turn = float(rng.uniform(0, 360))
    maps = np.concatenate([
        rotate(base, turn + ring * (360 / BART_MAX_COILS) / rings, axes=(-2, -1), reshape=False, order=1)
        for ring in range(rings)
    ])[:coils]
    top, left = size // 2 - ny // 2, size // 2 - nx // 2
    maps = maps[:, top : top + ny, left : left + nx]
    return (maps / np.sqrt((np.abs(maps) ** 2).sum(0)).max()).astype(np.complex64)


#: Fraction of each side of the matrix that a biological image fills; the rest is a dark margin.
FILL = 0.8


def _fit(image: np.ndarray, ny: int, nx: int) -> np.ndarray:
    """A 2-D grayscale image cropped centrally to the aspect ratio ``ny : nx``, resized to the central ``FILL`` of ``(ny, nx)``."""
    from skimage.transform import resize

    h, w = image.shape
    ch, cw = (min(h, round(w * ny / nx)), w) if h * nx > w * ny else (h, min(w, round(h * nx / ny)))
    top, left = (h - ch) // 2, (w - cw) // 2
    inner = round(FILL * ny), round(FILL * nx)
    out = np.zeros((ny, nx))
    y0, x0 = ny // 2 - inner[0] // 2, nx // 2 - inner[1] // 2  # centred on the FFT centre
    out[y0 : y0 + inner[0], x0 : x0 + inner[1]] = resize(image[top : top + ch, left : left + cw], inner, anti_aliasing=True)
    return out


def source_image(name: str) -> np.ndarray:
    """A biological source image as 2-D float64 grayscale, peak 1."""
    from skimage.color import rgb2gray

    image = np.asarray(BIOLOGICAL_IMAGES[name](), dtype=np.float64)
    image = rgb2gray(image) if image.ndim == 3 else image
    return image / image.max()


def biological_images(stem: str, frames: int, slices: int, ny: int, nx: int, seed: int = 0, key: str = "P001") -> np.ndarray:
    """A biological image series ``(frames, slices, ny, nx)`` complex64, magnitude peak 1 (module docstring)."""
    _check_series(stem, frames, slices)
    rng = keyed_rng(seed, "biological", key, stem)
    names = tuple(BIOLOGICAL_IMAGES)
    image = _fit(source_image(names[int(rng.integers(len(names)))]), ny, nx)
    sigma, reach = min(ny, nx) / 6, 0.03 * min(ny, nx)
    grid = np.stack(np.meshgrid(np.arange(ny), np.arange(nx), indexing="ij")).astype(np.float64)
    beat = np.stack([smooth_field(rng, (ny, nx), sigma) for _ in range(2)]) * reach / 2
    cycle = motion_cycle(stem, frames)
    magnitude = np.empty((frames, slices, ny, nx))
    for k in range(slices):
        offset = np.stack([smooth_field(rng, (ny, nx), sigma) for _ in range(2)]) * reach / 2 if k else 0.0
        for t in range(frames):
            magnitude[t, k] = map_coordinates(image, grid + offset + cycle[t] * beat, order=1, mode="nearest")
    return _finish(magnitude, stem, rng)


def birdcage_maps(coils: int, ny: int, nx: int, seed: int = 0, key: str = "P001", radius: float = 1.5) -> np.ndarray:
    """Birdcage coil maps ``(coils, ny, nx)`` complex64, RSS peak 1.

    ``coils`` elements evenly spaced (the ring turned by a random angle) on a circle of
    ``radius`` in coordinates where each image axis spans [-1, 1), i.e. an ellipse matched to
    the field of view; magnitude 1 / distance to the element, phase the angle around it plus the
    element's position angle, as sigpy's ``birdcage_maps``.
    """
    rng = keyed_rng(seed, "birdcage", key, str(coils))
    y, x = np.meshgrid((np.arange(ny) - ny // 2) / (ny / 2), (np.arange(nx) - nx // 2) / (nx / 2), indexing="ij")
    angles = 2 * np.pi * np.arange(coils) / coils + rng.uniform(0, 2 * np.pi)
    dx = x - radius * np.cos(angles)[:, None, None]
    dy = y - radius * np.sin(angles)[:, None, None]
    maps = np.exp(1j * (np.arctan2(dx, -dy) - angles[:, None, None])) / np.hypot(dx, dy)
    return (maps / np.sqrt((np.abs(maps) ** 2).sum(0)).max()).astype(np.complex64)


#: Images and coil maps of each family: ``images(stem, frames, slices, ny, nx, seed, key)``, ``maps(coils, ny, nx, seed, key)``.
RENDERERS: dict[str, tuple[Callable[..., np.ndarray], Callable[..., np.ndarray]]] = {
    "bart": (bart_images, bart_maps),
    "biological": (biological_images, birdcage_maps),
}
