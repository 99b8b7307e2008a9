"""Synthetic CMRxRecon 2025 trees: images seen by coils, with noise and the challenge masks, as MATLAB files.

The tree writer: which series a tree holds (:func:`plan`), where their files go
(:func:`job_paths`), and how a series becomes files (:func:`write_series`). Images and coil
maps come from a family:

* ``cardiac`` (the default, what training uses): :mod:`genre.data.phantom`'s moving cardiac
  phantom and loop coils, over the centre/vendor domains of :data:`DOMAINS`.
* ``bart``, ``biological``: the held-out families of :mod:`genre.data.heldout` (BART's phantoms
  and coils; biological images from installed packages with birdcage coils), for measuring
  generalization only, so written in the validation layout only. Their series are
  :data:`HELDOUT_SERIES`: stems, matrices from 96x112 to the challenge's 162x448 and 246x512,
  4 to 32 coils, SNR 30 to 100, one (pattern, R) each in the order of the cardiac tree.

* k-space = ``fft2c(coil * image)`` (centred orthonormal FFT of :mod:`genre.kspace`) of images
  scaled by the domain's receiver ``scale``, plus complex Gaussian noise of standard deviation
  ``scale / (snr * sqrt(nc))`` per coil sample, so that ``snr`` is the brightest tissue of the
  RSS image (brightest tissue 1, coil RSS peak 1) over the RSS noise floor.
* Masks: the 2025 patterns of :func:`genre.masks.make_mask` at each series' (pattern, R).

Files follow ../shared/CMRXRECON.md: MATLAB v7.3 written by :func:`genre.data.matio.write_mat73`
in h5py order, k-space ``(nt, nz, nc, ny, nx)`` complex64 with MATLAB's trailing singletons
dropped (so a single-frame series is ``(nz, nc, ny, nx)``, a no-time stem with one slice
``(nc, ny, nx)``, while ``nz = 1`` with ``nt > 1`` keeps the interior 1); masks are float64 0/1
``(nt, ny, nx)``, or ``(ny, nx)`` when there is one frame; ``kus = kspace .* mask``.

Everything is deterministic: random numbers come from generators keyed on the seed and the
names of the domain, patient, stem and pattern, so a file does not change when other files are
added to or removed from the tree.
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from genre.data.heldout import RENDERERS
from genre.data.matio import matlab_shape, write_mat73
from genre.data.phantom import coil_maps, keyed_rng, phantom_images
from genre.kspace import fft2c
from genre.masks import ACCELERATIONS, DEFAULT_ACS, PATTERNS, make_mask
from genre.series import has_time_axis, modality_of

LAYOUTS = ("train", "validation")
#: Image and coil families: the training phantom first, then the held-out ones.
FAMILIES = ("cardiac", *RENDERERS)


# --------------------------------------------------------------------------------------------
# Domains and series


@dataclass(frozen=True)
class Domain:
    """A centre/vendor folder pair and the acquisition traits that set it apart."""

    centre: str
    vendor: str
    field_t: float  # B0 in tesla: sets T1/T2 and thereby contrast
    snr: float  # brightest tissue of the RSS image over the RSS noise floor
    size_offset: tuple[int, int] = (0, 0)  # added to the base (ny, nx): odd sizes at any base size
    coil_offset: int = 0  # added to the base coil count
    scale: float = 1.0  # receiver scaling: vendors store k-space at very different magnitudes

    @property
    def name(self) -> str:
        return f"{self.centre}/{self.vendor}"


#: Domain catalogue; a tree uses the first ``SynthConfig.domains`` of them. Vendor folder names
#: are spelled as in the challenge (dots occur); the 5 T one is invented in the same style.
DOMAINS: tuple[Domain, ...] = (
    Domain("Center001", "Siemens_30T_Vida", 3.0, 60.0, (0, 0), 0, 1e-3),
    Domain("Center002", "UIH_15T_umr670", 1.5, 40.0, (1, 0), -2, 4e-3),
    Domain("Center005", "Siemens_30T_CIMA.X", 3.0, 90.0, (15, 1), 2, 2e-4),
    Domain("Center001", "UIH_30T_umr780", 3.0, 50.0, (-7, 0), 0, 2e-3),
    Domain("Center006", "UIH_50T_umr_jupiter", 5.0, 70.0, (8, 16), 4, 5e-4),
)


@dataclass(frozen=True)
class SeriesSpec:
    """Shape defaults of one file stem; ``None`` means "from the config" (stack slices, cardiac frames)."""

    stem: str
    slices: int | None = 1
    frames: int | None = None


#: Every stem the generator can render. Mapping stems carry their own number of weightings;
#: no-time stems ignore ``frames``.
SERIES: dict[str, SeriesSpec] = {
    spec.stem: spec
    for spec in (
        SeriesSpec("cine_sax", slices=None),
        SeriesSpec("cine_lax", slices=3),
        SeriesSpec("cine_lax_2ch"),
        SeriesSpec("cine_lax_3ch"),
        SeriesSpec("cine_lax_4ch"),
        SeriesSpec("cine_lvot"),
        SeriesSpec("cine_rvot"),
        SeriesSpec("cine_ot"),
        SeriesSpec("flow2d"),
        SeriesSpec("perfusion", slices=None),
        SeriesSpec("T1map", slices=None, frames=9),
        SeriesSpec("T1mappost", slices=None, frames=9),
        SeriesSpec("T2map", slices=None, frames=3),
        SeriesSpec("T2smap", slices=None, frames=8),
        SeriesSpec("T1rho", slices=None, frames=5),
        SeriesSpec("lge_sax", slices=None, frames=1),
        SeriesSpec("lge_lax", slices=3, frames=1),
        SeriesSpec("lge_lax_2ch", frames=1),
        SeriesSpec("lge_lax_3ch", frames=1),
        SeriesSpec("lge_lax_4ch", frames=1),
        SeriesSpec("blackblood"),
        SeriesSpec("T1w", slices=None),
        SeriesSpec("T2w", slices=None),
    )
}

#: One stem of every storage kind: 5-D cine stack, nz = 1 with time (interior singleton),
#: mapping weightings, single-frame LGE (4-D), no-time single slice (3-D).
DEFAULT_STEMS = ("cine_sax", "cine_lax_4ch", "T1map", "lge_sax", "blackblood")


@dataclass(frozen=True)
class HeldoutSeries:
    """One series of a held-out tree: its stem, matrix (phase encodes ``ny``, readout ``nx``), coils and noise."""

    stem: str
    ny: int
    nx: int
    coils: int
    snr: float  # brightest pixel of the RSS image over the RSS noise floor
    scale: float = 1e-3  # receiver scaling, as Domain.scale


#: The held-out trees' series, one patient each, in writing order. They get the cardiac tree's
#: (pattern, R) order, so 18 series give each of the 9 pairs twice. Every stem storage kind and
#: neighbour rule appears (cine: periodic frames; T2map: weightings; lge_sax, T1w: one frame,
#: slice neighbours; blackblood: one image); 4 and 6 coils fall at R 8 to 24, fewer coils than R;
#: two challenge-sized files (162x448 cine, 246x512 black-blood) keep the CPU cost bounded.
HELDOUT_SERIES: tuple[HeldoutSeries, ...] = (
    HeldoutSeries("cine_sax", 96, 112, 4, 40),
    HeldoutSeries("cine_sax", 97, 113, 8, 60, 4e-3),
    HeldoutSeries("cine_lax_4ch", 120, 144, 12, 30),
    HeldoutSeries("T1w", 111, 128, 16, 80),
    HeldoutSeries("blackblood", 128, 128, 32, 50, 2e-4),
    HeldoutSeries("lge_sax", 101, 140, 6, 100),
    HeldoutSeries("cine_sax", 162, 448, 10, 50),
    HeldoutSeries("cine_lax_4ch", 104, 120, 4, 60),
    HeldoutSeries("T2map", 120, 96, 20, 40),
    HeldoutSeries("cine_sax", 112, 128, 24, 30, 4e-3),
    HeldoutSeries("blackblood", 99, 117, 4, 80),
    HeldoutSeries("lge_sax", 96, 112, 8, 40),
    HeldoutSeries("cine_lax_4ch", 130, 150, 6, 50, 2e-4),
    HeldoutSeries("T1w", 97, 113, 4, 30),
    HeldoutSeries("cine_sax", 108, 126, 16, 100),
    HeldoutSeries("blackblood", 246, 512, 24, 60),
    HeldoutSeries("cine_sax", 100, 116, 32, 40),
    HeldoutSeries("T2map", 115, 131, 12, 60),
)
#: Centre folder of each held-out family's tree (the vendor folder names coils and SNR).
HELDOUT_CENTRES = {"bart": "Center101", "biological": "Center102"}


@dataclass(frozen=True)
class SynthConfig:
    """What tree to write. Defaults: a small validation tree that covers every pattern, R and storage kind.

    ``size`` is the base ``(ny, nx)`` = (phase encodes, readout) and ``coils`` the base coil count;
    each domain adds its offsets, so the default gives 56x64, 57x64 and 71x65 matrices with 6, 4
    and 8 coils. ``--size 162x448 --coils 10`` gives the challenge's cine shapes.
    """

    layout: str = "validation"  # "train" (FullSample + Mask_TaskAll) or "validation"
    task: str = "TaskR1"
    seed: int = 0
    cases: int = 1  # patients per domain
    domains: int = 3  # the first N of DOMAINS
    size: tuple[int, int] = (56, 64)
    coils: int = 6
    frames: int = 8  # cardiac frames of cine, flow and perfusion series
    slices: int = 3  # slices of stacks (SAX cine, mapping, LGE, perfusion, T1w/T2w)
    stems: tuple[str, ...] = DEFAULT_STEMS
    patterns: tuple[str, ...] = PATTERNS
    accelerations: tuple[int, ...] = ACCELERATIONS
    acs: int = DEFAULT_ACS
    all_combos: bool = False  # validation: every pattern x R per series instead of one each
    family: str = "cardiac"  # images and coils: FAMILIES; held-out ones ignore domains to stems
    heldout: tuple[HeldoutSeries, ...] = HELDOUT_SERIES  # the series of a held-out family's tree

    def __post_init__(self) -> None:
        if self.layout not in LAYOUTS:
            raise ValueError(f"layout must be one of {', '.join(LAYOUTS)}, got {self.layout!r}")
        if not re.fullmatch(r"Task[A-Za-z]*\d*", self.task):  # what genre.data.cmrx recognises as a task folder
            raise ValueError(f"task must look like TaskR1, got {self.task!r}")
        if not 1 <= self.domains <= len(DOMAINS):
            raise ValueError(f"domains must be between 1 and {len(DOMAINS)}, got {self.domains}")
        for name in ("cases", "frames", "slices"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be at least 1, got {getattr(self, name)}")
        unknown = [s for s in self.stems if s not in SERIES]
        if unknown or not self.stems:
            raise ValueError(f"unknown stems {unknown or '(none given)'}; known: {', '.join(SERIES)}")
        unknown = [p for p in self.patterns if p not in PATTERNS]
        if unknown:
            raise ValueError(f"unknown patterns {unknown}; known: {', '.join(PATTERNS)}")
        if not self.patterns or not self.accelerations or min(self.accelerations) < 1:
            raise ValueError("patterns and accelerations must be non-empty, accelerations positive")
        if self.family not in FAMILIES:
            raise ValueError(f"family must be one of {', '.join(FAMILIES)}, got {self.family!r}")
        if self.family != "cardiac":
            if self.layout != "validation":
                raise ValueError(f"the {self.family} family is held out of training: validation layout only")
            for series in self.heldout:
                if series.stem not in SERIES or min(series.ny, series.nx) < max(self.acs, 8) or series.coils < 2:
                    raise ValueError(f"held-out series {series}: unknown stem, matrix below the ACS or 8, or under 2 coils")
            return
        for domain in DOMAINS[: self.domains]:
            ny, nx = self.shape_of(domain)
            if min(ny, nx) < max(self.acs, 8):
                raise ValueError(f"{domain.name}: matrix {ny}x{nx} is smaller than the ACS ({self.acs}) or 8")
            if self.coils_of(domain) < 2:
                raise ValueError(f"{domain.name}: needs at least 2 coils, base {self.coils} gives {self.coils_of(domain)}")

    def shape_of(self, domain: Domain) -> tuple[int, int]:
        return self.size[0] + domain.size_offset[0], self.size[1] + domain.size_offset[1]

    def coils_of(self, domain: Domain) -> int:
        return self.coils + domain.coil_offset


@dataclass(frozen=True)
class SeriesJob:
    """One fully sampled series to simulate and the masks to write for it."""

    domain: Domain
    patient: str
    stem: str
    frames: int  # 1 for no-time stems and single-frame series
    slices: int
    coils: int
    ny: int
    nx: int
    combos: tuple[tuple[str, int], ...]  # (pattern, acceleration) of the masks (and kus files)
    family: str = "cardiac"  # where images and coil maps come from (FAMILIES)

    @property
    def modality(self) -> str:
        return modality_of(self.stem)


def _combos(patterns: Sequence[str], accelerations: Sequence[int]) -> list[tuple[str, int]]:
    # Latin-square order: the first block pairs every pattern with a different R, so that a
    # tree with fewer series than pattern x R combinations still sees every pattern and R early.
    return [
        (patterns[j], accelerations[(j + shift) % len(accelerations)])
        for shift in range(len(accelerations))
        for j in range(len(patterns))
    ]


def _series_extent(stem: str, config: SynthConfig) -> tuple[int, int]:
    """(frames, slices) of a stem: its own counts, else the config's; one frame without a time axis."""
    spec = SERIES[stem]
    return (spec.frames or config.frames) if has_time_axis(stem) else 1, spec.slices or config.slices


def _heldout_plan(config: SynthConfig, combos: list[tuple[str, int]]) -> list[SeriesJob]:
    jobs = []
    for i, series in enumerate(config.heldout):
        # field_t sets tissue contrast, which only the cardiac phantom has.
        domain = Domain(HELDOUT_CENTRES[config.family], f"HeldOut_{series.coils:02d}ch_SNR{series.snr:g}", 3.0,
                        series.snr, scale=series.scale)
        chosen = tuple(combos) if config.all_combos else (combos[i % len(combos)],)
        jobs.append(SeriesJob(domain, f"P{i + 1:03d}", series.stem, *_series_extent(series.stem, config),
                              series.coils, series.ny, series.nx, chosen, config.family))
    return jobs


def plan(config: SynthConfig) -> list[SeriesJob]:
    """The series of the tree, in writing order (domain, patient, stem; held-out families: :data:`HELDOUT_SERIES` order)."""
    combos = _combos(list(dict.fromkeys(config.patterns)), list(dict.fromkeys(config.accelerations)))
    if config.family != "cardiac":
        return _heldout_plan(config, combos)
    jobs = []
    for domain in DOMAINS[: config.domains]:
        ny, nx = config.shape_of(domain)
        for case in range(config.cases):
            for stem in config.stems:
                if config.layout == "train" or config.all_combos:
                    chosen = tuple(combos)
                else:
                    chosen = (combos[len(jobs) % len(combos)],)
                jobs.append(
                    SeriesJob(domain, f"P{case + 1:03d}", stem, *_series_extent(stem, config),
                              config.coils_of(domain), ny, nx, chosen)
                )
    return jobs


def job_paths(root: Path, job: SeriesJob, config: SynthConfig) -> list[Path]:
    """Files a job writes: the fully sampled k-space, then per combo the mask (and, for validation, the kus)."""
    folder = Path(job.domain.centre, job.domain.vendor, job.patient)
    if config.layout == "train":
        base = Path(root, "MultiCoil", job.modality, "TrainingSet")
        paths = [base / "FullSample" / folder / f"{job.stem}.mat"]
        paths += [base / "Mask_TaskAll" / folder / f"{job.stem}_mask_{p}{r}.mat" for p, r in job.combos]
        return paths
    task = config.task
    base = Path(root, task, "MultiCoil", job.modality, "ValidationSet")
    paths = [base / f"FullSample_{task}" / folder / f"{job.stem}.mat"]
    for p, r in job.combos:
        paths.append(base / f"Mask_{task}" / folder / f"{job.stem}_mask_{p}{r}.mat")
        paths.append(base / f"UnderSample_{task}" / folder / f"{job.stem}_kus_{p}{r}.mat")
    return paths


def series_images(job: SeriesJob, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Noiseless images ``(frames, slices, ny, nx)`` and coil maps ``(coils, ny, nx)``, complex64, of one job's family."""
    d = job.domain
    key = f"{d.name}/{job.patient}"
    if job.family == "cardiac":
        images = phantom_images(job.stem, job.frames, job.slices, job.ny, job.nx, d.field_t, seed, key)
        return images, coil_maps(job.coils, job.ny, job.nx, seed, key)
    render_images, render_maps = RENDERERS[job.family]
    return (render_images(job.stem, job.frames, job.slices, job.ny, job.nx, seed, key),
            render_maps(job.coils, job.ny, job.nx, seed, key))


def series_kspace(job: SeriesJob, seed: int) -> np.ndarray:
    """Fully sampled noisy k-space ``(frames, slices, coils, ny, nx)`` complex64 of one job."""
    d = job.domain
    images, maps = series_images(job, seed)
    coil_images = torch.from_numpy(images * d.scale)[:, :, None] * torch.from_numpy(maps)
    kspace = fft2c(coil_images).numpy()
    rng = keyed_rng(seed, "noise", d.name, job.patient, job.stem)
    per_part = np.float32(d.scale / (d.snr * math.sqrt(job.coils)) / math.sqrt(2))
    # In place, one part at a time: a challenge-sized series is hundreds of MB.
    kspace.real += rng.standard_normal(kspace.shape, dtype=np.float32) * per_part
    kspace.imag += rng.standard_normal(kspace.shape, dtype=np.float32) * per_part
    return kspace


# --------------------------------------------------------------------------------------------
# Files


def _as_saved(array: np.ndarray) -> np.ndarray:
    """MATLAB drops trailing singleton dimensions when saving; in h5py order those are leading ones."""
    return array.reshape(matlab_shape(array.shape[::-1])[::-1])


def job_mask(job: SeriesJob, pattern: str, acceleration: int, config: SynthConfig) -> np.ndarray:
    """The job's sampling mask ``(frames, ny, nx)`` float32 0/1."""
    rng = keyed_rng(config.seed, "mask", job.domain.name, job.patient, job.stem, pattern, str(acceleration))
    return make_mask(pattern, acceleration, job.frames, job.ny, job.nx, config.acs, seed=rng)


def write_series(root: Path, job: SeriesJob, config: SynthConfig) -> list[Path]:
    """Simulate one job and write its files (see :func:`job_paths`); returns the paths written."""
    paths = job_paths(root, job, config)
    kspace = series_kspace(job, config.seed)
    write_mat73(paths[0], {"kspace": _as_saved(kspace)})
    files = iter(paths[1:])
    for pattern, acceleration in job.combos:
        mask = job_mask(job, pattern, acceleration, config)
        write_mat73(next(files), {"mask": _as_saved(mask.astype(np.float64))})
        if config.layout == "validation":
            kus = kspace * mask[:, None, None]
            write_mat73(next(files), {"kus": _as_saved(kus)})
    return paths


def make_tree(out: Path | str, config: SynthConfig = SynthConfig()) -> list[Path]:
    """Write the tree ``config`` describes below ``out``; returns every file written, in order."""
    written = []
    for job in plan(config):
        written += write_series(Path(out), job, config)
    return written
