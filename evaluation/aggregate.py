"""From per-file scores to the numbers people read: plain breakdowns and the leaderboard score.

Leaderboard (the organizers' test scorer): files are grouped per task, TaskR1 by (centre,
vendor), the other tasks by disease. Disease labels are not public, so locally those tasks are
grouped by patient. With ``N`` expected and ``n`` validly scored files in a group::

    PSNR_adj = sum(valid PSNR) / N        SSIM_adj = sum(valid SSIM) / N
    NMSE_adj = mean(valid NMSE) * (2 - n / N)

so missing and failed files count as 0; the task score is the unweighted mean over groups.
Details kept from the grader's pandas code: NaN file scores are skipped in sums and means (yet
count as valid), an inf PSNR (a perfect image) makes the sums inf, and a group without any
valid file is left out of the mean over groups rather than counted as 0 (its ``groupby`` runs
over valid files only; the report says how many were left out).

When no group of a task has a valid file (every file missing or failed), the task scores SSIM 0
and PSNR 0, not NaN: nothing was scored. Its NMSE stays NaN (printed ``-``): the adjusted NMSE
has no valid file to average, and 0 would read as a perfect one. The organizers' test scorer
stops there with ``ZeroDivisionError`` (its mean over groups divides by the number of groups
with a valid file). The validation scorer computes the same adjusted means per group but no
mean over groups, and lists no values for a group without a valid file. Where the two scorers
differ is how each file is scored (:class:`~genre.evaluation.metrics.Grader`), not here.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass

import numpy as np

from genre.evaluation.evaluate import FileResult
from genre.evaluation.metrics import VolumeScore
from genre.data.cmrx import Case

TASK_R1 = "TaskR1"


@dataclass(frozen=True)
class Metrics:
    ssim: float
    psnr: float
    nmse: float


#: The adjusted means of a group, or the score of a task, without any valid file.
NOTHING_SCORED = Metrics(0.0, 0.0, float("nan"))


@dataclass(frozen=True)
class Row:
    """Plain means over the scored files of one breakdown key."""

    key: str
    expected: int
    scored: int
    leaderboard: Metrics
    symmetric: Metrics


@dataclass(frozen=True)
class GroupScore:
    """The adjusted means of one leaderboard group."""

    key: str
    expected: int
    valid: int
    leaderboard: Metrics
    symmetric: Metrics


@dataclass(frozen=True)
class TaskScore:
    """A task's leaderboard score: the mean of its groups' adjusted means."""

    task: str
    grouped_by: str
    groups: tuple[GroupScore, ...]
    leaderboard: Metrics
    symmetric: Metrics

    @property
    def empty_groups(self) -> int:
        """Groups without any valid file, which the grader leaves out of the mean."""
        return sum(g.valid == 0 for g in self.groups)


#: Breakdown name -> key of a case; the order is the report's.
BREAKDOWNS: dict[str, Callable[[Case], str]] = {
    "task": lambda c: c.location.task,
    "modality": lambda c: c.location.modality,
    "stem": lambda c: c.stem,
    "pattern": lambda c: c.pattern,
    "acceleration": lambda c: str(c.acceleration),
    "centre/vendor": lambda c: c.location.domain,
}


def sort_key(key: str) -> tuple[int, int, str]:
    """Numbers in numeric order (8 before 16), then text regardless of case."""
    return (0, int(key), "") if key.isdigit() else (1, 0, key.lower())


def _nan_quiet(function, values: Sequence[float]) -> float:
    if len(values) == 0:
        return float("nan")
    with warnings.catch_warnings(), np.errstate(invalid="ignore"):
        warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN slices: NaN is the answer
        return float(function(np.asarray(values, dtype=np.float64)))


def nanmean(values: Sequence[float]) -> float:
    """Mean skipping NaN, as pandas does; NaN when nothing is left, inf kept."""
    return _nan_quiet(np.nanmean, values)


def _scores(files: Iterable[FileResult], symmetric: bool) -> list[VolumeScore]:
    return [f.symmetric if symmetric else f.leaderboard for f in files if f.ok]


def plain_means(files: Sequence[FileResult], symmetric: bool = False) -> Metrics:
    """Mean SSIM, PSNR and NMSE over the scored files (NaN skipped)."""
    scores = _scores(files, symmetric)
    return Metrics(
        nanmean([s.ssim for s in scores]),
        nanmean([s.psnr for s in scores]),
        nanmean([s.nmse for s in scores]),
    )


def breakdown(files: Sequence[FileResult], key: Callable[[Case], str]) -> list[Row]:
    """One :class:`Row` per key value, sorted (numbers numerically)."""
    groups: dict[str, list[FileResult]] = {}
    for f in files:
        groups.setdefault(key(f.case), []).append(f)
    return [
        Row(k, len(g), sum(f.ok for f in g), plain_means(g), plain_means(g, symmetric=True))
        for k, g in sorted(groups.items(), key=lambda item: sort_key(item[0]))
    ]


def adjusted_means(files: Sequence[FileResult], symmetric: bool = False) -> Metrics:
    """The grader's adjusted means of one group; every file in ``files`` is expected."""
    expected = len(files)
    scores = _scores(files, symmetric)
    if not scores:
        return NOTHING_SCORED
    return Metrics(
        _nan_quiet(np.nansum, [s.ssim for s in scores]) / expected,
        _nan_quiet(np.nansum, [s.psnr for s in scores]) / expected,
        nanmean([s.nmse for s in scores]) * (2 - len(scores) / expected),
    )


def leaderboard_group(case: Case) -> str:
    """The group a file counts in: (centre, vendor) for TaskR1, else the patient."""
    loc = case.location
    if loc.task == TASK_R1:
        return loc.domain
    return f"{loc.domain}/{loc.patient}"


def _mean_of_groups(groups: Sequence[GroupScore], symmetric: bool) -> Metrics:
    counted = [(g.symmetric if symmetric else g.leaderboard) for g in groups if g.valid]
    if not counted:
        return NOTHING_SCORED
    # A plain mean, as the grader's sum()/len(): a NaN group makes the task NaN.
    return Metrics(*(float(np.mean([getattr(m, name) for m in counted])) for name in ("ssim", "psnr", "nmse")))


def task_scores(files: Sequence[FileResult]) -> list[TaskScore]:
    """The group-adjusted leaderboard score of every task present, sorted by task."""
    by_task: dict[str, list[FileResult]] = {}
    for f in files:
        by_task.setdefault(f.case.location.task, []).append(f)
    scores = []
    for task, task_files in sorted(by_task.items()):
        grouped: dict[str, list[FileResult]] = {}
        for f in task_files:
            grouped.setdefault(leaderboard_group(f.case), []).append(f)
        groups = tuple(
            GroupScore(key, len(g), sum(f.ok for f in g), adjusted_means(g), adjusted_means(g, symmetric=True))
            for key, g in sorted(grouped.items())
        )
        scores.append(
            TaskScore(
                task,
                "centre/vendor" if task == TASK_R1 else "patient",
                groups,
                _mean_of_groups(groups, symmetric=False),
                _mean_of_groups(groups, symmetric=True),
            )
        )
    return scores
