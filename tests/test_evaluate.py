"""genre evaluate end to end: ground truth, prediction trees, CSV reports, exit codes, panels."""

import csv
import logging
import math
import shutil

import numpy as np
import pytest
import scipy.io
import torch
from conftest import write_case

from genre.evaluation.evaluate import ERROR, MISSING, OK, evaluate_methods, evaluate_tree
from genre.evaluation.reference import reference_image
from genre.evaluation.report import PER_FILE_COLUMNS, format_comparison, format_comparison_markdown, write_panel
from genre.cli import main
from genre.data.cmrx import find_cases, fullsample_path, kspace_layout
from genre.data.contract import OutputMode, reduce_image
from genre.data.matio import MatArray, write_img4ranking
from genre.kspace import rss_from_kspace

# (task, stem, modality, frames, slices, timed, ny, nx, pattern, acc, centre, vendor, patient)
SERIES = [
    ("TaskR1", "cine_sax", "Cine", 4, 3, True, 21, 24, "Uniform", 4, "Center001", "Siemens_30T_CIMA.X", "P001"),
    ("TaskR1", "cine_lax_4ch", "Cine", 4, 1, True, 21, 24, "ktGaussian", 8, "Center002", "UIH_15T_umr670", "P002"),
    # ny = 201: MATLAB rounds the ranking crop 100.5 up to 101, Python's round would give 100
    ("TaskR2", "T1w", "T1w", 1, 3, False, 201, 21, "Uniform", 4, "Center001", "Siemens_30T_CIMA.X", "P003"),
    ("TaskR2", "T1map", "Mapping", 3, 1, True, 21, 24, "ktRadial", 8, "Center001", "Siemens_30T_CIMA.X", "P004"),
]
RANKING_SHAPES = {"cine_sax": (8, 11, 2, 3), "cine_lax_4ch": (8, 11, 1, 3), "T1w": (7, 101, 2), "T1map": (8, 11, 1, 3)}


@pytest.fixture(scope="module")
def tree(tmp_path_factory):
    root = tmp_path_factory.mktemp("eval") / "val"
    for i, (task, stem, modality, frames, slices, timed, ny, nx, pattern, acc, centre, vendor, patient) in enumerate(SERIES):
        write_case(root, stem, modality, frames, slices, timed, ny=ny, nx=nx, coils=2, pattern=pattern, acc=acc,
                   centre=centre, vendor=vendor, patient=patient, task=task, seed=i)  # fmt: skip
    return root


def _gt(case, root, mode):
    """The reference computed independently: whole k-space, RSS, contract reduction."""
    with MatArray(fullsample_path(case, root), ["kspace"]) as f:
        k = f.complex64()
    k = k.reshape(kspace_layout(case.stem, k.shape))
    return reduce_image(rss_from_kspace(torch.from_numpy(k)).numpy(), case.stem, mode)


def _predict(gt_root, out, mode, noise=0.0, skip=()):
    rng = np.random.default_rng(7)
    for case in find_cases(gt_root):
        if case.stem in skip:
            continue
        image = _gt(case, gt_root, mode)
        image = np.abs(image + noise * image.max() * rng.standard_normal(image.shape))
        write_img4ranking(case.output_path(out), image)
    return out


def _rows(path):
    with open(path, newline="") as handle:
        reader = csv.DictReader(handle)
        return reader.fieldnames, {row["stem"]: row for row in reader}


@pytest.mark.parametrize("mode", list(OutputMode))
def test_reference_images_follow_the_contract(tree, mode):
    for case in find_cases(tree):
        image = reference_image(case, tree, mode)
        expected = _gt(case, tree, mode)
        assert image.dtype == np.float32
        np.testing.assert_allclose(image, expected, rtol=1e-5, atol=1e-6 * expected.max())
        if mode is OutputMode.RANKING:
            assert image.shape == RANKING_SHAPES[case.stem]
    t1w = next(c for c in find_cases(tree) if c.stem == "T1w")
    if mode is OutputMode.FULL:
        assert reference_image(t1w, tree, mode).shape == (21, 201, 3)


def test_missing_file_is_counted_and_exits_1(tree, tmp_path, capsys):
    pred = _predict(tree, tmp_path / "pred", OutputMode.RANKING, noise=0.05, skip=("T1map",))
    case = next(c for c in find_cases(tree) if c.stem == "cine_sax")
    write_img4ranking(case.output_path(pred), _gt(case, tree, OutputMode.RANKING))  # an exact file
    out = tmp_path / "report"
    assert main(["evaluate", "--pred", str(pred), "--gt", str(tree), "--output-mode", "ranking", "--out", str(out)]) == 1

    columns, rows = _rows(out / "per_file.csv")
    assert tuple(columns) == PER_FILE_COLUMNS
    assert len(rows) == len(SERIES)
    assert rows["T1map"]["status"] == MISSING and rows["T1map"]["ssim"] == ""
    assert "no prediction" in rows["T1map"]["message"]
    exact = rows["cine_sax"]
    assert exact["status"] == OK and float(exact["ssim"]) == pytest.approx(1.0) and exact["psnr"] == "inf"
    assert (exact["task"], exact["centre"], exact["vendor"], exact["patient"]) == ("TaskR1", "Center001", "Siemens_30T_CIMA.X", "P001")
    assert (exact["pattern"], exact["acceleration"], exact["images"]) == ("Uniform", "4", "6")
    noisy = rows["T1w"]
    assert noisy["status"] == OK and 0.2 < float(noisy["ssim"]) < 0.999 and float(noisy["psnr_sym"]) < 60

    with open(out / "summary.csv", newline="") as handle:
        summary = list(csv.DictReader(handle))
    means = {r["section"]: r for r in summary if r["key"] == "mean of groups"}
    r2 = means["leaderboard TaskR2 by patient"]
    assert (r2["files_expected"], r2["files_scored"]) == ("2", "1")
    # P004's only file is missing: its group is left out, so the task mean is P003's adjusted mean
    assert float(r2["ssim"]) == pytest.approx(float(noisy["ssim"]))
    assert math.isinf(float(means["leaderboard TaskR1 by centre/vendor"]["psnr"]))

    printed = capsys.readouterr().out
    assert "4 files expected: 3 scored, 1 missing, 0 failed" in printed
    assert "inf" in printed and "TaskR2" in printed and "centre/vendor" in printed


def test_complete_predictions_exit_0_and_reports_go_beside_the_tree(tree, tmp_path):
    pred = _predict(tree, tmp_path / "zf", OutputMode.FULL, noise=0.02)
    before = sorted(pred.rglob("*"))
    assert main(["evaluate", "--pred", str(pred), "--gt", str(tree)]) == 0
    assert (tmp_path / "zf-eval" / "per_file.csv").is_file() and (tmp_path / "zf-eval" / "summary.csv").is_file()
    assert sorted(pred.rglob("*")) == before


def test_predictions_in_the_other_mode_fail_with_a_hint(tree, tmp_path, caplog):
    pred = _predict(tree, tmp_path / "pred", OutputMode.FULL)
    with caplog.at_level(logging.WARNING):
        assert main(["evaluate", "--pred", str(pred), "--gt", str(tree), "--output-mode", "ranking", "--out", str(tmp_path / "r")]) == 1
    _, rows = _rows(tmp_path / "r" / "per_file.csv")
    assert {r["status"] for r in rows.values()} == {ERROR}
    assert all("shape mismatch" in r["message"] and "--output-mode" in r["message"] for r in rows.values())
    assert "shape mismatch" in caplog.text


def test_unreadable_non_finite_and_squeezed_predictions(tree, tmp_path):
    pred = _predict(tree, tmp_path / "pred", OutputMode.RANKING)
    cases = {c.stem: c for c in find_cases(tree)}
    bad = _gt(cases["cine_sax"], tree, OutputMode.RANKING)
    bad[0, 0, 0, 0] = np.nan
    scipy.io.savemat(cases["cine_sax"].output_path(pred), {"img4ranking": bad})  # write_img4ranking refuses NaN
    cases["T1w"].output_path(pred).write_bytes(b"not a MAT file")
    squeezed = _gt(cases["cine_lax_4ch"], tree, OutputMode.RANKING)[:, :, 0]  # (8, 11, 3) for (8, 11, 1, 3)
    write_img4ranking(cases["cine_lax_4ch"].output_path(pred), squeezed)
    result = evaluate_tree(pred, tree, OutputMode.RANKING, progress=False)
    by_stem = {f.case.stem: f for f in result.files}
    assert by_stem["cine_sax"].status == ERROR and "non-finite" in by_stem["cine_sax"].message
    assert by_stem["T1w"].status == ERROR and str(cases["T1w"].output_path(pred)) in by_stem["T1w"].message
    # the test grader squeezes, so it scores; the validation scorer would not: said in the message
    assert by_stem["cine_lax_4ch"].status == OK and "validation scorer would reject" in by_stem["cine_lax_4ch"].message
    assert result.count(OK) == 2 and not result.complete


def test_missing_ground_truth_is_a_failed_file(tree, tmp_path):
    gt = tmp_path / "gt"
    shutil.copytree(tree, gt)
    case = next(c for c in find_cases(gt) if c.stem == "T1w")
    fullsample_path(case, gt).unlink()
    pred = _predict(tree, tmp_path / "pred", OutputMode.RANKING)
    result = evaluate_tree(pred, gt, OutputMode.RANKING, progress=False)
    (failed,) = [f for f in result.files if not f.ok]
    assert failed.case.stem == "T1w" and failed.message.startswith("ground truth:") and "no ground truth" in failed.message


def test_image_ground_truth_is_used_as_is(tree, tmp_path):
    pred = _predict(tree, tmp_path / "pred", OutputMode.RANKING)
    # a tree of GT img4ranking files mirroring the submission: --output-mode does not apply
    result = evaluate_tree(pred, pred, OutputMode.FULL, progress=False)
    assert result.complete and all(f.symmetric.ssim == pytest.approx(1.0) for f in result.files)
    # the organizers' layout: img4ranking in FullSample_<T>/.../<stem>.mat beside the kus files
    gt = tmp_path / "gt"
    for case in find_cases(tree):
        target = gt / case.relative
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(case.kus_path, target)
        write_img4ranking(fullsample_path(case, gt), _gt(case, tree, OutputMode.RANKING))
    result = evaluate_tree(pred, gt, OutputMode.FULL, progress=False)
    assert result.complete and all(math.isinf(f.leaderboard.psnr) for f in result.files)


def test_unusable_arguments_exit_2(tree, tmp_path, caplog):
    pred = _predict(tree, tmp_path / "pred", OutputMode.FULL)
    (tmp_path / "empty").mkdir()
    with caplog.at_level(logging.ERROR):
        assert main(["evaluate", "--pred", str(pred), "--gt", str(tmp_path / "nowhere")]) == 2
        assert "ground-truth folder not found" in caplog.text
        assert main(["evaluate", "--pred", str(pred), "--gt", str(tmp_path / "empty")]) == 2
        assert "no undersampled files" in caplog.text
        assert main(["evaluate", "--pred", str(tmp_path / "nopred"), "--gt", str(tree)]) == 2
        assert "prediction folder" in caplog.text
        assert main(["evaluate", "--pred", str(pred), "--gt", str(tree), "--out", str(pred / "eval")]) == 2
        assert "inside the prediction tree" in caplog.text
        (tmp_path / "a_file").write_text("")
        assert main(["evaluate", "--pred", str(pred), "--gt", str(tree), "--out", str(tmp_path / "a_file" / "eval")]) == 2
        assert "cannot write the reports" in caplog.text
    assert not (pred / "eval").exists()


def test_methods_side_by_side(tree, tmp_path):
    exact = _predict(tree, tmp_path / "exact", OutputMode.RANKING)
    noisy = _predict(tree, tmp_path / "noisy", OutputMode.RANKING, noise=0.1, skip=("T1w",))
    results = evaluate_methods({"exact": exact, "noisy": noisy}, tree, OutputMode.RANKING, progress=False)
    assert results["exact"].complete and results["noisy"].count(MISSING) == 1
    table = format_comparison(results)
    lines = table.splitlines()
    assert "exact" in lines[1] and "noisy" in lines[1]
    rows = {line.split()[0] + line.split()[1]: line for line in lines[3:] if line.split()[0] in ("Uniform", "ktGaussian", "ktRadial")}
    assert set(rows) == {"Uniform4", "ktGaussian8", "ktRadial8"}
    assert "1.0000" in rows["Uniform4"] and "inf" in rows["Uniform4"]
    assert any(line.startswith("all ") for line in lines)
    assert "noisy: 1 missing and 0 failed" in table
    assert "sym" in format_comparison(results, symmetric=True).splitlines()[0]


def test_methods_side_by_side_in_markdown_with_the_best_in_bold(tree, tmp_path):
    exact = _predict(tree, tmp_path / "exact", OutputMode.RANKING)
    noisy = _predict(tree, tmp_path / "noisy", OutputMode.RANKING, noise=0.1, skip=("T1w",))
    results = evaluate_methods({"noisy": noisy, "exact": exact}, tree, OutputMode.RANKING, progress=False)
    text = format_comparison_markdown(results, split=lambda case: "seen" if case.stem != "T1w" else "unseen")
    tables = text.split("**")[1::2]
    assert [t for t in tables if t.isupper()] == ["SSIM", "PSNR", "NMSE"]
    lines = [line for line in text.splitlines() if line.startswith("| ")]
    assert lines[0] == "| domains | pattern | R | files | noisy | exact |"
    body = [line.split(" | ") for line in lines if line.startswith(("| seen", "| unseen"))]
    assert len(body) == 3 * len(format_comparison(results, split=lambda c: "seen" if c.stem != "T1w" else "unseen").splitlines()[3:-1])
    for cells in body:  # exact is best on every row of every metric (NMSE 0 is the smallest)
        assert cells[-1].rstrip(" |").startswith("**") and not cells[-2].startswith("**"), cells
    assert "noisy: 1 missing and 0 failed" in text


def test_write_panel(tmp_path):
    rng = np.random.default_rng(0)
    gt = rng.random((24, 21))
    path = write_panel(tmp_path / "fig" / "panel.png", gt, {"zero-filled": gt + 0.2 * rng.random(gt.shape), "exact": gt}, "cine_sax R8")
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    with pytest.raises(ValueError, match="shape"):
        write_panel(tmp_path / "bad.png", gt, {"wrong": gt.T})


def test_compare_splits_seen_and_unseen(tmp_path, capsys):
    from genre.cli import main

    root = tmp_path / "gt"
    write_case(root, "cine_sax", "Cine", 3, 2, True, vendor="Siemens_30T_Vida", seed=1)
    write_case(root, "cine_sax", "Cine", 3, 2, True, centre="Center006", vendor="UIH_50T_umr_jupiter", seed=2)
    preds = []
    for method in ("zero-filled", "sense"):
        preds.append(tmp_path / method)
        assert main(["predict", "--input", str(root), "--output", str(preds[-1]), "--method", method]) == 0
    capsys.readouterr()
    args = ["compare", "--gt", str(root), "--pred", *map(str, preds), "--out", str(tmp_path / "cmp")]
    assert main(args + ["--unseen", "Center006/UIH_50T_umr_jupiter"]) == 0
    table = capsys.readouterr().out
    assert "zero-filled" in table and "sense" in table
    rows = [line.split() for line in table.splitlines()]
    assert ["seen", "all", "1"] in [r[:3] for r in rows] and ["unseen", "all", "1"] == rows[-1][:3]
    assert (tmp_path / "cmp" / "sense" / "per_file.csv").is_file()
    markdown = (tmp_path / "cmp" / "comparison.md").read_text()
    assert "| domains | pattern | R | files | zero-filled | sense |" in markdown and "| unseen | all |  | 1 |" in markdown
    assert main(args + ["--unseen", "Center009/Nobody"]) == 2
