"""What a CMRxRecon file stem says about its series: time axis, periodicity, ranking frames.

Pure data, no I/O: the tree parser, the output contract and the models all ask here.
"""

from __future__ import annotations

import enum

#: Stems stored without a time axis: MATLAB order (nx, ny, nc, nz).
NO_TIME_STEMS = frozenset({"blackblood", "T1w", "T2w"})
#: Stems whose frames are contrast weightings; the ranking keeps all of them.
MAPPING_STEMS = frozenset({"T1map", "T1mappost", "T2map", "T2smap", "T1rho"})
#: Stems whose frames cover one cardiac cycle, so frame 0 follows the last frame.
PERIODIC_PREFIXES = ("cine", "flow2d")


class Neighbours(enum.Enum):
    """How the network's adjacent inputs around a target frame are gathered."""

    WRAP = "wrap"  # periodic series: the cardiac cycle closes on itself
    REFLECT = "reflect"  # ordered, non-periodic frames (weightings, first-pass perfusion)
    SLICES = "slices"  # one frame only: neighbouring slices, reflected at the ends


def has_time_axis(stem: str) -> bool:
    """Whether files of this stem carry a time (or weighting) axis at all."""
    return stem not in NO_TIME_STEMS


def is_mapping(stem: str) -> bool:
    return stem in MAPPING_STEMS


def neighbours(stem: str, frames: int) -> Neighbours:
    """Adjacent-input rule for a series of ``frames`` frames with this stem (METHOD.md decision)."""
    if frames == 1:
        return Neighbours.SLICES
    if stem.startswith(PERIODIC_PREFIXES):
        return Neighbours.WRAP
    return Neighbours.REFLECT


def modality_of(stem: str) -> str:
    """The CMRxRecon modality folder a stem belongs to (for synthetic trees and reports)."""
    if stem.startswith("cine"):
        return "Cine"
    if stem.startswith("lge"):
        return "LGE"
    table = {
        "perfusion": "Perfusion",
        "flow2d": "Flow2d",
        "T1rho": "T1rho",
        "blackblood": "BlackBlood",
        "T1w": "T1w",
        "T2w": "T2w",
        "T1map": "Mapping",
        "T1mappost": "Mapping",
        "T2map": "Mapping",
        "T2smap": "Mapping",
    }
    if stem not in table:
        raise ValueError(f"unknown CMRxRecon file stem {stem!r}")
    return table[stem]


def adjacent_indices(n: int, center: int, length: int, mode: Neighbours) -> list[int]:
    """Indices of the ``length`` inputs centred on ``center`` along an axis of ``n`` frames (or slices).

    ``WRAP`` wraps periodically (a cardiac cycle); ``REFLECT`` and ``SLICES`` mirror at the
    ends without repeating the edge (numpy's ``reflect``), repeatedly when ``n`` is smaller than
    ``length``: ``n=2, center=0, length=5`` gives ``[0, 1, 0, 1, 0]``; ``n=1`` gives all zeros.
    """
    if length < 1 or length % 2 == 0:
        raise ValueError(f"length must be odd and >= 1, got {length}")
    if not 0 <= center < n:
        raise ValueError(f"center {center} outside an axis of {n}")
    positions = range(center - length // 2, center + length // 2 + 1)
    if mode is Neighbours.WRAP:
        return [i % n for i in positions]
    if n == 1:
        return [0] * length
    period = 2 * (n - 1)
    return [i % period if i % period < n else period - i % period for i in positions]


def adjacent_positions(frames: int, slices: int, frame: int, slice_: int, length: int, mode: Neighbours) -> list[tuple[int, int]]:
    """``(frame, slice)`` of each of the network's ``length`` inputs for the target ``(frame, slice_)``.

    The one neighbour gatherer of training and inference: frames around the target in its
    slice, or, for ``Neighbours.SLICES`` (a single-frame series), the neighbouring slices of
    frame 0 (see :func:`adjacent_indices` for the ends).
    """
    if mode is Neighbours.SLICES:
        return [(0, z) for z in adjacent_indices(slices, slice_, length, mode)]
    return [(t, slice_) for t in adjacent_indices(frames, frame, length, mode)]
