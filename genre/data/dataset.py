"""Training samples from a CMRxRecon training tree, and the domain-interleaved sampler.

One sample is one target frame of one slice of one fully sampled file (``FullSample``): the
``adjacent`` frames around it (or, in a single-frame series, the neighbouring slices; see
:func:`genre.series.neighbours` and :func:`genre.series.adjacent_indices`, which inference
uses too), a sampling mask for those frames, and the target RSS image. Items are dicts:

* ``kspace``: fully sampled k-space ``(adj, coils, ky, kx)`` complex64 (the ground truth; the
  trainer multiplies by the mask to get the network input);
* ``mask``: ``(adj, ky, kx)`` float32 0/1, a mask of the release (``Mask_TaskAll``) drawn at
  random among those the file has whose acceleration the curriculum allows, or, when the file
  has none of those, one made on the fly with :func:`genre.masks.make_mask`;
* ``target``: RSS magnitude image of the centre frame ``(ky, kx)`` float32;
* ``domain``: the domain key (``centre/vendor``, ``modality`` or ``pattern``);
* metadata: ``index``, ``path``, ``stem``, ``frame``, ``slice``, ``pattern``, ``acceleration``,
  ``mask_source`` (``"file"`` or ``"generated"``).

Files are opened per item and only the needed frames of one slice are read (h5py reads
``(coils, ky, kx)`` blocks), so no file is ever loaded whole and workers share no handles.
Randomness (mask choice, ktGaussian lines) comes from a generator keyed on
``(seed, epoch, index)``: an item is the same whatever the worker, the order or a resumption.

Matrix sizes differ between files and domains, so the default collation works only for batch
size 1 (the paper's); larger batches need files of one size.
"""

from __future__ import annotations

import logging
import math
from collections import defaultdict
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.distributed as dist
from torch.utils.data import Dataset, Sampler

from genre.data.cmrx import TrainingCase, kspace_layout, mask_layout
from genre.data.matio import MatArray, MatFileError
from genre.kspace import rss_from_kspace
from genre.masks import DEFAULT_ACS, PATTERNS, make_mask
from genre.series import Neighbours, adjacent_positions, neighbours

log = logging.getLogger(__name__)

#: Ways to group samples into domains for the sampler and the SDA loss.
DOMAIN_KEYS = ("centre/vendor", "modality", "pattern")
KSPACE_NAMES = ("kspace", "kspace_full")
#: The paper's curriculum (acceleration 8, then 16 added, then 24), as (fraction of the epochs, allowed R).
DEFAULT_CURRICULUM: tuple[tuple[float, tuple[int, ...]], ...] = ((0.0, (8,)), (1 / 3, (8, 16)), (2 / 3, (8, 16, 24)))


def check_curriculum(stages: Sequence[tuple[float, Sequence[int]]]) -> None:
    """Raise ``ValueError`` unless ``stages`` starts at fraction 0, rises, and names positive accelerations."""
    fractions = [float(f) for f, _ in stages]
    if not stages or fractions[0] != 0.0 or fractions != sorted(fractions) or fractions[-1] >= 1:
        raise ValueError(f"curriculum fractions must start at 0, rise and stay below 1, got {fractions}")
    if any(not accs or min(accs) < 1 for _, accs in stages):
        raise ValueError(f"every curriculum stage needs positive accelerations, got {[list(a) for _, a in stages]}")


def curriculum_accelerations(stages: Sequence[tuple[float, Sequence[int]]], epoch: int, epochs: int) -> tuple[int, ...]:
    """The accelerations allowed in ``epoch`` (from 0) of ``epochs``: the last stage whose start ``fraction * epochs`` has passed."""
    allowed = stages[0][1]
    for fraction, accelerations in stages:
        # The tolerance keeps 1/3 * 3 = 0.999... from delaying a stage by an epoch.
        if epoch >= fraction * epochs - 1e-9:
            allowed = accelerations
    return tuple(int(a) for a in allowed)


@dataclass(frozen=True)
class SeriesFile:
    """A usable training file: its case, internal 5-D shape ``(frames, slices, coils, ky, kx)`` and checked masks."""

    case: TrainingCase
    shape: tuple[int, int, int, int, int]
    masks: tuple[tuple[str, int, Path], ...]  # (pattern, acceleration, path) with a fitting shape

    @property
    def neighbours(self) -> Neighbours:
        return neighbours(self.case.stem, self.shape[0])


def scan_files(cases: Sequence[TrainingCase]) -> list[SeriesFile]:
    """Read the headers of every case's k-space and masks; unusable files are skipped with a warning.

    Compressed (chunked) k-space files are counted and reported once: every training sample
    inflates the chunks it touches, up to most of a file (``genre repack`` rewrites them).
    """
    files = []
    chunked = 0
    for case in cases:
        try:
            with MatArray(case.kspace_path, KSPACE_NAMES) as data:
                shape = kspace_layout(case.stem, data.shape)
                chunked += data.chunked
        except (MatFileError, ValueError) as exc:
            log.warning("skipped %s", exc if isinstance(exc, MatFileError) else f"{case.kspace_path}: {exc}")
            continue
        masks = []
        for pattern, acceleration, path in case.masks:
            try:
                with MatArray(path, ["mask"]) as mask:
                    mask_layout(mask.shape, shape)
            except (MatFileError, ValueError) as exc:
                log.warning("skipped mask %s", exc if isinstance(exc, MatFileError) else f"{path}: {exc}")
                continue
            masks.append((pattern, acceleration, path))
        files.append(SeriesFile(case, shape, tuple(masks)))
    if chunked:
        log.warning(
            "%d of %d k-space files are compressed MATLAB v7.3 (chunked): each training sample inflates the chunks "
            "it touches, which can be most of a file; `genre repack --input TREE --output COPY` rewrites them "
            "contiguous (docs/benchmarks.md, \"Reading compressed v7.3 files\")", chunked, len(files))
    return files


def split_cases(
    cases: Sequence[TrainingCase], val_patients: int = 1, holdout_domains: Sequence[str] = ()
) -> tuple[list[TrainingCase], list[TrainingCase], list[TrainingCase]]:
    """``(train, validation, unseen)`` cases.

    A patient is a (centre/vendor, ``Pxxx``) pair across modalities. Per centre/vendor domain
    the last ``val_patients`` patients (sorted by name) go to validation, but only where the
    domain has more patients than that, so that every domain keeps training data. Every case of
    a domain in ``holdout_domains`` goes to ``unseen`` (the seen-vs-unseen experiment).
    Raises ``ValueError`` for a held-out domain that is not in the tree.
    """
    present = {c.location.domain for c in cases}
    missing = sorted(set(holdout_domains) - present)
    if missing:
        raise ValueError(f"held-out domains not in the tree: {', '.join(missing)} (present: {', '.join(sorted(present))})")
    unseen = [c for c in cases if c.location.domain in holdout_domains]
    seen = [c for c in cases if c.location.domain not in holdout_domains]
    patients: dict[str, set[str]] = defaultdict(set)
    for c in seen:
        patients[c.location.domain].add(c.location.patient)
    held = {
        (domain, p)
        for domain, names in patients.items()
        if len(names) > val_patients
        for p in sorted(names)[len(names) - val_patients :]
    }
    train = [c for c in seen if (c.location.domain, c.location.patient) not in held]
    val = [c for c in seen if (c.location.domain, c.location.patient) in held]
    return train, val, unseen


@dataclass(frozen=True)
class SampleRef:
    """One target: frame and slice of a file; ``pattern`` is fixed only when patterns are the domains."""

    file: int
    frame: int
    slice: int
    pattern: str | None = None


class TrainingDataset(Dataset):
    """Samples of :class:`SeriesFile` s; see the module docstring for the item layout.

    ``set_epoch(epoch, accelerations)`` sets the randomness of the epoch and the accelerations
    the curriculum allows. With a ``DataLoader`` whose workers are not persistent (the default)
    the setting reaches the workers, which copy the dataset at the start of every epoch.
    """

    def __init__(
        self,
        files: Sequence[SeriesFile],
        adjacent: int = 5,
        domain_key: str = "centre/vendor",
        accelerations: Sequence[int] = (8,),
        seed: int = 0,
        acs: int = DEFAULT_ACS,
    ):
        if domain_key not in DOMAIN_KEYS:
            raise ValueError(f"domain key must be one of {', '.join(DOMAIN_KEYS)}, got {domain_key!r}")
        if adjacent < 1 or adjacent % 2 == 0:
            raise ValueError(f"adjacent must be odd and >= 1, got {adjacent}")
        self.files = list(files)
        self.adjacent = adjacent
        self.domain_key = domain_key
        self.seed = seed
        self.acs = acs
        self.epoch = 0
        self.accelerations = tuple(accelerations)
        self.samples: list[SampleRef] = []
        self.domains: list[str] = []
        for i, f in enumerate(self.files):
            frames, slices = f.shape[:2]
            patterns = sorted({p for p, _, _ in f.masks}) or list(PATTERNS)
            for s in range(slices):
                for t in range(frames):
                    if domain_key == "pattern":
                        # The pattern is the domain, so it is part of the sample, not drawn per item.
                        for p in patterns:
                            self.samples.append(SampleRef(i, t, s, p))
                            self.domains.append(p)
                    else:
                        self.samples.append(SampleRef(i, t, s))
                        location = f.case.location
                        self.domains.append(location.domain if domain_key == "centre/vendor" else location.modality)

    def set_epoch(self, epoch: int, accelerations: Sequence[int] | None = None) -> None:
        self.epoch = epoch
        if accelerations is not None:
            self.accelerations = tuple(accelerations)

    def __len__(self) -> int:
        return len(self.samples)

    def _indices(self, ref: SampleRef, shape: tuple[int, ...]) -> tuple[list[int], list[int]]:
        frames, slices = shape[:2]
        mode = neighbours(self.files[ref.file].case.stem, frames)
        positions = adjacent_positions(frames, slices, ref.frame, ref.slice, self.adjacent, mode)
        return [f for f, _ in positions], [s for _, s in positions]

    def _read_kspace(self, f: SeriesFile, frame_idx: list[int], slice_idx: list[int]) -> np.ndarray:
        """Fully sampled ``(adj, coils, ky, kx)`` complex64, each distinct (frame, slice) read once."""
        blocks: dict[tuple[int, int], np.ndarray] = {}
        with MatArray(f.case.kspace_path, KSPACE_NAMES) as data:
            lead = 5 - data.ndim  # internal axes that MATLAB dropped: (frames,) or (frames, slices)
            for key in zip(frame_idx, slice_idx):
                if key not in blocks:
                    blocks[key] = data.complex64(key[lead:])
        kspace = np.stack([blocks[key] for key in zip(frame_idx, slice_idx)])
        if not np.isfinite(kspace).all():
            raise MatFileError(f.case.kspace_path, "k-space holds NaN or Inf values")
        return kspace

    def _mask(self, f: SeriesFile, ref: SampleRef, rng: np.random.Generator) -> tuple[np.ndarray, str, int, str]:
        """Mask ``(frames, ky, kx)`` of the whole series, its pattern, acceleration and source."""
        frames, _, _, ny, nx = f.shape
        candidates = [
            m for m in f.masks if m[1] in self.accelerations and (ref.pattern is None or m[0] == ref.pattern)
        ]
        if candidates:
            pattern, acceleration, path = candidates[rng.integers(len(candidates))]
            with MatArray(path, ["mask"]) as data:
                mask = data.float32().reshape(mask_layout(data.shape, f.shape))
            if not np.isin(mask, (0.0, 1.0)).all():
                raise MatFileError(path, "mask values must be 0 or 1")
            return np.broadcast_to(mask, (frames, ny, nx)), pattern, acceleration, "file"
        # Patterns the generator knows: the file's own, else all of them.
        known = sorted({p for p, _, _ in f.masks} & set(PATTERNS)) or list(PATTERNS)
        patterns = [ref.pattern] if ref.pattern in PATTERNS else known
        pattern = patterns[rng.integers(len(patterns))]
        acceleration = int(self.accelerations[rng.integers(len(self.accelerations))])
        mask = make_mask(pattern, acceleration, frames, ny, nx, min(self.acs, ny, nx), seed=rng)
        return mask, pattern, acceleration, "generated"

    def __getitem__(self, index: int) -> dict:
        ref = self.samples[index]
        f = self.files[ref.file]
        rng = np.random.default_rng([self.seed, self.epoch, index])
        frame_idx, slice_idx = self._indices(ref, f.shape)
        kspace = torch.from_numpy(self._read_kspace(f, frame_idx, slice_idx))
        series_mask, pattern, acceleration, source = self._mask(f, ref, rng)
        mask = torch.from_numpy(np.ascontiguousarray(series_mask[frame_idx], dtype=np.float32))
        return {
            "kspace": kspace,
            "mask": mask,
            "target": rss_from_kspace(kspace[self.adjacent // 2]),
            "domain": self.domains[index],
            "index": index,
            "path": str(f.case.kspace_path),
            "stem": f.case.stem,
            "frame": ref.frame,
            "slice": ref.slice,
            "pattern": pattern,
            "acceleration": acceleration,
            "mask_source": source,
        }


class DomainInterleavedSampler(Sampler[int]):
    """Round-robin over domains: every ``n_domains`` consecutive indices hold one sample of each domain.

    Per epoch (deterministic in ``seed`` and the epoch): the order of the domains is shuffled
    once and kept for the whole epoch, so that every window of ``n_domains`` consecutive
    samples, aligned or not, holds each domain once; each domain's indices are shuffled and
    cycled (reshuffled at each pass) to the length of the largest domain, so an epoch visits
    every sample at least once and a small domain more often. The epoch is a list of rounds (one
    index per domain); with ``W = num_replicas`` processes (DDP) the streams are cycled on to a
    multiple of ``W`` rounds and rank ``r`` takes rounds ``r, r + W, ...``: the shards are
    equally long (DDP needs that), disjoint except for that padding, and interleaved themselves.

    ``set_epoch(epoch, position)`` selects the epoch and skips its first ``position`` indices of
    this rank (resumption); ``len()`` is what is left.
    """

    def __init__(
        self,
        domains: Sequence[str],
        seed: int = 0,
        shuffle: bool = True,
        num_replicas: int | None = None,
        rank: int | None = None,
    ):
        if not domains:
            raise ValueError("no samples to draw from")
        if num_replicas is None:
            num_replicas = dist.get_world_size() if dist.is_available() and dist.is_initialized() else 1
        if rank is None:
            rank = dist.get_rank() if dist.is_available() and dist.is_initialized() else 0
        if not 0 <= rank < num_replicas:
            raise ValueError(f"rank {rank} outside [0, {num_replicas})")
        groups: dict[str, list[int]] = defaultdict(list)
        for index, domain in enumerate(domains):
            groups[domain].append(index)
        self.names = sorted(groups)
        self.groups = [groups[name] for name in self.names]
        self.seed = seed
        self.shuffle = shuffle
        self.num_replicas = num_replicas
        self.rank = rank
        self.epoch = 0
        self.position = 0
        rounds = max(len(g) for g in self.groups)
        self.rounds_per_rank = math.ceil(rounds / num_replicas)

    @property
    def num_domains(self) -> int:
        return len(self.groups)

    def set_epoch(self, epoch: int, position: int = 0) -> None:
        if not 0 <= position <= self.rounds_per_rank * self.num_domains:
            raise ValueError(f"position {position} outside the epoch of {self.rounds_per_rank * self.num_domains}")
        self.epoch = epoch
        self.position = position

    def epoch_indices(self) -> list[int]:
        """This rank's whole epoch, from its start."""
        rng = np.random.default_rng([self.seed, self.epoch])
        order = rng.permutation(self.num_domains) if self.shuffle else np.arange(self.num_domains)
        length = self.rounds_per_rank * self.num_replicas
        streams = []
        for group in self.groups:
            passes = math.ceil(length / len(group))
            stream = [group[i] for _ in range(passes) for i in (rng.permutation(len(group)) if self.shuffle else range(len(group)))]
            streams.append(stream[:length])
        return [streams[d][r] for r in range(self.rank, length, self.num_replicas) for d in order]

    def __iter__(self) -> Iterator[int]:
        return iter(self.epoch_indices()[self.position :])

    def __len__(self) -> int:
        return self.rounds_per_rank * self.num_domains - self.position
