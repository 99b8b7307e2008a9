"""Check an output tree the way both CMRxRecon graders read it.

The validation scorer walks the submitted zip and crashes on a file it does not expect; the
test grader looks for ``OUT/<T>/MultiCoil/...`` and reads each file with
:func:`scipy.io.loadmat`. So a submission is valid when, for the input tree it answers:

- every input ``*_kus_*.mat`` has exactly one output at ``OUT/<its output path>`` (``Case.output_relative``,
  ``<T>/MultiCoil/...``: the kus file's relative path in the organizers' layout);
- nothing else lies anywhere under ``OUT`` (hidden leftovers of an interrupted write included);
- the task folder ``Task*`` is the first component of every output path (nothing wraps it);
- each output is a MAT v5 file (not v7.3/HDF5) holding one variable ``img4ranking``, float32,
  finite, of exactly the shape the output contract gives for its input's k-space shape.

Every problem is one line naming the file and the problem; the check never stops at the first.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

import h5py
import numpy as np
import scipy.io
from scipy.io.matlab import matfile_version

from genre.data.cmrx import UNKNOWN, Case, find_cases
from genre.data.contract import OutputMode, image_shape, output_shape
from genre.data.matio import MatFileError

VARIABLE = "img4ranking"
#: The end of a shape problem whose output has the other output mode's shape (counted for the report's hint).
_OTHER_MODE = ", which is this file's {}-mode output"


class SubmissionSetupError(Exception):
    """The check cannot start (no input tree, no output folder); ``str()`` is one line."""


@dataclass
class ValidationReport:
    """What :func:`validate_submission` found; ``problems`` holds one line per problem."""

    out_root: Path
    input_root: Path
    output_mode: OutputMode
    expected: int = 0  # input kus files, so outputs the graders look for
    found: int = 0  # of those, outputs present at the right path
    valid: int = 0  # of those, outputs without any problem
    unexpected: int = 0  # files under OUT that no input asks for
    other_mode: int = 0  # of those found, outputs of the shape the other output mode gives
    problems: list[str] = field(default_factory=list)

    @property
    def missing(self) -> int:
        return self.expected - self.found

    @property
    def ok(self) -> bool:
        return not self.problems


def _entries(root: Path) -> list[Path]:
    """Every non-directory entry below ``root`` (hidden ones and links included), relative to it.

    Links to folders are not followed: the graders would see them as something other than the
    plain files they expect, so they are reported like any other stray entry.
    """
    found = []
    stack = [root]
    while stack:
        folder = stack.pop()
        with os.scandir(folder) as it:
            for entry in it:
                if entry.is_dir(follow_symlinks=False):
                    stack.append(Path(entry.path))
                else:
                    found.append(Path(entry.path).relative_to(root))
    return sorted(found)


def _wrapped(relative: Path, expected: dict[Path, Case]) -> Path | None:
    """The expected path that ``relative`` holds below extra leading folders, if any."""
    parts = relative.parts
    for start in range(1, len(parts)):
        candidate = Path(*parts[start:])
        if candidate in expected:
            return candidate
    return None


def check_output(path: Path, shape: tuple[int, ...], other_mode: tuple[OutputMode, tuple[int, ...]] | None = None) -> list[str]:
    """Problems of one output file, each a line naming it; empty when it is valid.

    ``other_mode``: the other output mode and the shape it would give; an output of that shape
    is told so (the commonest slip: full volumes where the validation zip wants ranking crops).
    """
    if path.is_symlink() or not path.is_file():
        return [f"{path}: not a regular file"]
    try:
        if h5py.is_hdf5(path):
            return [f"{path}: MAT v7.3/HDF5 file; the graders read MAT v5 (scipy.io.savemat)"]
        major, _ = matfile_version(str(path))
    except Exception as exc:  # noqa: BLE001 - scipy raises assorted errors on files that are not MATLAB at all
        return [f"{path}: not a MAT v5 file ({exc})"]
    if major != 1:
        return [f"{path}: MAT v4 file; the graders expect MAT v5 (scipy.io.savemat)"]
    try:
        contents = scipy.io.loadmat(path)
    except Exception as exc:  # noqa: BLE001 - as above: a corrupt file can raise anything
        return [f"{path}: scipy.io.loadmat cannot read it ({exc})"]
    names = sorted(k for k in contents if not k.startswith("__"))
    if VARIABLE not in names:
        return [f"{path}: no variable {VARIABLE!r} (the file holds {', '.join(map(repr, names)) or 'nothing'})"]
    problems = []
    if names != [VARIABLE]:
        extra = ", ".join(repr(n) for n in names if n != VARIABLE)
        problems.append(f"{path}: variables besides {VARIABLE!r}: {extra}")
    image = contents[VARIABLE]
    if not isinstance(image, np.ndarray) or image.dtype.names is not None or image.dtype == object:
        return problems + [f"{path}: {VARIABLE!r} is a MATLAB struct or cell, not an array"]
    if image.dtype != np.float32:
        problems.append(f"{path}: {VARIABLE!r} is {image.dtype}, must be float32 (single)")
    if tuple(image.shape) != tuple(shape):
        problem = f"{path}: {VARIABLE!r} has shape {tuple(image.shape)}, expected {tuple(shape)} (MATLAB order)"
        if other_mode is not None and tuple(image.shape) == tuple(other_mode[1]):
            problem += _OTHER_MODE.format(other_mode[0].value)
        problems.append(problem)
    if np.issubdtype(image.dtype, np.number):
        nan, inf = int(np.isnan(image).sum()), int(np.isinf(image).sum())
        if nan or inf:
            problems.append(f"{path}: {VARIABLE!r} holds {nan} NaN and {inf} Inf values")
    return problems


def validate_submission(out_root: os.PathLike | str, input_root: os.PathLike | str, output_mode: OutputMode) -> ValidationReport:
    """Check ``out_root`` as the answer to the input tree ``input_root`` in ``output_mode``.

    The validation zip is ranking-reduced (``OutputMode.RANKING``); the test container writes
    whichever mode it was run in. Raises :class:`SubmissionSetupError` when there is nothing to check.
    """
    out_root, input_root = Path(out_root), Path(input_root)
    if not input_root.is_dir():
        raise SubmissionSetupError(f"{input_root}: input folder not found")
    if not out_root.is_dir():
        raise SubmissionSetupError(f"{out_root}: output folder not found")
    try:
        cases = {case.output_relative: case for case in find_cases(input_root)}
    except ValueError as exc:  # two inputs with one output path
        raise SubmissionSetupError(str(exc)) from None
    if not cases:
        raise SubmissionSetupError(f"{input_root}: no undersampled files (*_kus_*.mat) found")
    report = ValidationReport(out_root, input_root, output_mode, expected=len(cases))

    present = set()
    explained = set()  # expected outputs already reported as lying below a wrapping folder
    for relative in _entries(out_root):
        if relative in cases:
            present.add(relative)
            continue
        report.unexpected += 1
        target = _wrapped(relative, cases)
        if target is not None and target not in explained:
            explained.add(target)
            wrapper = Path(*relative.parts[: len(relative.parts) - len(target.parts)])
            report.problems.append(
                f"{out_root / relative}: lies below the extra folder {wrapper}; expected at {out_root / target} "
                "(nothing may wrap the task folder)"
            )
        elif relative.name.startswith("."):
            report.problems.append(f"{out_root / relative}: unexpected hidden file (a leftover temporary?); the validation scorer fails on any extra file")
        else:
            report.problems.append(f"{out_root / relative}: unexpected file; no input {relative.name} asks for it, and the validation scorer fails on any extra file")

    for relative, case in cases.items():
        path = out_root / relative
        if relative not in present:
            if relative not in explained:
                report.problems.append(f"{path}: missing (the output for input {case.kus_path})")
            continue
        report.found += 1
        problems = []
        if case.location.task == UNKNOWN:
            problems.append(f"{path}: no Task* folder in its path; the graders look for OUT/<Task>/MultiCoil/...")
        elif relative.parts[0] != case.location.task:
            problems.append(f"{path}: the task folder {case.location.task} is not at the top of the output (nothing may wrap it)")
        other = OutputMode.FULL if output_mode is OutputMode.RANKING else OutputMode.RANKING
        try:
            image = image_shape(case)
        except (MatFileError, ValueError) as exc:
            problems.append(f"{case.kus_path}: cannot tell the expected output shape ({exc})")
        else:
            shape, other_shape = (output_shape(case.stem, image, mode) for mode in (output_mode, other))
            found = check_output(path, shape, (other, other_shape))
            report.other_mode += any(p.endswith(_OTHER_MODE.format(other.value)) for p in found)
            problems += found
        report.problems += problems
        report.valid += not problems
    return report


def format_submission_report(report: ValidationReport) -> str:
    """The human-readable report: a header, the counts, every problem, a verdict line."""
    lines = [
        f"submission {report.out_root} for input {report.input_root} (output mode {report.output_mode.value})",
        f"  {report.expected} outputs expected, {report.found} found, {report.valid} valid, "
        f"{report.missing} missing, {report.unexpected} unexpected files",
    ]
    lines += [f"PROBLEM {problem}" for problem in report.problems]
    if report.other_mode and report.output_mode is OutputMode.RANKING:
        lines.append(f"HINT: {report.other_mode} outputs are full volumes; the validation zip needs ranking outputs "
                     "(genre predict --output-mode ranking)")
    elif report.other_mode:
        lines.append(f"HINT: {report.other_mode} outputs are ranking crops; full mode needs whole volumes "
                     "(genre predict --output-mode full), or check them with --output-mode ranking")
    if report.ok:
        lines.append("OK: every output is present and valid, and nothing else is there")
    else:
        lines.append(f"INVALID: {len(report.problems)} problem(s)")
    return "\n".join(lines)
