"""The CMRxRecon 2025 directory trees: find cases, parse their names, map output paths.

Validation / test tree (what prediction walks)::

    <T>/MultiCoil/<Modality>/<Set>/UnderSample_<T>/<Centre>/<Vendor>/<Patient>/<stem>_kus_<Pattern><R>.mat
    <T>/MultiCoil/<Modality>/<Set>/Mask_<T>/<Centre>/<Vendor>/<Patient>/<stem>_mask_<Pattern><R>.mat

Training release::

    MultiCoil/<Modality>/TrainingSet/FullSample/<Centre>/<Vendor>/<Patient>/<stem>.mat
    MultiCoil/<Modality>/TrainingSet/Mask_TaskAll/<Centre>/<Vendor>/<Patient>/<stem>_mask_<Pattern><R>.mat

The test layout was never published, so nothing here depends on the depth of the tree: cases
are found by file name anywhere below the root and each path component is recognised by its
own spelling. Outputs mirror the input's relative path.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from genre.data.matio import MatArray, MatFileError
from genre.series import has_time_axis

_KUS = re.compile(r"^(?P<stem>.+)_kus_(?P<pattern>[A-Za-z]+?)(?P<acc>\d+)\.mat$")
_MASK = re.compile(r"^(?P<stem>.+)_mask_(?P<pattern>[A-Za-z]+?)(?P<acc>\d+)\.mat$")
_TASK = re.compile(r"^Task[A-Za-z]*\d*$")
_SET = re.compile(r"^(Training|Validation|Test)Set$")
_CENTRE = re.compile(r"^Cent(er|re)\d+$", re.IGNORECASE)
_PATIENT = re.compile(r"^P\d+$")
UNKNOWN = "unknown"
#: The variable holding fully sampled k-space in a ``FullSample`` file (the release uses both names).
FULLY_SAMPLED_VARIABLES = ("kspace", "kspace_full")


@dataclass(frozen=True)
class Location:
    """Where a file sits in a CMRxRecon tree, read off its path components."""

    task: str = UNKNOWN
    modality: str = UNKNOWN
    set_name: str = UNKNOWN
    centre: str = UNKNOWN
    vendor: str = UNKNOWN
    patient: str = UNKNOWN

    @property
    def domain(self) -> str:
        """The centre/vendor pair: TaskR1's grouping and the default training domain."""
        return f"{self.centre}/{self.vendor}"


def parse_location(parts: tuple[str, ...]) -> Location:
    """Recognise task, modality, set, centre, vendor and patient among path components."""
    found: dict[str, str] = {}
    for i, part in enumerate(parts):
        if _TASK.match(part) and "task" not in found:
            found["task"] = part
        elif part == "MultiCoil" and i + 1 < len(parts):
            found["modality"] = parts[i + 1]
        elif _SET.match(part):
            found["set_name"] = part
        elif _CENTRE.match(part):
            found["centre"] = part
            if i + 1 < len(parts) - 1:
                found["vendor"] = parts[i + 1]
        elif _PATIENT.match(part):
            found["patient"] = part
    return Location(**found)


@dataclass(frozen=True)
class Case:
    """One undersampled file to reconstruct."""

    kus_path: Path
    relative: Path  # path of the kus file relative to the input root; the output mirrors it
    location: Location
    stem: str
    pattern: str
    acceleration: int
    mask_candidates: tuple[Path, ...] = field(default=(), compare=False)

    @property
    def mask_path(self) -> Path | None:
        """The first existing candidate mask file, or None."""
        return next((p for p in self.mask_candidates if p.is_file()), None)

    def output_path(self, output_root: Path) -> Path:
        return Path(output_root) / self.relative


def _mask_candidates(kus_path: Path) -> tuple[Path, ...]:
    name = kus_path.name.replace("_kus_", "_mask_")
    parts = kus_path.parent.parts
    swapped = tuple(re.sub(r"^UnderSample_", "Mask_", p) for p in parts)
    candidates = []
    if swapped != parts:
        candidates.append(Path(*swapped) / name)
    candidates.append(kus_path.parent / name)
    return tuple(candidates)


def parse_case(kus_path: Path, root: Path) -> Case:
    match = _KUS.match(kus_path.name)
    if match is None:
        raise ValueError(f"{kus_path}: not a CMRxRecon undersampled file name (<stem>_kus_<Pattern><R>.mat)")
    relative = kus_path.relative_to(root)
    return Case(
        kus_path=kus_path,
        relative=relative,
        location=parse_location(relative.parts[:-1]),
        stem=match["stem"],
        pattern=match["pattern"],
        acceleration=int(match["acc"]),
        mask_candidates=_mask_candidates(kus_path),
    )


def find_cases(root: os.PathLike | str) -> list[Case]:
    """Every ``*_kus_*.mat`` below ``root``, sorted by relative path."""
    root = Path(root)
    paths = sorted(p for p in root.rglob("*_kus_*.mat") if p.is_file() and _KUS.match(p.name))
    return [parse_case(p, root) for p in paths]


def fullsample_path(case: Case, root: os.PathLike | str) -> Path:
    """Ground-truth k-space of a validation-like case: ``UnderSample_<T>`` -> ``FullSample_<T>``, ``<stem>.mat``."""
    parts = tuple(re.sub(r"^UnderSample_", "FullSample_", p) for p in case.relative.parent.parts)
    return Path(root, *parts) / f"{case.stem}.mat"


@dataclass(frozen=True)
class TrainingCase:
    """A fully sampled training file and the masks the release provides for it."""

    kspace_path: Path
    location: Location
    stem: str
    masks: tuple[tuple[str, int, Path], ...]  # (pattern, acceleration, path)


def find_training_cases(root: os.PathLike | str) -> list[TrainingCase]:
    """Every ``FullSample/**/<stem>.mat`` below ``root`` with its ``Mask_TaskAll`` masks."""
    root = Path(root)
    cases = []
    for path in sorted(root.rglob("*.mat")):
        parts = path.relative_to(root).parts
        if "FullSample" not in parts[:-1]:
            continue
        mask_dir = Path(root, *("Mask_TaskAll" if p == "FullSample" else p for p in parts[:-1]))
        stem = path.stem
        masks = []
        if mask_dir.is_dir():
            for mask_path in sorted(mask_dir.glob(f"{stem}_mask_*.mat")):
                match = _MASK.match(mask_path.name)
                if match and match["stem"] == stem:
                    masks.append((match["pattern"], int(match["acc"]), mask_path))
        cases.append(TrainingCase(path, parse_location(parts[:-1]), stem, tuple(masks)))
    return cases


def kspace_layout(stem: str, shape: tuple[int, ...]) -> tuple[int, int, int, int, int]:
    """The internal 5-D shape ``(frames, slices, coils, ky, kx)`` of a k-space array in h5py order.

    MATLAB drops trailing singleton dimensions when saving, so a 5-D ``(nx, ny, nc, nz, nt)``
    with nt = 1 arrives 4-D and one with nz = nt = 1 arrives 3-D, while an interior 1 (nz = 1,
    nt > 1) is kept. Stems without a time axis are at most 4-D. Raises ``ValueError``.
    """
    ndim = len(shape)
    max_ndim = 5 if has_time_axis(stem) else 4
    if not 3 <= ndim <= max_ndim:
        raise ValueError(f"k-space of a {stem} file must have 3 to {max_ndim} dimensions, found shape {shape} (h5py order)")
    padded = (1,) * (5 - ndim) + tuple(shape)
    return padded  # type: ignore[return-value]


def mask_layout(mask_shape: tuple[int, ...], kspace: tuple[int, int, int, int, int]) -> tuple[int, int, int]:
    """The internal ``(frames, ky, kx)`` shape of a mask, checked against the k-space it samples."""
    frames, _, _, ny, nx = kspace
    if len(mask_shape) == 2:
        mask_frames = 1
    elif len(mask_shape) == 3:
        mask_frames = mask_shape[0]
    else:
        raise ValueError(f"mask must be 2-D or 3-D, found shape {mask_shape}")
    if tuple(mask_shape[-2:]) != (ny, nx) or mask_frames not in (1, frames):
        raise ValueError(
            f"mask shape {mask_shape} does not fit k-space with {frames} frames of {ny}x{nx} (h5py order, ky x kx)"
        )
    return (mask_frames, ny, nx)


def read_mask(path: Path, kspace: tuple[int, int, int, int, int]) -> np.ndarray:
    """The ``mask`` of ``path`` as float32 ``(1 or frames, ky, kx)`` of 0/1, checked against the 5-D k-space shape ``kspace``.

    Raises ``MatFileError`` naming the file: unreadable, a shape that does not fit the k-space
    (checked before any value is read), values other than 0 and 1 (NaN included), which would
    scale the data instead of selecting it, or a frame that samples nothing: nothing was
    acquired there, so no method has anything to reconstruct.
    """
    with MatArray(path, ["mask"]) as data:
        try:
            shape = mask_layout(data.shape, kspace)
        except ValueError as exc:
            raise MatFileError(path, str(exc)) from None
        mask = data.float32().reshape(shape)
    if not np.isin(mask, (0.0, 1.0)).all():
        raise MatFileError(path, "mask values must be 0 or 1")
    empty = np.flatnonzero(~mask.any(axis=(1, 2)))
    if len(empty) == len(mask):
        raise MatFileError(path, "mask is all zero: nothing was acquired")
    if len(empty):
        frames = ", ".join(str(t + 1) for t in empty)
        raise MatFileError(path, f"mask samples nothing in frame(s) {frames} (1-based): nothing was acquired there")
    return mask
