"""The one reconstruction interface every method implements (zero-filled, CG-SENSE, GENRE-CMR, BART), and its error."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

import torch

from genre.series import Neighbours, neighbours


class MethodUnavailable(Exception):
    """A method that cannot run here (no weights, no binary); ``str()`` is one line saying why."""


@dataclass(frozen=True)
class SeriesInfo:
    """What a method may know about the series besides its samples: nothing path-like."""

    stem: str
    frames: int

    @property
    def neighbours(self) -> Neighbours:
        return neighbours(self.stem, self.frames)


class Reconstructor(Protocol):
    """``reconstruct(kspace, mask, info) -> image``.

    * ``kspace``: complex64 ``(frames, slices, coils, ky, kx)``, zero where not sampled.
    * ``mask``: float32 ``(frames, ky, kx)`` of 0/1.
    * returns float32 ``(frames, slices, ky, kx)``: the RSS magnitude image the challenge scores.

    The caller may pass a subset of the slices of a file (one slice of a cine stack, say);
    methods that use neighbouring slices (``Neighbours.SLICES``) receive the whole stack.
    """

    name: str

    def reconstruct(self, kspace: torch.Tensor, mask: torch.Tensor, info: SeriesInfo) -> torch.Tensor: ...
