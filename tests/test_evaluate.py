"""genre evaluate end to end: ground truth, prediction trees, CSV reports, exit codes, panels."""

import csv
import logging
import math
import re
import shutil
from pathlib import Path

import h5py
import numpy as np
import pytest
import scipy.io
import torch
from conftest import write_case
from skimage.metrics import peak_signal_noise_ratio, structural_similarity

from genre.evaluation.evaluate import ERROR, MISSING, OK, evaluate_methods, evaluate_tree
from genre.evaluation.metrics import Grader
from genre.evaluation.reference import reference_image
from genre.evaluation.report import PER_FILE_COLUMNS, format_comparison, format_comparison_markdown, write_panel
from genre.cli import main
from genre.data.cmrx import find_cases, fullsample_path, kspace_layout
from genre.data.contract import OutputMode, reduce_image
from genre.data.matio import MatArray, write_img4ranking, write_mat73
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
    results = {grader: evaluate_tree(pred, tree, OutputMode.RANKING, progress=False, grader=grader) for grader in Grader}
    for result in results.values():
        by_stem = {f.case.stem: f for f in result.files}
        assert by_stem["cine_sax"].status == ERROR and "non-finite" in by_stem["cine_sax"].message
        assert by_stem["T1w"].status == ERROR and str(cases["T1w"].output_path(pred)) in by_stem["T1w"].message
        assert not result.complete
    # the test scorer squeezes, so it scores; the validation scorer would not: said in the message
    lax = {grader: next(f for f in result.files if f.case.stem == "cine_lax_4ch") for grader, result in results.items()}
    assert lax[Grader.TEST].status == OK and "validation scorer would reject" in lax[Grader.TEST].message
    assert results[Grader.TEST].count(OK) == 2
    # the validation scorer compares the shapes as stored: a mismatch, whose message points at --grader
    assert lax[Grader.VALIDATION].status == ERROR and "does not squeeze" in lax[Grader.VALIDATION].message
    assert "--grader" in lax[Grader.VALIDATION].message and results[Grader.VALIDATION].count(OK) == 1


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


def test_evaluate_help_explains_every_flag_with_an_example(capsys):
    with pytest.raises(SystemExit):
        main(["evaluate", "--help"])
    text = capsys.readouterr().out
    usage = text.split("\n\n")[0]
    flags = set(re.findall(r"(--[a-z-]+)", usage)) - {"--help"}
    assert flags == {"--pred", "--gt", "--output-mode", "--grader", "--out"}
    examples = [line.strip() for line in text.splitlines() if line.strip().startswith("genre evaluate ")]
    flat = " ".join(text.split())
    for flag in flags:
        assert f"e.g. {flag}" in flat, flag  # in the flag's own help
        assert any(f"{flag} " in line for line in examples), flag  # and in a worked example
    for word in ("validation", "(x, y, 1, t)", "SUBMISSION as the reference", "squeezes", "IndexError"):
        assert word in flat


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
    # the scorer is the validation one unless --grader says otherwise; the tables and CSV name it
    assert "(validation scorer)" in table.splitlines()[0] and "(validation scorer" in markdown
    assert {row["grader"] for row in _rows(tmp_path / "cmp" / "sense" / "per_file.csv")[1].values()} == {"validation"}
    assert main(args + ["--grader", "test"]) == 0
    assert "(test scorer)" in capsys.readouterr().out.splitlines()[0]
    assert {row["grader"] for row in _rows(tmp_path / "cmp" / "sense" / "per_file.csv")[1].values()} == {"test"}


# --- Parity with the organizers' scorers -------------------------------------------------------
# A literal transcription of the validation scorer (CmrxRecon/CMRxRecon2025-snippets,
# evaluation-2025: Val_Score2025.py compute_metrics, Evaluation.py calmetric and its helpers,
# loadFun.loadmat's scipy path), kept line for line, independent of genre.evaluation. The test
# scorer (CMRx-evaluation-snippets, test-2025/Test_Score2025.py) differs in compute_metrics only
# by np.squeeze on both arrays; its calmetric's 3-D branch is this else branch line for line.


def _organizers_loadmat(filename):
    try:
        mat_file = scipy.io.loadmat(filename)
        dataset = mat_file["img4ranking"]
    except NotImplementedError:  # MAT v7.3: h5py's order, MATLAB's reversed, kept as it is
        with h5py.File(filename, "r") as f:
            dataset = f["img4ranking"][:]
    return dataset


def _organizers_nmse(gt, pred):
    return np.array(np.linalg.norm(gt - pred) ** 2 / np.linalg.norm(gt) ** 2)


def _organizers_psnr(gt, pred, maxval=None):
    if maxval is None:
        maxval = gt.max()
    return peak_signal_noise_ratio(gt, pred, data_range=maxval)


def _organizers_ssim(gt, pred, maxval=None):
    if maxval is None:
        maxval = gt.max()
    return structural_similarity(gt, pred, data_range=maxval)


def _organizers_normalize_percentile(array):
    data = np.abs(array)
    percentile99 = np.percentile(data, 99.5)
    if percentile99 == 0:
        return data
    data_normalize = data / percentile99
    return data_normalize


def _organizers_calmetric(pred_recon, gt_recon):
    if gt_recon.ndim == 4:
        psnr_array = np.zeros((gt_recon.shape[-2], gt_recon.shape[-1]))
        ssim_array = np.zeros((gt_recon.shape[-2], gt_recon.shape[-1]))
        nmse_array = np.zeros((gt_recon.shape[-2], gt_recon.shape[-1]))

        for i in range(gt_recon.shape[-2]):
            for j in range(gt_recon.shape[-1]):
                pred, gt = pred_recon[:, :, i, j], gt_recon[:, :, i, j]
                pred_normalized = _organizers_normalize_percentile(pred)
                gt_normalized = _organizers_normalize_percentile(gt)

                psnr_array[i, j] = _organizers_psnr(gt_normalized, pred_normalized)
                ssim_array[i, j] = _organizers_ssim(gt_normalized, pred_normalized)
                nmse_array[i, j] = _organizers_nmse(gt_normalized, pred_normalized)
    else:
        psnr_array = np.zeros((1, gt_recon.shape[-1]))
        ssim_array = np.zeros((1, gt_recon.shape[-1]))
        nmse_array = np.zeros((1, gt_recon.shape[-1]))

        for j in range(gt_recon.shape[-1]):
            pred, gt = pred_recon[:, :, j], gt_recon[:, :, j]

            pred_normalized = _organizers_normalize_percentile(pred)
            gt_normalized = _organizers_normalize_percentile(gt)

            psnr_array[0, j] = _organizers_psnr(pred_normalized, gt_normalized)
            ssim_array[0, j] = _organizers_ssim(pred_normalized, gt_normalized)
            nmse_array[0, j] = _organizers_nmse(pred_normalized, gt_normalized)

    return psnr_array, ssim_array, nmse_array


def _organizers_test_calmetric(pred_recon, gt_recon):
    """The test scorer's calmetric: its 4-D and 3-D branches are the ones above, plus this 2-D one."""
    if gt_recon.ndim == 2:
        pred, gt = pred_recon, gt_recon

        pred_normalized = _organizers_normalize_percentile(pred)
        gt_normalized = _organizers_normalize_percentile(gt)

        psnr_array = _organizers_psnr(pred_normalized, gt_normalized)
        ssim_array = _organizers_ssim(pred_normalized, gt_normalized)
        nmse_array = _organizers_nmse(pred_normalized, gt_normalized)
        return psnr_array, ssim_array, nmse_array
    return _organizers_calmetric(pred_recon, gt_recon)


def _organizers_compute_metrics(gt_file, recon_file, squeeze):
    """Val_Score2025.compute_metrics; ``squeeze``: Test_Score2025's, which squeezes both arrays first."""
    gt = _organizers_loadmat(gt_file)
    recon = _organizers_loadmat(recon_file)
    if squeeze:
        gt, recon = np.squeeze(gt), np.squeeze(recon)
    if gt.shape != recon.shape:
        return np.nan, np.nan, np.nan, "Shape mismatch"
    psnr, ssim, nmse = (_organizers_test_calmetric if squeeze else _organizers_calmetric)(gt, recon)
    return np.mean(psnr), np.mean(ssim), np.mean(nmse), None


# (stem, modality, img4ranking shape in MATLAB order): single-slice series with frames, as the
# ranking reduction leaves them (the interior 1 kept), and one 3-D stack on which both agree.
PARITY_FILES = [
    ("cine_lax_4ch", "Cine", (21, 17, 1, 3)),
    ("T2smap", "Mapping", (19, 16, 1, 4)),
    ("flow2d", "Flow2d", (20, 15, 1, 3)),
    ("lge_sax", "LGE", (18, 16, 2)),
]


def _organizers_tree(root, files, seed=0):
    """Ground truth in the organizers' layout (img4ranking in FullSample_<T>, MAT v5) and a
    prediction tree beside it whose brightest pixels differ from the ground truth's, so that which
    array is the reference matters. The kus files are empty: nothing opens them."""
    rng = np.random.default_rng(seed)
    gt_root, pred_root = root / "gt", root / "pred"
    for stem, modality, shape in files:
        base = Path("TaskR1", "MultiCoil", modality, "ValidationSet")
        rel = Path("Center001", "Siemens_30T_CIMA.X", "P001")
        kus = gt_root / base / "UnderSample_TaskR1" / rel / f"{stem}_kus_Uniform8.mat"
        kus.parent.mkdir(parents=True, exist_ok=True)
        kus.touch()
        gt = (rng.random(shape) * 5 + 1).astype(np.float32)
        pred = np.abs(gt + 0.4 * rng.standard_normal(shape)).astype(np.float32)
        pred[0, 0] = 40.0  # every image of the prediction gets a bright corner
        full = gt_root / base / "FullSample_TaskR1" / rel / f"{stem}.mat"
        full.parent.mkdir(parents=True, exist_ok=True)
        scipy.io.savemat(full, {"img4ranking": gt})
        write_img4ranking(pred_root / base / "UnderSample_TaskR1" / rel / kus.name, pred)
    return gt_root, pred_root


def _scores(result):
    return {f.case.stem: (f.leaderboard.psnr, f.leaderboard.ssim, f.leaderboard.nmse) for f in result.files}


def test_validation_and_test_graders_match_the_organizers_code_on_single_slice_files(tmp_path):
    gt_root, pred_root = _organizers_tree(tmp_path, PARITY_FILES)
    cases = find_cases(gt_root)
    organizers = {
        squeeze: {c.stem: _organizers_compute_metrics(fullsample_path(c, gt_root), c.output_path(pred_root), squeeze)[:3] for c in cases}
        for squeeze in (False, True)
    }
    # the default is the validation scorer, which keeps (x, y, 1, t) 4-D: the submission is the reference
    validation = _scores(evaluate_tree(pred_root, gt_root, progress=False))
    test = _scores(evaluate_tree(pred_root, gt_root, progress=False, grader=Grader.TEST))
    for stem, _, shape in PARITY_FILES:
        np.testing.assert_allclose(validation[stem], organizers[False][stem], rtol=1e-6, err_msg=stem)
        np.testing.assert_allclose(test[stem], organizers[True][stem], rtol=1e-6, err_msg=stem)
        if 1 in shape:  # the scorers differ exactly where the squeeze changes the rank
            assert validation[stem][0] != pytest.approx(test[stem][0], rel=1e-3), stem
        else:
            assert validation[stem] == test[stem]

    # the command line: the default and --grader test, through per_file.csv (8 significant digits)
    for args, squeeze in (([], False), (["--grader", "test"], True)):
        out = tmp_path / f"report{len(args)}"
        assert main(["evaluate", "--pred", str(pred_root), "--gt", str(gt_root), "--out", str(out), *args]) == 0
        _, rows = _rows(out / "per_file.csv")
        for stem, row in rows.items():
            assert row["grader"] == ("test" if squeeze else "validation")
            got = [float(row[m]) for m in ("psnr", "ssim", "nmse")]
            np.testing.assert_allclose(got, organizers[squeeze][stem], rtol=1e-6, err_msg=stem)


def test_what_the_validation_scorer_cannot_score(tmp_path):
    # a 2-D img4ranking (blackblood), a prediction that dropped the interior singleton, a MAT v7.3 prediction
    files = [("blackblood", "BlackBlood", (20, 18)), ("cine_lax_4ch", "Cine", (21, 17, 1, 3)), ("lge_sax", "LGE", (18, 16, 2))]
    gt_root, pred_root = _organizers_tree(tmp_path, files)
    cases = {c.stem: c for c in find_cases(gt_root)}
    lax, lge = cases["cine_lax_4ch"].output_path(pred_root), cases["lge_sax"].output_path(pred_root)
    write_img4ranking(lax, _organizers_loadmat(lax)[:, :, 0])  # (21, 17, 3)
    write_mat73(lge, {"img4ranking": _organizers_loadmat(lge).T})  # as MATLAB's save -v7.3 lays it out
    black = (fullsample_path(cases["blackblood"], gt_root), cases["blackblood"].output_path(pred_root))
    with pytest.raises(IndexError):  # the organizers' code: the whole validation run stops here
        _organizers_compute_metrics(*black, squeeze=False)
    for stem, path in (("cine_lax_4ch", lax), ("lge_sax", lge)):
        assert _organizers_compute_metrics(fullsample_path(cases[stem], gt_root), path, squeeze=False)[3] == "Shape mismatch"

    validation = {f.case.stem: f for f in evaluate_tree(pred_root, gt_root, progress=False).files}
    # The organizers' validation run would stop at this file; it is scored as the test scorer does, with a warning.
    assert validation["blackblood"].ok and "IndexError" in validation["blackblood"].message
    assert validation["blackblood"].leaderboard == {f.case.stem: f for f in evaluate_tree(pred_root, gt_root, progress=False, grader=Grader.TEST).files}["blackblood"].leaderboard
    assert validation["cine_lax_4ch"].status == ERROR and "does not squeeze" in validation["cine_lax_4ch"].message
    assert validation["lge_sax"].status == ERROR and "(2, 16, 18)" in validation["lge_sax"].message and "v7.3" in validation["lge_sax"].message
    test = {f.case.stem: f for f in evaluate_tree(pred_root, gt_root, progress=False, grader=Grader.TEST).files}
    assert all(f.ok for f in test.values())
    organizers = _organizers_compute_metrics(*black, squeeze=True)[:3]  # squeezed 2-D: one image, GT as reference
    np.testing.assert_allclose([test["blackblood"].leaderboard.psnr, test["blackblood"].leaderboard.ssim,
                                test["blackblood"].leaderboard.nmse], organizers, rtol=1e-6)  # fmt: skip
