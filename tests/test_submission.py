"""validate-submission: a clean tree passes; each way a grader would reject a tree is reported."""

import shutil

import numpy as np
import pytest
import scipy.io

from genre.cli import main
from genre.data.cmrx import find_cases
from genre.data.contract import OutputMode
from genre.data.matio import write_mat73
from genre.submission import validate_submission


@pytest.fixture
def submission(mini_tree, tmp_path):
    """A clean full-mode output tree of the mini tree, and the case whose output the tests break."""
    out = tmp_path / "out"
    assert main(["predict", "--input", str(mini_tree), "--output", str(out), "--method", "zero-filled", "--device", "cpu"]) == 0
    case = next(c for c in find_cases(mini_tree) if c.stem == "cine_sax")
    return out, case.output_path(out)


def _image(path):
    return scipy.io.loadmat(path)["img4ranking"]


def _save(path, variables):
    scipy.io.savemat(path, variables, format="5")


def _missing(out, target):
    target.unlink()


def _extra(out, target):
    (target.parent / "notes.txt").write_text("not a submission file")


def _hidden_temp(out, target):
    (target.parent / f".{target.name}.k3j9.part").write_bytes(target.read_bytes())


def _v73(out, target):
    write_mat73(target, {"img4ranking": _image(target)})


def _wrong_name(out, target):
    _save(target, {"img": _image(target)})


def _float64(out, target):
    _save(target, {"img4ranking": _image(target).astype(np.float64)})


def _nan(out, target):
    image = _image(target)
    image[0, 0, 0, 0] = np.nan
    _save(target, {"img4ranking": image})


def _wrong_shape(out, target):
    _save(target, {"img4ranking": _image(target)[:, :, :, :2]})


def _squeezed_interior(out, target):
    _save(target, {"img4ranking": _image(target)[:, :, 0]})


def _extra_variable(out, target):
    _save(target, {"img4ranking": _image(target), "scale": np.float32(1)})


def _wrapped(out, target):
    (out / "Submission").mkdir()
    shutil.move(out / "TaskR1", out / "Submission" / "TaskR1")


BREAKS = {
    "missing output": (_missing, "missing"),
    "extra file": (_extra, "notes.txt: unexpected file"),
    "hidden temp file": (_hidden_temp, "unexpected hidden file"),
    "v7.3 output": (_v73, "MAT v7.3/HDF5"),
    "wrong variable name": (_wrong_name, "no variable 'img4ranking' (the file holds 'img')"),
    "float64": (_float64, "is float64, must be float32"),
    "NaN": (_nan, "holds 1 NaN and 0 Inf values"),
    "wrong shape": (_wrong_shape, "expected (24, 21, 3, 4)"),
    "interior singleton squeezed": (_squeezed_interior, "has shape (24, 21, 4)"),
    "extra variable": (_extra_variable, "variables besides 'img4ranking': 'scale'"),
    "wrapped task folder": (_wrapped, "lies below the extra folder Submission"),
}


def test_clean_tree_is_valid(mini_tree, submission, capsys):
    out, _ = submission
    report = validate_submission(out, mini_tree, OutputMode.FULL)
    assert report.ok, report.problems
    assert (report.expected, report.found, report.valid, report.missing, report.unexpected) == (3, 3, 3, 0, 0)
    assert main(["validate-submission", str(out), "--input", str(mini_tree)]) == 0
    assert "OK:" in capsys.readouterr().out


def test_clean_validation_zip_is_valid(mini_tree, tmp_path):
    out = tmp_path / "val"
    args = ["predict", "--input", str(mini_tree), "--output", str(out), "--method", "zero-filled", "--output-mode", "ranking"]
    assert main(args) == 0
    assert main(["validate-submission", str(out), "--input", str(mini_tree), "--mode", "validation"]) == 0


def test_full_outputs_are_not_a_validation_zip(mini_tree, submission, capsys):
    out, _ = submission
    report = validate_submission(out, mini_tree, OutputMode.RANKING)
    # every full volume is larger than its ranking crop, so each file is one shape problem
    assert report.valid == 0 and len(report.problems) == 3 and report.other_mode == 3
    assert all("has shape" in p and p.endswith("which is this file's full-mode output") for p in report.problems)
    assert main(["validate-submission", str(out), "--input", str(mini_tree), "--mode", "validation"]) == 1
    assert "HINT: 3 outputs are full volumes; the validation zip needs ranking outputs (genre predict --output-mode ranking)" in (
        capsys.readouterr().out)


def test_ranking_outputs_checked_as_full_are_told_so(mini_tree, tmp_path, capsys):
    out = tmp_path / "val"
    assert main(["predict", "--input", str(mini_tree), "--output", str(out), "--method", "zero-filled", "--output-mode", "ranking"]) == 0
    assert main(["validate-submission", str(out), "--input", str(mini_tree), "--mode", "test"]) == 1
    assert "HINT: 3 outputs are ranking crops; full mode needs whole volumes" in capsys.readouterr().out


@pytest.mark.parametrize("kind", BREAKS)
def test_each_break_is_reported(mini_tree, submission, capsys, kind):
    out, target = submission
    breaker, message = BREAKS[kind]
    breaker(out, target)
    report = validate_submission(out, mini_tree, OutputMode.FULL)
    assert not report.ok
    assert any(message in p for p in report.problems), report.problems
    assert all("\n" not in p and p.startswith(str(out)) for p in report.problems)
    if kind != "wrapped task folder":
        # one broken file is one problem; the others stay valid
        assert len(report.problems) == 1, report.problems
        assert report.valid == 3 - (kind not in ("extra file", "hidden temp file"))
    assert main(["validate-submission", str(out), "--input", str(mini_tree)]) == 1
    printed = capsys.readouterr().out
    assert "INVALID" in printed and message in printed


def test_wrapped_tree_reports_each_file_once(mini_tree, submission):
    out, _ = submission
    _wrapped(out, None)
    report = validate_submission(out, mini_tree, OutputMode.FULL)
    assert report.found == 0 and report.unexpected == 3
    assert len(report.problems) == 3
    assert all("nothing may wrap the task folder" in p for p in report.problems)


@pytest.mark.parametrize(
    "args",
    [
        ["--input", "{missing}"],
        ["--input", "{input}", "--mode", "validation", "--output-mode", "full"],
    ],
    ids=["no input tree", "validation with full outputs"],
)
def test_unusable_arguments_exit_2(mini_tree, submission, tmp_path, args):
    out, _ = submission
    args = [a.format(missing=tmp_path / "nowhere", input=mini_tree) for a in args]
    assert main(["validate-submission", str(out), *args]) == 2


def test_missing_output_folder_exits_2(mini_tree, tmp_path):
    assert main(["validate-submission", str(tmp_path / "nowhere"), "--input", str(mini_tree)]) == 2
