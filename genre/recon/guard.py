"""A label-free guard: per call, the candidate whose k-space best predicts acquired samples it did not see.

A network can do worse than a classical method on data unlike its training data, and nothing in
an undersampled file says which will win. But the file does hold samples that can be left out:
a share of the acquired lines outside the calibration block is withheld, every candidate
reconstructs from the rest, and each is scored by how well its coil k-space predicts the
withheld samples (relative squared error). The winner then reconstructs from all the samples.
This is k-space hold-out validation (the idea behind self-supervised data partitioning,
Yaman et al. 2020), used here to choose, not to train.

The calibration block is never withheld: every method estimates its coil maps from it, and
removing part of it would judge the maps, not the reconstruction. Withheld samples are drawn
as whole (frame, ky) rows, the unit a Cartesian pattern acquires, from a generator seeded the
same way on every call, so a rerun chooses the same way (``genre predict`` resumes must write
identical arrays).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass

import torch

from genre.kspace import acs_block
from genre.recon.base import SeriesInfo

log = logging.getLogger("genre.predict")


@dataclass(frozen=True)
class GuardConfig:
    fraction: float = 0.2  # share of the acquired rows outside the calibration block that is withheld
    seed: int = 0


def holdout_mask(mask: torch.Tensor, fraction: float, seed: int) -> torch.Tensor:
    """The withheld samples, float32 ``(frames, ky, kx)`` of 0/1, a subset of ``mask`` ``(frames, ky, kx)``.

    Candidates are the acquired samples outside the calibration block (:func:`genre.kspace.acs_block`),
    grouped into (frame, ky) rows; ``round(fraction * rows)`` of the rows that hold any are
    withheld, chosen by a generator seeded with ``seed``. All zero when no row qualifies.
    """
    sampled = mask.bool().clone()
    block = acs_block(mask)
    sampled[:, block[0], block[1]] = False
    rows = sampled.any(dim=-1).flatten().nonzero().flatten()  # indices into (frames * ky)
    count = round(fraction * rows.numel())
    held_rows = torch.zeros(sampled.shape[0] * sampled.shape[1], dtype=torch.bool)
    if count:
        generator = torch.Generator().manual_seed(seed)
        held_rows[rows[torch.randperm(rows.numel(), generator=generator)[:count]]] = True
    return (sampled & held_rows.view(*sampled.shape[:2], 1)).float()


def holdout_error(estimate: torch.Tensor, kspace: torch.Tensor, held: torch.Tensor) -> float:
    """Relative squared error of ``estimate`` at the withheld samples of ``kspace``.

    ``estimate`` and ``kspace`` coil k-space ``(frames, slices, coils, ky, kx)``; ``held``
    ``(frames, ky, kx)`` of 0/1. ``sum |held * (estimate - kspace)|^2 / sum |held * kspace|^2``.
    """
    weight = held[:, None, None]
    error = (weight * (estimate - kspace)).abs().square().sum()
    energy = (weight * kspace).abs().square().sum()
    return float(error / energy) if energy > 0 else float("inf")


class Guarded:
    """``primary`` unless another of ``alternatives`` predicts withheld samples better; see the module docstring.

    Every candidate must have ``estimate_kspace(kspace, mask, info)`` returning its coil k-space
    ``(frames, slices, coils, ky, kx)`` (GENRE-CMR, CG-SENSE and BART do). The cost is one extra
    reconstruction per candidate on each call. ``choices`` counts the calls each candidate won.
    """

    def __init__(self, primary, alternatives: Sequence, config: GuardConfig = GuardConfig()):
        if not 0 < config.fraction < 1:
            raise ValueError(f"the withheld fraction must lie in (0, 1), got {config.fraction}")
        self.candidates = [primary, *alternatives]
        self.config = config
        self.name = f"{primary.name} (guarded by {', '.join(m.name for m in alternatives)})"
        self.choices = {m.name: 0 for m in self.candidates}

    def reconstruct(self, kspace: torch.Tensor, mask: torch.Tensor, info: SeriesInfo) -> torch.Tensor:
        """``(frames, slices, coils, ky, kx)`` complex, ``(frames, ky, kx)`` mask -> ``(frames, slices, ky, kx)`` float32."""
        errors = self.holdout_errors(kspace, mask, info)
        best = self.candidates[0]
        if errors:
            best = min(self.candidates, key=lambda m: errors[m.name])
            log.info("%s: held-out error %s -> %s", info.stem,
                     ", ".join(f"{name} {value:.4f}" for name, value in errors.items()), best.name)
        self.choices[best.name] += 1
        return best.reconstruct(kspace, mask, info)

    def holdout_errors(self, kspace: torch.Tensor, mask: torch.Tensor, info: SeriesInfo) -> dict[str, float]:
        """Each candidate's :func:`holdout_error` on this input; empty when nothing can be withheld."""
        held = holdout_mask(mask, self.config.fraction, self.config.seed)
        if not held.any():
            return {}
        kept = mask - held
        reduced = kspace * kept[:, None, None]
        return {m.name: holdout_error(m.estimate_kspace(reduced, kept, info), kspace, held) for m in self.candidates}
