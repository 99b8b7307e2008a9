"""Score prediction trees against a ground-truth tree, file by file.

The expected files are every ``*_kus_*.mat`` of the ground-truth tree (``find_cases`` on a
validation-like root holding ``UnderSample_<T>``, ``Mask_<T>`` and ``FullSample_<T>``); the
prediction for a case is ``case.output_path(pred_root)``, the path ``genre predict`` writes.
A file without a prediction is *missing*; one that cannot be read or scored (unreadable, shape
mismatch, non-finite values, no ground truth, a 2-D array under the validation scorer) is an
*error*. Both score 0 in the leaderboard aggregation (:mod:`genre.evaluation.aggregate`). Arrays
are compared in MATLAB order as the chosen scorer (:class:`~genre.evaluation.metrics.Grader`)
loads and compares them.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import h5py
import numpy as np
from tqdm import tqdm
from tqdm.contrib.logging import logging_redirect_tqdm

from genre.evaluation.metrics import VALIDATION_2D, Grader, ScoreError, ShapeMismatch, VolumeScore, score_pair
from genre.evaluation.reference import GroundTruthError, read_img4ranking, reference_image
from genre.data.cmrx import Case, find_cases
from genre.data.contract import OutputMode
from genre.data.matio import MatFileError

log = logging.getLogger(__name__)

OK, MISSING, ERROR = "ok", "missing", "error"


class EvaluationError(ValueError):
    """Arguments that cannot be evaluated at all (no ground-truth cases, no prediction folder)."""


@dataclass(frozen=True)
class FileResult:
    """One expected file: its status, a one-line message, and its scores when ``status`` is ok."""

    case: Case
    status: str  # OK, MISSING or ERROR
    message: str = ""
    leaderboard: VolumeScore | None = None  # the scorer's argument order
    symmetric: VolumeScore | None = None  # ground truth always the reference

    @property
    def ok(self) -> bool:
        return self.status == OK


@dataclass(frozen=True)
class TreeResult:
    """Every expected file of one prediction tree, in the ground-truth tree's order."""

    pred_root: Path
    gt_root: Path
    mode: OutputMode
    files: tuple[FileResult, ...]
    grader: Grader = Grader.VALIDATION

    def count(self, status: str) -> int:
        return sum(f.status == status for f in self.files)

    @property
    def complete(self) -> bool:
        """Whether every expected file was scored."""
        return all(f.ok for f in self.files)


def expected_cases(gt_root: os.PathLike | str) -> list[Case]:
    """The files a submission must hold. Raises :class:`EvaluationError` when there are none."""
    gt_root = Path(gt_root)
    if not gt_root.is_dir():
        raise EvaluationError(f"{gt_root}: ground-truth folder not found")
    try:
        cases = find_cases(gt_root)
    except ValueError as exc:  # two files with one output path
        raise EvaluationError(str(exc)) from None
    if not cases:
        raise EvaluationError(f"{gt_root}: no undersampled files (*_kus_*.mat) below it, so nothing is expected")
    return cases


def read_prediction(path: Path, grader: Grader) -> np.ndarray:
    """The ``img4ranking`` of ``path`` as ``grader`` loads it. Raises ``MatFileError``.

    Both scorers read MAT v5 with scipy (MATLAB order). A v7.3 (HDF5) file they read with h5py,
    whose order is MATLAB's reversed: the test scorer transposes it back, the validation scorer
    does not, so there its shape no longer matches the ground truth's.
    """
    pred = read_img4ranking(path)
    if grader is Grader.VALIDATION and h5py.is_hdf5(path):
        return np.ascontiguousarray(pred.T)
    return pred


def score_file(case: Case, gt: np.ndarray, path: Path, mode: OutputMode, grader: Grader = Grader.VALIDATION) -> FileResult:
    """Read and score the prediction at ``path`` against its ground truth (MATLAB order) as ``grader`` does."""
    try:
        pred = read_prediction(path, grader)
        leaderboard, symmetric = score_pair(gt, pred, grader)
    except ShapeMismatch as exc:
        return FileResult(case, ERROR, f"{path}: {exc}; {_mismatch_hint(gt, pred, path, mode, grader)}")
    except ScoreError as exc:
        return FileResult(case, ERROR, f"{path}: {exc}")
    except MatFileError as exc:
        return FileResult(case, ERROR, str(exc))
    message = ""
    if grader is Grader.VALIDATION and gt.ndim == 2:
        message = f"{path}: {VALIDATION_2D}"
    elif pred.shape != gt.shape:
        # Only the test scorer gets here with different shapes: it squeezes both arrays.
        message = f"{path}: shapes differ in singleton dims only (ground truth {gt.shape}, prediction {pred.shape}); the validation scorer would reject it"
    return FileResult(case, OK, message, leaderboard, symmetric)


def _mismatch_hint(gt: np.ndarray, pred: np.ndarray, path: Path, mode: OutputMode, grader: Grader) -> str:
    """The likely cause of a shape mismatch, for its message."""
    if grader is Grader.VALIDATION and h5py.is_hdf5(path):
        return "the prediction is a MAT v7.3 (HDF5) file, which the validation scorer reads with its dimensions reversed (as shown): write MAT v5"
    if np.squeeze(gt).shape == np.squeeze(pred).shape:
        return "the test scorer squeezes both and would score it, see --grader"
    return f"ground truth in {mode.value} mode, see --output-mode"


def evaluate_methods(
    pred_roots: Mapping[str, os.PathLike | str],
    gt_root: os.PathLike | str,
    mode: OutputMode = OutputMode.FULL,
    progress: bool = True,
    grader: Grader = Grader.VALIDATION,
) -> dict[str, TreeResult]:
    """Score several prediction trees ``{method name: root}`` against one ground truth.

    Each reference image is built once and compared with every method's file as ``grader``
    compares them. ``mode`` is the reduction of ground truth built from k-space (ignored for
    ``img4ranking`` ground truth). Raises :class:`EvaluationError` for a missing prediction
    folder or an empty ground truth.
    """
    roots = {name: Path(root) for name, root in pred_roots.items()}
    for name, root in roots.items():
        if not root.is_dir():
            raise EvaluationError(f"{root}: prediction folder of {name!r} not found")
    cases = expected_cases(gt_root)
    files: dict[str, list[FileResult]] = {name: [] for name in roots}
    with logging_redirect_tqdm():
        # disable=None: a bar on a terminal, nothing in logs and pipes.
        for case in tqdm(cases, desc="evaluate", unit="file", disable=None if progress else True):
            for name, result in _score_case(case, roots, Path(gt_root), mode, grader).items():
                if result.message:
                    log.warning("%s%s", f"[{name}] " if len(roots) > 1 else "", result.message)
                files[name].append(result)
    return {name: TreeResult(roots[name], Path(gt_root), mode, tuple(files[name]), grader) for name in roots}


def _score_case(case: Case, roots: dict[str, Path], gt_root: Path, mode: OutputMode, grader: Grader) -> dict[str, FileResult]:
    paths = {name: case.output_path(root) for name, root in roots.items()}
    gt, gt_problem = None, ""
    if any(path.is_file() for path in paths.values()):  # else the reference need not be built
        try:
            gt = reference_image(case, gt_root, mode)
        except (MatFileError, GroundTruthError) as exc:
            gt_problem = f"ground truth: {exc}"
    results = {}
    for name, path in paths.items():
        if not path.is_file():
            results[name] = FileResult(case, MISSING, f"{path}: no prediction")
        elif gt is None:
            results[name] = FileResult(case, ERROR, gt_problem)
        else:
            results[name] = score_file(case, gt, path, mode, grader)
    return results


def evaluate_tree(
    pred_root: os.PathLike | str,
    gt_root: os.PathLike | str,
    mode: OutputMode = OutputMode.FULL,
    progress: bool = True,
    grader: Grader = Grader.VALIDATION,
) -> TreeResult:
    """Score one prediction tree; see :func:`evaluate_methods`."""
    return evaluate_methods({"prediction": pred_root}, gt_root, mode, progress, grader)["prediction"]
