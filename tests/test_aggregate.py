"""Leaderboard aggregation (genre.evaluation.aggregate): group-adjusted means and the graders' rules, by hand."""

import math
from pathlib import Path

import pytest

from genre.data.cmrx import parse_case
from genre.data.contract import OutputMode
from genre.evaluation.aggregate import adjusted_means, breakdown, leaderboard_group, nanmean, task_scores
from genre.evaluation.evaluate import ERROR, MISSING, OK, FileResult, TreeResult
from genre.evaluation.metrics import VolumeScore
from genre.evaluation.report import format_tree_report


ROOT = Path("/data")


def _result(rel: str, status: str, psnr=0.0, ssim=0.0, nmse=0.0) -> FileResult:
    case = parse_case(ROOT / rel, ROOT)
    score = VolumeScore(psnr, ssim, nmse, 1) if status == OK else None
    return FileResult(case, status, "" if status == OK else "why", score, score)


def _path(task, centre, vendor, patient, name, modality="Cine"):
    return f"{task}/MultiCoil/{modality}/ValidationSet/UnderSample_{task}/{centre}/{vendor}/{patient}/{name}"


def test_group_adjusted_means_with_a_missing_file():
    files = [
        # TaskR1, group Center001/A: three expected, one missing
        _result(_path("TaskR1", "Center001", "A", "P001", "cine_sax_kus_Uniform8.mat"), OK, 30.0, 0.9, 0.02),
        _result(_path("TaskR1", "Center001", "A", "P001", "cine_lax_kus_Uniform8.mat"), OK, 20.0, 0.6, 0.04),
        _result(_path("TaskR1", "Center001", "A", "P002", "cine_sax_kus_Uniform8.mat"), MISSING),
        # TaskR1, group Center002/B: one file, scored
        _result(_path("TaskR1", "Center002", "B", "P003", "cine_sax_kus_ktRadial16.mat"), OK, 40.0, 0.8, 0.01),
    ]
    a = adjusted_means(files[:3])
    assert a.psnr == pytest.approx((30 + 20) / 3)
    assert a.ssim == pytest.approx((0.9 + 0.6) / 3)
    assert a.nmse == pytest.approx(0.03 * (2 - 2 / 3))
    (task,) = task_scores(files)
    assert task.task == "TaskR1" and task.grouped_by == "centre/vendor"
    assert [g.key for g in task.groups] == ["Center001/A", "Center002/B"]
    assert [(g.expected, g.valid) for g in task.groups] == [(3, 2), (1, 1)]
    assert task.leaderboard.psnr == pytest.approx(((30 + 20) / 3 + 40) / 2)
    assert task.leaderboard.ssim == pytest.approx(((0.9 + 0.6) / 3 + 0.8) / 2)
    assert task.leaderboard.nmse == pytest.approx((0.03 * (4 / 3) + 0.01) / 2)


def test_other_tasks_group_by_patient_and_drop_groups_without_valid_files():
    files = [
        _result(_path("TaskR2", "Center001", "A", "P001", "T1w_kus_Uniform8.mat", "T1w"), OK, 30.0, 0.9, 0.02),
        _result(_path("TaskR2", "Center001", "A", "P001", "T2w_kus_Uniform8.mat", "T2w"), ERROR),
        _result(_path("TaskR2", "Center001", "A", "P002", "T1w_kus_Uniform8.mat", "T1w"), MISSING),
    ]
    assert leaderboard_group(files[0].case) == "Center001/A/P001"
    (task,) = task_scores(files)
    assert task.grouped_by == "patient" and task.empty_groups == 1
    # P002 has no valid file: left out of the mean of groups, as the grader's groupby does
    assert task.leaderboard.ssim == pytest.approx(0.9 / 2)
    assert task.leaderboard.nmse == pytest.approx(0.02 * 1.5)


def test_inf_psnr_and_nan_follow_the_graders_pandas_rules():
    files = [
        _result(_path("TaskR1", "Center001", "A", "P001", "cine_sax_kus_Uniform8.mat"), OK, math.inf, 1.0, 0.0),
        _result(_path("TaskR1", "Center001", "A", "P001", "cine_lax_kus_Uniform8.mat"), OK, math.nan, 0.5, 0.1),
    ]
    (task,) = task_scores(files)
    assert math.isinf(task.leaderboard.psnr)  # a perfect file makes the sum inf
    assert task.leaderboard.ssim == pytest.approx(0.75)
    assert nanmean([math.nan, 2.0]) == 2.0 and math.isnan(nanmean([]))
    (row,) = breakdown(files, lambda c: c.pattern)
    assert (row.key, row.expected, row.scored) == ("Uniform", 2, 2)
    assert math.isinf(row.leaderboard.psnr) and row.leaderboard.nmse == pytest.approx(0.05)


def test_a_task_without_any_valid_file_scores_0_not_nan():
    files = [
        _result(_path("TaskR1", "Center001", "A", "P001", "cine_sax_kus_Uniform8.mat"), MISSING),
        _result(_path("TaskR1", "Center002", "B", "P002", "cine_sax_kus_Uniform8.mat"), ERROR),
    ]
    (task,) = task_scores(files)
    assert task.empty_groups == len(task.groups) == 2
    for metrics in (task.leaderboard, task.symmetric):
        assert (metrics.ssim, metrics.psnr) == (0.0, 0.0)
        assert math.isnan(metrics.nmse)  # nothing to average; 0 would be a perfect NMSE
    text = format_tree_report(TreeResult(ROOT / "pred", ROOT, OutputMode.FULL, tuple(files)))
    row = next(line for line in text.splitlines() if line.startswith("TaskR1 ") and "centre/vendor" in line)
    assert row.split()[3:6] == ["0.0000", "0.00", "-"]
    assert "no valid file in any group: SSIM and PSNR 0" in text and "ZeroDivisionError" in text
