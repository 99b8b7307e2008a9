"""The output contract: what ``img4ranking`` holds, in ranking or full mode.

Images arrive in the internal layout ``(frames, slices, ky, kx)`` (RSS magnitude) and leave
in MATLAB order ``(x, y, z, t)`` with trailing singleton dimensions dropped, which is what
``scipy.io.savemat`` must be given. The ranking reduction follows the organizers'
``run4Ranking_2025.m``: central slices, first frames, a centred crop to a third of the readout
and half of the phase encodes, with MATLAB's rounding.
"""

from __future__ import annotations

import enum

import numpy as np

from genre.data.cmrx import Case, kspace_layout
from genre.data.matio import MatArray, matlab_shape
from genre.kspace import center_crop
from genre.matlab_round import mround
from genre.series import has_time_axis, is_mapping


class OutputMode(enum.Enum):
    FULL = "full"  # the whole volume, coils combined
    RANKING = "ranking"  # run4Ranking_2025.m's slices, frames and crop


def ranking_slices(slices: int) -> list[int]:
    """0-based slices the ranking keeps: all when fewer than 3, else the two around the centre."""
    if slices < 3:
        return list(range(slices))
    centre = mround(slices / 2)
    return [centre - 2, centre - 1]


def ranking_frames(stem: str, frames: int) -> list[int]:
    """0-based frames the ranking keeps: one without time, all weightings of mapping series, else the first 3."""
    if not has_time_axis(stem) or frames == 1:
        return [0]
    if is_mapping(stem):
        return list(range(frames))
    return list(range(min(3, frames)))


def ranking_crop(ny: int, nx: int) -> tuple[int, int]:
    """The ranking crop size ``(cy, cx)``: half the phase encodes, a third of the readout."""
    return mround(ny / 2), mround(nx / 3)


def selection(stem: str, frames: int, slices: int, mode: OutputMode) -> tuple[list[int], list[int]]:
    """``(frames, slices)`` indices the output holds; prediction reconstructs only these slices."""
    if mode is OutputMode.FULL:
        return list(range(frames)), list(range(slices))
    return ranking_frames(stem, frames), ranking_slices(slices)


def output_shape(stem: str, shape: tuple[int, int, int, int], mode: OutputMode) -> tuple[int, ...]:
    """MATLAB-order shape of ``img4ranking`` for an internal image shape ``(frames, slices, ky, kx)``."""
    frames, slices, ny, nx = shape
    keep_frames, keep_slices = selection(stem, frames, slices, mode)
    if mode is OutputMode.RANKING:
        ny, nx = ranking_crop(ny, nx)
    return matlab_shape((nx, ny, len(keep_slices), len(keep_frames)))


def image_shape(case: Case) -> tuple[int, int, int, int]:
    """The internal ``(frames, slices, ky, kx)`` of the case's image, from its kus file's header (raises ``MatFileError``, ``ValueError``)."""
    with MatArray(case.kus_path, ["kus"]) as kus:
        frames, slices, _, ny, nx = kspace_layout(case.stem, kus.shape, case.single_coil)
    return frames, slices, ny, nx


def expected_output_shape(case: Case, mode: OutputMode) -> tuple[int, ...]:
    """MATLAB-order shape of the case's ``img4ranking``, from its kus file's header (raises ``MatFileError``, ``ValueError``)."""
    return output_shape(case.stem, image_shape(case), mode)


def reduce_image(image: np.ndarray, stem: str, mode: OutputMode) -> np.ndarray:
    """Turn a file's internal ``(frames, slices, ky, kx)`` magnitude into the MATLAB-order output array."""
    frames, slices, ny, nx = image.shape
    keep_frames, keep_slices = selection(stem, frames, slices, mode)
    out = image[np.ix_(keep_frames, keep_slices)]
    if mode is OutputMode.RANKING:
        out = center_crop(out, ranking_crop(ny, nx))
    out = np.ascontiguousarray(np.transpose(out, (3, 2, 1, 0)), dtype=np.float32)
    return out.reshape(matlab_shape(out.shape))
