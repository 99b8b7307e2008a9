"""Training samples from the files of a CMRxRecon training tree (:mod:`genre.data.training_files`).

One sample is one target frame of one slice of one fully sampled file (``FullSample``): the
``adjacent`` frames around it (or, in a single-frame series, the neighbouring slices; see
:func:`genre.series.neighbours` and :func:`genre.series.adjacent_positions`, which inference
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

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch
from torch.utils.data import Dataset

from genre.data.cmrx import FULLY_SAMPLED_VARIABLES, read_mask, stored_index
from genre.data.matio import MatArray, MatFileError
from genre.data.training_files import SeriesFile
from genre.kspace import rss_from_kspace
from genre.masks import DEFAULT_ACS, PATTERNS, make_mask
from genre.series import adjacent_positions, neighbours

#: Ways to group samples into domains for the sampler and the SDA loss.
DOMAIN_KEYS = ("centre/vendor", "modality", "pattern")


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
        with MatArray(f.case.kspace_path, FULLY_SAMPLED_VARIABLES) as data:
            for key in zip(frame_idx, slice_idx):
                if key not in blocks:
                    # The reshape restores the coil axis that a 2-D (ky, kx) file lacks.
                    blocks[key] = data.complex64(stored_index(data.shape, False, *key)).reshape(f.shape[2:])
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
            mask = read_mask(path, f.shape)
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
