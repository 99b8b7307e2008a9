"""The CMRxRecon 2025 directory trees: find cases, parse their names, map output paths.

Validation / test tree (what prediction walks)::

    <T>/MultiCoil/<Modality>/<Set>/UnderSample_<T>/<Centre>/<Vendor>/<Patient>/<stem>_kus_<Pattern><R>.mat
    <T>/MultiCoil/<Modality>/<Set>/Mask_<T>/<Centre>/<Vendor>/<Patient>/<stem>_mask_<Pattern><R>.mat

Training release::

    MultiCoil/<Modality>/TrainingSet/FullSample/<Centre>/<Vendor>/<Patient>/<stem>.mat
    MultiCoil/<Modality>/TrainingSet/Mask_TaskAll/<Centre>/<Vendor>/<Patient>/<stem>_mask_<Pattern><R>.mat

The test scorer spells the undersampled folder as the bare task name, with the masks beside it
in ``Mask_<T>`` (and the ground truth in ``FullSample_<T>``)::

    <T>/MultiCoil/<Modality>/TestSet/<T>/<Centre>/<Vendor>/<Patient>/<stem>_kus_<Pattern><R>.mat

The 2023/2024 editions add ``SingleCoil`` trees beside ``MultiCoil``: the same layout, k-space
without a coil axis.

The test layout was never published, so nothing here depends on the depth of the tree: cases
are found by file name anywhere below the root and each path component is recognised by its
own spelling. Outputs go where the graders look, ``<T>/MultiCoil/...``: the input's relative
path from its ``MultiCoil`` (or ``SingleCoil``) folder on, below its task folder, which is
added when the input has none above ``MultiCoil`` (the task is then read off the
``UnderSample_<T>`` folder) and replaces any folders above it.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from genre.data.matio import MatArray, MatFileError
from genre.masks import mask_from_samples
from genre.series import has_time_axis

_KUS = re.compile(r"^(?P<stem>.+)_kus_(?P<pattern>[A-Za-z]+?)(?P<acc>\d+)\.mat$")
_MASK = re.compile(r"^(?P<stem>.+)_mask_(?P<pattern>[A-Za-z]+?)(?P<acc>\d+)\.mat$")
_TASK = re.compile(r"^Task[A-Za-z]*\d*$")
_SET = re.compile(r"^(Training|Validation|Test)Set$")
_CENTRE = re.compile(r"^Cent(er|re)\d+$", re.IGNORECASE)
_PATIENT = re.compile(r"^P\d+$")
#: A folder named after its task: ``UnderSample_TaskR1``, ``Mask_TaskR1``, ``FullSample_TaskR1``.
_TASK_FOLDER = re.compile(r"^(UnderSample|Mask|FullSample)_(?P<task>Task[A-Za-z]*\d*)$")
#: The folder above the modality; ``SingleCoil`` holds k-space without a coil axis.
COIL_FOLDERS = ("MultiCoil", "SingleCoil")
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
    """Recognise task, modality, set, centre, vendor and patient among path components.

    The task is the first ``Task*`` folder; in a tree without one it is the task a folder such
    as ``UnderSample_<T>`` is named after.
    """
    found: dict[str, str] = {}
    for i, part in enumerate(parts):
        if _TASK.match(part) and "task" not in found:
            found["task"] = part
        elif part in COIL_FOLDERS and i + 1 < len(parts):
            found["modality"] = parts[i + 1]
        elif _SET.match(part):
            found["set_name"] = part
        elif _CENTRE.match(part):
            found["centre"] = part
            if i + 1 < len(parts) - 1:
                found["vendor"] = parts[i + 1]
        elif _PATIENT.match(part):
            found["patient"] = part
    if "task" not in found:
        named = (m["task"] for m in map(_TASK_FOLDER.match, parts) if m)
        found["task"] = next(named, UNKNOWN)
    return Location(**found)


@dataclass(frozen=True)
class Case:
    """One undersampled file to reconstruct."""

    kus_path: Path
    relative: Path  # path of the kus file relative to the input root
    output_relative: Path  # path of its output relative to the output root (:func:`output_relative`)
    location: Location
    stem: str
    pattern: str
    acceleration: int
    mask_candidates: tuple[Path, ...] = field(default=(), compare=False)

    @property
    def mask_path(self) -> Path | None:
        """The first existing candidate mask file, or None."""
        return next((p for p in self.mask_candidates if p.is_file()), None)

    @property
    def single_coil(self) -> bool:
        """Whether the file lies in a ``SingleCoil`` tree, whose k-space has no coil axis."""
        return "SingleCoil" in self.relative.parts[:-1]

    def output_path(self, output_root: os.PathLike | str) -> Path:
        return Path(output_root) / self.output_relative


def _sibling_folder(parts: tuple[str, ...], kind: str) -> tuple[str, ...] | None:
    """``parts`` with the undersampled folder replaced by its ``<kind>_<T>`` sibling, or None when there is none.

    The undersampled folder is ``UnderSample_<T>``, or, as the test scorer spells it, the bare
    task name right below the set folder (``TestSet/TaskR1``).
    """
    for i, part in enumerate(parts):
        if part.startswith("UnderSample_"):
            return (*parts[:i], kind + part.removeprefix("UnderSample"), *parts[i + 1 :])
        if i > 0 and _TASK.match(part) and _SET.match(parts[i - 1]):
            return (*parts[:i], f"{kind}_{part}", *parts[i + 1 :])
    return None


def _mask_candidates(root: Path, relative: Path) -> tuple[Path, ...]:
    """The mask file in the ``Mask_<T>`` sibling of the undersampled folder, then beside the kus file."""
    name = relative.name.replace("_kus_", "_mask_")
    sibling = _sibling_folder(relative.parts[:-1], "Mask")
    candidates = [] if sibling is None else [root.joinpath(*sibling, name)]
    candidates.append(root / relative.parent / name)
    return tuple(candidates)


def output_relative(relative: Path, location: Location) -> Path:
    """Where the output of the input at ``relative`` goes below the output root: ``<T>/MultiCoil/...``.

    The graders look for ``OUT/<T>/MultiCoil/<Modality>/...`` and nothing may wrap ``<T>``, so
    the path from the coil folder on is put below the task folder: the input's own relative
    path in the organizers' layout, the task added where the input has no task folder above
    ``MultiCoil``. Without a coil folder or a known task the input's relative path is kept.
    """
    parts = relative.parts
    coil = next((i for i, part in enumerate(parts[:-1]) if part in COIL_FOLDERS), None)
    if coil is None or location.task == UNKNOWN:
        return relative
    return Path(location.task, *parts[coil:])


def parse_case(kus_path: Path, root: Path) -> Case:
    match = _KUS.match(kus_path.name)
    if match is None:
        raise ValueError(f"{kus_path}: not a CMRxRecon undersampled file name (<stem>_kus_<Pattern><R>.mat)")
    relative = kus_path.relative_to(root)
    location = parse_location(relative.parts[:-1])
    return Case(
        kus_path=kus_path,
        relative=relative,
        output_relative=output_relative(relative, location),
        location=location,
        stem=match["stem"],
        pattern=match["pattern"],
        acceleration=int(match["acc"]),
        mask_candidates=_mask_candidates(root, relative),
    )


def find_cases(root: os.PathLike | str) -> list[Case]:
    """Every ``*_kus_*.mat`` below ``root``, sorted by relative path; see :func:`scan_cases`."""
    return scan_cases(root)[0]


def scan_cases(root: os.PathLike | str) -> tuple[list[Case], list[Path]]:
    """One walk of ``root``: every ``*_kus_*.mat`` file as a case, sorted by relative path, and the folders named so.

    Raises ``ValueError`` (one line naming both files) when two inputs would have the same
    output path, e.g. two copies of a task tree below different folders.
    """
    root = Path(root)
    found = sorted(root.rglob("*_kus_*.mat"))
    folders = [p for p in found if p.is_dir()]
    cases = [parse_case(p, root) for p in found if p.is_file() and _KUS.match(p.name)]
    claimed: dict[Path, Path] = {}
    for case in cases:
        first = claimed.setdefault(case.output_relative, case.kus_path)
        if first != case.kus_path:
            raise ValueError(f"{case.kus_path}: its output {case.output_relative} would also be the output of {first}; "
                             "the input must hold one copy of each task")
    return cases, folders


def fullsample_path(case: Case, root: os.PathLike | str) -> Path:
    """Ground-truth k-space of a validation-like case: ``<stem>.mat`` in the ``FullSample_<T>`` sibling of its undersampled folder."""
    parts = case.relative.parent.parts
    return Path(root, *(_sibling_folder(parts, "FullSample") or parts)) / f"{case.stem}.mat"


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


def _has_coil_axis(shape: tuple[int, ...], single_coil: bool) -> bool:
    # A 2-D array is one single-coil image in any tree.
    return not single_coil and len(shape) > 2


def kspace_layout(stem: str, shape: tuple[int, ...], single_coil: bool = False) -> tuple[int, int, int, int, int]:
    """The internal 5-D shape ``(frames, slices, coils, ky, kx)`` of a k-space array in h5py order.

    MATLAB drops trailing singleton dimensions when saving, so a 5-D ``(nx, ny, nc, nz, nt)``
    with nt = 1 arrives 4-D and one with nz = nt = 1 arrives 3-D, while an interior 1 (nz = 1,
    nt > 1) is kept. Stems without a time axis are at most 4-D. Single-coil k-space (a
    ``SingleCoil`` tree, ``single_coil``) has no coil axis, ``(nt, nz, ny, nx)``, and gets
    ``coils = 1``; so does a 2-D ``(ny, nx)`` array in any tree. Raises ``ValueError``.
    """
    ndim = len(shape)
    coil_axis = _has_coil_axis(shape, single_coil)
    most = (5 if has_time_axis(stem) else 4) - (not coil_axis)
    if not 2 + coil_axis <= ndim <= most:
        kind = "k-space" if coil_axis else "single-coil k-space (no coil axis)"
        raise ValueError(f"{kind} of a {stem} file must have {2 + coil_axis} to {most} dimensions, "
                         f"found shape {shape} (h5py order)")
    with_coils = tuple(shape) if coil_axis else (*shape[:-2], 1, *shape[-2:])
    return (1,) * (5 - len(with_coils)) + with_coils  # type: ignore[return-value]


def stored_index(shape: tuple[int, ...], single_coil: bool = False, frames=slice(None), slice_=slice(None)) -> tuple:
    """The numpy index of ``(frames, slice_)`` into a stored k-space array of ``shape`` (h5py order).

    The frame and slice axes lead, and MATLAB dropped those of length 1 from the front (its
    trailing singletons), so their indices are dropped with them: ``slice_`` of a 4-D
    ``(nz, nc, ny, nx)`` file is ``(slice_,)``.
    """
    kept = len(shape) - (3 if _has_coil_axis(shape, single_coil) else 2)
    return (frames, slice_)[2 - kept :]


def mask_from_kspace(kus: MatArray, kspace: tuple[int, int, int, int, int], single_coil: bool = False) -> tuple[np.ndarray, bool]:
    """The sampling mask float32 ``(frames, ky, kx)`` of 0/1 read off the nonzero samples of ``kus``, and whether it is whole lines.

    ``kspace`` is the file's 5-D shape (:func:`kspace_layout`). A sample counts as acquired
    where any coil is nonzero; undersampled data is ``kspace .* mask`` with one mask for every
    slice, so the central slice tells the pattern and only it is read. Whole lines or single
    samples: see :func:`genre.masks.mask_from_samples`. Raises ``MatFileError``, also where a frame is all zero in every coil (:func:`check_acquired`).
    """
    frames, slices, coils, ny, nx = kspace
    values = kus.complex64(stored_index(kus.shape, single_coil, slice_=slices // 2)).reshape(frames, coils, ny, nx)
    mask, whole_lines = mask_from_samples((values != 0).any(axis=1))
    check_acquired(kus.path, mask, "no mask file, and the k-space")
    return mask, whole_lines


def check_acquired(path: Path, mask: np.ndarray, what: str = "mask") -> None:
    """Raise ``MatFileError`` naming ``path`` where a frame of ``mask`` ``(frames, ky, kx)`` samples nothing.

    Nothing was acquired there, so no method has anything to reconstruct: the same refusal
    whether the mask was read from its file or derived from the k-space (``what`` says which).
    """
    empty = np.flatnonzero(~mask.any(axis=(1, 2)))
    if len(empty) == len(mask):
        raise MatFileError(path, f"{what} is all zero: nothing was acquired")
    if len(empty):
        frames = ", ".join(str(t + 1) for t in empty)
        raise MatFileError(path, f"{what} samples nothing in frame(s) {frames} (1-based): nothing was acquired there")


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
    check_acquired(path, mask)
    return mask
