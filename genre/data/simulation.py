"""Training samples simulated on the fly from several independent image sources, coil models and masks.

A network trained on one phantom generator learns that generator (issue 14: the first shipped
weights barely beat zero-filled on an independent phantom). Every sample here is drawn afresh
from a wide distribution, so that nothing about one anatomy model, one coil model, one matrix
size or one noise level can be memorised:

* **Image sources** (the sampler's domains, :data:`TRAINING_SOURCES`):
  ``cardiac``, the moving cardiac phantom of :mod:`genre.data.synthetic` (every stem, field
  strength and patient); ``photo``, natural photographs shipped with scikit-image
  (:data:`PHOTOS`), cropped, rescaled, flipped, often cut to a smooth body-like support; and
  ``texture``, procedural blobs, ellipses and random-field textures. Photos and textures move
  by a smooth non-rigid deformation: periodic over the frames of a cine-like series, a larger
  independent one between the slices of a single-frame stack, none (but a per-pixel contrast
  change) between the weightings of a mapping-like series. Each gets a smooth random phase.
* **Coils** (:data:`COIL_MODELS`): loops around the object with Biot-Savart-like fall-off, or
  smooth random complex fields; 4 to 12 coils (a CPU budget: the benchmark goes to 32).
* **Acquisition**: complex Gaussian noise at an SNR drawn log-uniformly from 15 to 120, matrices
  of 48 to 112 phase encodes by 48 to 128 readout points (odd sizes included), the three 2025
  patterns at the accelerations the curriculum allows, 16, 20 or 24 ACS lines, and a random
  global intensity scale (the network's input scaling must absorb it).

The images of the held-out benchmark families (:mod:`genre.data.heldout`) are never drawn here;
``tests/test_simulation.py`` checks that the sources are disjoint.

Items have the layout of :class:`genre.data.dataset.TrainingDataset` items, so the trainer,
the objective and the validation take them unchanged. An item is a pure function of
``(seed, epoch, index)``: the same whatever the worker, the order or a resumption.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, fields

import numpy as np
import torch
from scipy.ndimage import gaussian_filter, map_coordinates
from scipy.special import expit
from skimage import data as skdata
from skimage.color import rgb2gray
from skimage.transform import resize
from torch.utils.data import Dataset

from genre.data.phantom import phantom_images
from genre.data.synthetic import SERIES
from genre.kspace import fft2c, rss_from_kspace
from genre.masks import PATTERNS, make_mask
from genre.series import Neighbours, adjacent_positions, neighbours

#: scikit-image's shipped photographs used for training (``skimage.data`` function names).
PHOTOS = (
    "astronaut", "chelsea", "coffee", "rocket", "horse", "brick", "grass", "gravel", "page", "text",
    "coins", "camera", "hubble_deep_field", "clock", "stereo_motorcycle",
)
TRAINING_SOURCES = ("cardiac", "photo", "texture")
COIL_MODELS = ("loops", "smooth")
#: Every image source training draws from, ``package.module:name`` as genre.data.heldout names
#: its own, so that a test can check that no held-out family shares one.
IMAGE_SOURCES = ("genre.data.phantom", *(f"skimage.data:{name}" for name in PHOTOS), "skimage.data:binary_blobs")
#: How the adjacent inputs of a photo or texture series differ, and how often each is drawn.
SERIES_KINDS = {Neighbours.WRAP: 0.55, Neighbours.REFLECT: 0.2, Neighbours.SLICES: 0.25}


@dataclass(frozen=True)
class SimulationConfig:
    """Ranges of the simulated acquisitions (inclusive)."""

    ny: tuple[int, int] = (48, 112)
    nx: tuple[int, int] = (48, 128)
    coils: tuple[int, int] = (4, 12)
    # Of the centre frame's bright tissue over the RSS noise floor. CMRxRecon's fully sampled
    # references are clean; an SNR of 5 made ground truths that no reconstruction can match.
    snr: tuple[float, float] = (15.0, 120.0)
    acs: tuple[int, ...] = (16, 20, 24)
    patterns: tuple[str, ...] = PATTERNS
    sources: tuple[str, ...] = TRAINING_SOURCES

    def __post_init__(self) -> None:
        for f in fields(self):  # tuples also when rebuilt from JSON lists
            object.__setattr__(self, f.name, tuple(getattr(self, f.name)))
        unknown = sorted(set(self.sources) - set(TRAINING_SOURCES))
        if unknown or not self.sources:
            raise ValueError(f"sources must be a non-empty subset of {TRAINING_SOURCES}, got {self.sources}")
        if min(self.ny[0], self.nx[0]) < 32 or self.ny[0] > self.ny[1] or self.nx[0] > self.nx[1]:
            raise ValueError(f"matrix ranges must rise and start at 32 or more, got ny={self.ny}, nx={self.nx}")
        if self.coils[0] < 1 or self.coils[0] > self.coils[1] or self.snr[0] <= 0 or self.snr[0] > self.snr[1]:
            raise ValueError(f"coil and SNR ranges must be positive and rise, got {self.coils}, {self.snr}")


# --------------------------------------------------------------------------------------------
# Images: each source returns a complex series (frames, slices, ny, nx) and how to gather it


@functools.lru_cache(maxsize=None)
def photo(name: str) -> np.ndarray:
    """A shipped photograph as float32 grey values in [0, 1] ``(rows, columns)``."""
    image = getattr(skdata, name)()
    if isinstance(image, tuple):  # stereo pairs: the left view
        image = image[0]
    image = np.asarray(image)
    if image.ndim == 3:
        image = rgb2gray(image[..., :3])
    image = image.astype(np.float32)
    return image / max(float(image.max()), 1e-6)


def _grid(ny: int, nx: int) -> tuple[np.ndarray, np.ndarray]:
    """Coordinates ``(ny, nx)`` each, in [-1, 1] along both axes."""
    return np.meshgrid(np.linspace(-1, 1, ny, dtype=np.float32), np.linspace(-1, 1, nx, dtype=np.float32), indexing="ij")


def smooth_field(rng: np.random.Generator, shape: tuple[int, int], sigma: float) -> np.ndarray:
    """Gaussian random field ``shape`` float32 of unit standard deviation and correlation length ``sigma`` pixels."""
    field = gaussian_filter(rng.standard_normal(shape).astype(np.float32), sigma, mode="wrap")
    field -= field.mean()
    return field / max(float(field.std()), 1e-6)


def _support(rng: np.random.Generator, ny: int, nx: int) -> np.ndarray:
    """A body-like support in [0, 1]: an ellipse with a smooth, wobbly edge, so that the background is empty."""
    y, x = _grid(ny, nx)
    a, b = rng.uniform(0.6, 0.95, 2)
    radius = np.sqrt((x / a) ** 2 + (y / b) ** 2) + 0.1 * smooth_field(rng, (ny, nx), max(ny, nx) / 6)
    return expit((1 - radius) * rng.uniform(20, 60)).astype(np.float32)


def _photo_image(rng: np.random.Generator, ny: int, nx: int) -> np.ndarray:
    source = photo(PHOTOS[rng.integers(len(PHOTOS))])
    if rng.random() < 0.5:
        source = source.T
    rows, cols = source.shape
    zoom = rng.uniform(0.5, 1.0)  # of the largest crop with the target's aspect ratio
    scale = min(rows / ny, cols / nx) * zoom
    h, w = max(8, int(ny * scale)), max(8, int(nx * scale))
    r0, c0 = rng.integers(0, rows - h + 1), rng.integers(0, cols - w + 1)
    image = resize(source[r0 : r0 + h, c0 : c0 + w], (ny, nx), anti_aliasing=True).astype(np.float32)
    if rng.random() < 0.5:
        image = image[::-1]
    if rng.random() < 0.5:
        image = image[:, ::-1]
    image = image ** rng.uniform(0.6, 1.6)  # contrasts other than the photograph's
    if rng.random() < 0.6:
        image = image * _support(rng, ny, nx)
    return np.ascontiguousarray(image)


def _texture_image(rng: np.random.Generator, ny: int, nx: int) -> np.ndarray:
    """Piecewise-smooth structure: smoothed blobs, a few ellipses, a multiplicative random-field texture."""
    side = max(ny, nx)
    blobs = skdata.binary_blobs(side, blob_size_fraction=rng.uniform(0.03, 0.2), volume_fraction=rng.uniform(0.2, 0.6),
                                rng=int(rng.integers(2**31)))[:ny, :nx].astype(np.float32)
    image = gaussian_filter(blobs, rng.uniform(0.3, 1.5)) * rng.uniform(0.2, 1.0)
    y, x = _grid(ny, nx)
    for _ in range(rng.integers(2, 8)):
        cy, cx = rng.uniform(-0.7, 0.7, 2)
        ay, ax = rng.uniform(0.05, 0.5, 2)
        angle = rng.uniform(0, np.pi)
        u = (x - cx) * np.cos(angle) + (y - cy) * np.sin(angle)
        v = -(x - cx) * np.sin(angle) + (y - cy) * np.cos(angle)
        inside = expit((1 - (u / ax) ** 2 - (v / ay) ** 2) * rng.uniform(8, 40))
        image = image * (1 - inside) + rng.uniform(0, 1) * inside
    image = image * np.exp(0.3 * rng.uniform(0, 1) * smooth_field(rng, (ny, nx), rng.uniform(1, 6)))
    if rng.random() < 0.6:
        image = image * _support(rng, ny, nx)
    return (image / max(float(image.max()), 1e-6)).astype(np.float32)


def _warp(image: np.ndarray, dy: np.ndarray, dx: np.ndarray) -> np.ndarray:
    """``image`` sampled at the displaced grid ``(y + dy, x + dx)``, in pixels, linear interpolation."""
    ny, nx = image.shape
    yy, xx = np.meshgrid(np.arange(ny, dtype=np.float32), np.arange(nx, dtype=np.float32), indexing="ij")
    return map_coordinates(image, [yy + dy, xx + dx], order=1, mode="nearest").astype(np.float32)


def _moving_series(rng: np.random.Generator, base: np.ndarray, kind: Neighbours, length: int) -> np.ndarray:
    """``length`` images ``(length, ny, nx)`` float32 from ``base``: a cardiac-like cycle, weightings or slices (see module doc)."""
    ny, nx = base.shape
    sigma = max(ny, nx) / rng.uniform(4, 10)
    out = np.empty((length, ny, nx), np.float32)
    if kind is Neighbours.REFLECT:
        # Weightings of one geometry: each pixel decays at its own smooth rate, as in a T2 series.
        # At most a few-fold signal loss over the series, as in T2 or T1rho weightings.
        rate = np.exp(0.3 * smooth_field(rng, (ny, nx), sigma)) * rng.uniform(0.2, 1.5) / max(length - 1, 1)
        for t in range(length):
            out[t] = base * np.exp(-rate * t)
        return out
    amplitude = rng.uniform(0.5, 3.0) if kind is Neighbours.WRAP else rng.uniform(2.0, 6.0)
    dy, dx = (amplitude * smooth_field(rng, (ny, nx), sigma) for _ in range(2))
    phase = rng.uniform(0, 2 * np.pi)
    for t in range(length):
        if kind is Neighbours.WRAP:
            weight = math.sin(2 * math.pi * t / length + phase)
            out[t] = _warp(base, weight * dy, weight * dx)
        else:  # slices: an independent deformation and a drifting contrast per slice
            sy, sx = (amplitude * smooth_field(rng, (ny, nx), sigma) for _ in range(2))
            out[t] = _warp(base, dy * t + sy, dx * t + sx) * np.exp(0.1 * t * smooth_field(rng, (ny, nx), sigma))
    return out


def smooth_phase(rng: np.random.Generator, ny: int, nx: int) -> np.ndarray:
    """A smooth random phase ``(ny, nx)`` float32: a random quadratic plus a low-frequency field."""
    y, x = _grid(ny, nx)
    c = rng.normal(0, 1, 6) * np.array([np.pi, 1.5, 1.5, 0.8, 0.8, 0.8])
    return (c[0] + c[1] * x + c[2] * y + c[3] * x * y + c[4] * x**2 + c[5] * y**2
            + rng.uniform(0, 1) * smooth_field(rng, (ny, nx), max(ny, nx) / 5)).astype(np.float32)


def source_series(rng: np.random.Generator, source: str, ny: int, nx: int) -> tuple[np.ndarray, str]:
    """A noiseless complex series ``(frames, slices, ny, nx)`` complex64 of one source, and a stem whose neighbour rule fits it.

    Exactly one of ``frames`` and ``slices`` is above 1 for photo and texture series; the
    cardiac phantom renders its stems as ``genre synth`` does.
    """
    if source == "cardiac":
        stem = sorted(SERIES)[rng.integers(len(SERIES))]
        spec = SERIES[stem]
        frames = spec.frames or int(rng.integers(8, 25))
        slices = 1 if frames > 1 else int(rng.integers(3, 9))
        images = phantom_images(stem, frames, slices, ny, nx, float(rng.uniform(1.0, 5.0)), int(rng.integers(2**31)),
                                f"sim{rng.integers(10**6)}")
        return images.astype(np.complex64), stem
    base = _photo_image(rng, ny, nx) if source == "photo" else _texture_image(rng, ny, nx)
    kinds = list(SERIES_KINDS)
    kind = kinds[rng.choice(len(kinds), p=list(SERIES_KINDS.values()))]
    length = int(rng.integers(3, 9)) if kind is not Neighbours.WRAP else int(rng.integers(6, 20))
    magnitude = _moving_series(rng, base, kind, length)
    images = magnitude * np.exp(1j * smooth_phase(rng, ny, nx))
    # A stem whose neighbour rule (genre.series.neighbours) is the kind simulated.
    stem = {Neighbours.WRAP: "cine_sax", Neighbours.REFLECT: "T2map", Neighbours.SLICES: "T1w"}[kind]
    if kind is Neighbours.SLICES:
        return images[None].astype(np.complex64), stem
    return images[:, None].astype(np.complex64), stem


# --------------------------------------------------------------------------------------------
# Coils


def coil_maps(rng: np.random.Generator, model: str, coils: int, ny: int, nx: int) -> np.ndarray:
    """Complex sensitivities ``(coils, ny, nx)`` complex64 of ``model`` (:data:`COIL_MODELS`), root-sum-of-squares peaking at 1."""
    y, x = _grid(ny, nx)
    maps = np.empty((coils, ny, nx), np.complex64)
    if model == "loops":
        a, b = rng.uniform(0.8, 1.4, 2)
        angles = 2 * np.pi * np.arange(coils) / coils + rng.uniform(-0.3, 0.3, coils) + rng.uniform(0, 2 * np.pi)
        size = rng.uniform(0.4, 1.2)
        for i, angle in enumerate(angles):
            d2 = (x - a * math.cos(angle)) ** 2 + (y - b * math.sin(angle)) ** 2 + rng.uniform(0.02, 0.3)
            maps[i] = (size**2 / (size**2 + d2)) ** 1.5 * np.exp(1j * (rng.uniform(0, 2 * np.pi) + rng.uniform(0, 1.5) * np.sqrt(d2)))
    elif model == "smooth":
        sigma = max(ny, nx) / rng.uniform(2, 5)
        for i in range(coils):
            magnitude = np.exp(0.8 * smooth_field(rng, (ny, nx), sigma))
            maps[i] = magnitude * np.exp(1j * (rng.uniform(0, 2 * np.pi) + 1.5 * smooth_field(rng, (ny, nx), sigma)))
    else:
        raise ValueError(f"unknown coil model {model!r}; choose one of {', '.join(COIL_MODELS)}")
    return maps / np.sqrt((np.abs(maps) ** 2).sum(0)).max()


# --------------------------------------------------------------------------------------------
# Samples


def simulate_sample(
    rng: np.random.Generator, source: str, accelerations: Sequence[int], adjacent: int, config: SimulationConfig
) -> dict:
    """One training item (the :class:`genre.data.dataset.TrainingDataset` layout) drawn with ``rng``."""
    ny, nx = int(rng.integers(config.ny[0], config.ny[1] + 1)), int(rng.integers(config.nx[0], config.nx[1] + 1))
    images, stem = source_series(rng, source, ny, nx)
    item = acquire(rng, images, stem, accelerations, adjacent, config)
    item.update(domain=source, path=f"simulated:{source}")
    return item


def acquire(
    rng: np.random.Generator,
    images: np.ndarray,
    stem: str,
    accelerations: Sequence[int],
    adjacent: int,
    config: SimulationConfig,
    maps: Callable[[int, int, int], np.ndarray] | None = None,
) -> dict:
    """Acquire a noiseless series ``(frames, slices, ny, nx)`` complex: an item without ``domain`` and ``path``.

    One frame and slice, its adjacent inputs, coils, gain, noise, pattern, R and ACS are drawn
    with ``rng`` from ``config``. ``maps(coils, ny, nx)`` replaces the training coil models
    (:data:`COIL_MODELS`): the distribution-shift benchmark acquires other coils and images
    the same way (``benchmarks/shift.py``).
    """
    frames, slices, ny, nx = images.shape
    mode = neighbours(stem, frames)
    frame, slice_ = int(rng.integers(frames)), int(rng.integers(slices))
    positions = adjacent_positions(frames, slices, frame, slice_, adjacent, mode)
    picked = np.stack([images[f, s] for f, s in positions])  # (adj, ny, nx)

    coils = int(np.exp(rng.uniform(math.log(config.coils[0]), math.log(config.coils[1] + 1))))
    maps = coil_maps(rng, COIL_MODELS[rng.integers(len(COIL_MODELS))], coils, ny, nx) if maps is None else maps(coils, ny, nx)
    gain = float(10 ** rng.uniform(-3, 3))
    kspace = fft2c(torch.from_numpy(picked[:, None] * maps * gain)).numpy()
    level = gain * float(np.percentile(np.abs(picked[adjacent // 2]), 99)) or gain
    sigma = level / (float(np.exp(rng.uniform(*np.log(config.snr)))) * math.sqrt(maps.shape[0]) * math.sqrt(2))
    kspace = kspace + sigma * (rng.standard_normal(kspace.shape) + 1j * rng.standard_normal(kspace.shape))
    kspace = torch.from_numpy(kspace.astype(np.complex64))

    pattern = config.patterns[rng.integers(len(config.patterns))]
    acceleration = int(accelerations[rng.integers(len(accelerations))])
    acs = min(int(config.acs[rng.integers(len(config.acs))]), ny, nx)
    # A single-frame series has one mask for all its slices; otherwise each frame its own.
    series_mask = make_mask(pattern, acceleration, frames, ny, nx, acs, seed=rng)
    mask = torch.from_numpy(np.ascontiguousarray(series_mask[[f for f, _ in positions]]))
    return {
        "kspace": kspace,
        "mask": mask,
        "target": rss_from_kspace(kspace[adjacent // 2]),
        "stem": stem,
        "frame": frame,
        "slice": slice_,
        "pattern": pattern,
        "acceleration": acceleration,
        "mask_source": "generated",
    }


class SimulatedDataset(Dataset):
    """``length`` simulated items, spread evenly over the sources (the domains); see the module doc.

    ``set_epoch(epoch, accelerations)`` as for :class:`genre.data.dataset.TrainingDataset`;
    ``fixed=True`` ignores the epoch (validation: the same samples every epoch).
    """

    def __init__(
        self,
        length: int,
        adjacent: int = 5,
        accelerations: Sequence[int] = (8,),
        seed: int = 0,
        config: SimulationConfig = SimulationConfig(),
        fixed: bool = False,
    ):
        if length < 1:
            raise ValueError(f"a simulated dataset needs at least one sample, got {length}")
        self.length = length
        self.adjacent = adjacent
        self.accelerations = tuple(accelerations)
        self.seed = seed
        self.config = config
        self.fixed = fixed
        self.epoch = 0
        self.domains = [config.sources[i % len(config.sources)] for i in range(length)]

    def set_epoch(self, epoch: int, accelerations: Sequence[int] | None = None) -> None:
        self.epoch = epoch
        if accelerations is not None:
            self.accelerations = tuple(accelerations)

    def __len__(self) -> int:
        return self.length

    def __getitem__(self, index: int) -> dict:
        # 7919: the stream of a simulation, apart from the file datasets' (seed, epoch, index).
        rng = np.random.default_rng([7919, self.seed, 0 if self.fixed else self.epoch, index])
        item = simulate_sample(rng, self.domains[index], self.accelerations, self.adjacent, self.config)
        item["index"] = index
        return item
