"""predict: end to end on a miniature tree, resumability, and every kind of bad input."""

import logging
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

from pathlib import Path

import numpy as np
import pytest
import scipy.io
import torch

from conftest import MINI_SERIES, write_case
from genre.evaluation.reference import reference_image
from genre import pipeline
from genre.cli import main
from genre.commands.predict import worker_device
from genre.data.cmrx import find_cases
from genre.data.contract import OutputMode
from genre.data.matio import MatArray, write_mat73
from genre.recon.sense import CGSense
from genre.recon.zero_filled import ZeroFilled
from genre.submission import validate_submission

ROOT = Path(__file__).resolve().parents[1]

from conftest import phantom_kspace, uniform_mask


def _outputs(root):
    return sorted(p.relative_to(root) for p in root.rglob("*") if p.is_file())


#: Measured on the mini tree: at most 0.17 (zero-filled, full mode), 0.13 for CG-SENSE; an output
#: at half the right scale is off by 0.51 or more, so this bound fails it.
MAX_ERROR = 0.25


def _relative_error(got: np.ndarray, expected: np.ndarray) -> float:
    return float(np.linalg.norm(got - expected) / np.linalg.norm(expected))


def _gt(case, root, mode):
    return reference_image(case, root, mode)


@pytest.mark.parametrize("mode", ["full", "ranking"])
@pytest.mark.parametrize("method", ["zero-filled", "sense"])
def test_predict_writes_contract_valid_outputs(mini_tree, tmp_path, mode, method):
    out = tmp_path / "out"
    assert main(["predict", "--input", str(mini_tree), "--output", str(out), "--method", method, "--output-mode", mode, "--device", "cpu"]) == 0
    cases = find_cases(mini_tree)
    assert _outputs(out) == sorted(c.relative for c in cases)
    for case in cases:
        got = scipy.io.loadmat(case.output_path(out))["img4ranking"]
        expected = _gt(case, mini_tree, OutputMode(mode))
        assert got.dtype == np.float32 and got.shape == expected.shape
        assert np.isfinite(got).all()
        error = _relative_error(got, expected)
        assert error < MAX_ERROR, (case.stem, error)
        assert _relative_error(0.5 * got, expected) > MAX_ERROR, "the bound must catch an output at half the scale"


def test_sense_is_closer_to_the_reference_than_zero_filled(mini_tree, tmp_path):
    errors = {}
    for method in ("zero-filled", "sense"):
        out = tmp_path / method
        assert main(["predict", "--input", str(mini_tree), "--output", str(out), "--method", method, "--device", "cpu"]) == 0
        case = next(c for c in find_cases(mini_tree) if c.stem == "cine_sax")
        got = scipy.io.loadmat(case.output_path(out))["img4ranking"]
        gt = _gt(case, mini_tree, OutputMode.FULL)
        errors[method] = _relative_error(got, gt)
    assert errors["sense"] < 0.8 * errors["zero-filled"], errors


def test_existing_outputs_are_kept_unless_overwrite(mini_tree, tmp_path, caplog):
    out = tmp_path / "out"
    args = ["predict", "--input", str(mini_tree), "--output", str(out), "--method", "zero-filled"]
    assert main(args) == 0
    first = next(out.rglob("*.mat"))
    stamp = first.stat().st_mtime_ns
    os.utime(first, ns=(stamp - 10**9, stamp - 10**9))
    with caplog.at_level(logging.INFO):
        assert main(args) == 0
    assert "already complete" in caplog.text
    assert first.stat().st_mtime_ns == stamp - 10**9
    assert main(args + ["--overwrite"]) == 0
    assert first.stat().st_mtime_ns != stamp - 10**9
    # an output of the other mode has the wrong shape, so it is redone rather than kept
    assert main(args + ["--output-mode", "ranking"]) == 0
    assert scipy.io.loadmat(first)["img4ranking"].ndim >= 2


def _break(root, stem, how):
    case = next(c for c in find_cases(root) if c.stem == stem)
    if how == "truncated":
        data = case.kus_path.read_bytes()
        case.kus_path.write_bytes(data[: len(data) // 3])
    elif how == "not-matlab":
        case.kus_path.write_text("this is not a MATLAB file")
    elif how == "missing-variable":
        write_mat73(case.kus_path, {"a": np.zeros((2, 2)), "b": np.zeros((2, 2))})
    elif how == "mask-shape":
        write_mat73(case.mask_path, {"mask": np.ones((5, 7))})
    elif how == "nan":
        with MatArray(case.kus_path, ["kus"]) as f:
            k = f.complex64()
        k.flat[3] = np.nan
        write_mat73(case.kus_path, {"kus": k})
    return case


@pytest.mark.parametrize("how,message", [
    ("truncated", "kus_Uniform4.mat: "),
    ("not-matlab", "not a readable MATLAB file"),
    ("missing-variable", "no variable 'kus'"),
    ("mask-shape", "does not fit k-space"),
    ("nan", "NaN or Inf"),
])
def test_one_bad_file_is_reported_and_the_others_still_done(mini_tree, tmp_path, caplog, how, message):
    broken = _break(mini_tree, "cine_sax", how)
    out = tmp_path / "out"
    with caplog.at_level(logging.INFO):
        status = main(["predict", "--input", str(mini_tree), "--output", str(out), "--method", "zero-filled"])
    assert status == 1
    errors = [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR]
    assert any(message in e and broken.kus_path.name.split("_kus_")[0] in e for e in errors), errors
    assert all("\n" not in e for e in errors) and not any("Traceback" in e for e in errors)
    written = _outputs(out)
    assert broken.relative not in written
    assert len(written) == len(find_cases(mini_tree)) - 1
    assert not [p for p in out.rglob("*") if p.name.startswith(".")]  # no temporary files left


def test_empty_input_missing_input_and_output_inside_input(tmp_path, mini_tree, caplog):
    (tmp_path / "empty").mkdir()
    with caplog.at_level(logging.ERROR):
        assert main(["predict", "--input", str(tmp_path / "empty"), "--output", str(tmp_path / "o"), "--method", "sense"]) == 2
        assert main(["predict", "--input", str(tmp_path / "nope"), "--output", str(tmp_path / "o"), "--method", "sense"]) == 2
        assert main(["predict", "--input", str(mini_tree), "--output", str(mini_tree / "out"), "--method", "sense"]) == 2
    text = caplog.text
    assert "no undersampled files" in text and "input folder not found" in text and "must not lie inside" in text
    assert not (mini_tree / "out").exists() or not any((mini_tree / "out").rglob("*.mat"))


def test_output_path_blocked_by_a_file(tmp_path, mini_tree, caplog):
    # Runs as root in CI, where permission bits cannot make a folder unwritable: a file in the
    # way is an unwritable output that even root meets.
    blocker = tmp_path / "out"
    blocker.write_text("a file where the output folder should be")
    with caplog.at_level(logging.ERROR):
        assert main(["predict", "--input", str(mini_tree), "--output", str(blocker), "--method", "sense"]) == 2
        assert main(["predict", "--input", str(mini_tree), "--output", str(blocker / "below"), "--method", "sense"]) == 2
    assert caplog.text.count("not writable") == 2


def test_genre_without_weights_says_so(tmp_path, mini_tree, caplog):
    with caplog.at_level(logging.ERROR):
        status = main(["predict", "--input", str(mini_tree), "--output", str(tmp_path / "o"), "--method", "genre",
                       "--checkpoint", str(tmp_path / "missing.safetensors")])
    assert status == 2
    assert "missing.safetensors" in caplog.text


class _Slow:
    """A method that takes a fixed time per file, to exercise the time budget."""

    name = "slow"

    def __init__(self, seconds):

        self.inner, self.seconds = ZeroFilled(), seconds

    def reconstruct(self, kspace, mask, info):
        import time

        time.sleep(self.seconds)
        return self.inner.reconstruct(kspace, mask, info)


def test_time_budget_moves_the_remaining_files_to_the_fallback(mini_tree, tmp_path, caplog):
    from genre.pipeline import predict_tree

    slow = _Slow(0.3)
    with caplog.at_level(logging.INFO):
        report = predict_tree(mini_tree, tmp_path / "out", slow, budget_seconds=0.5, fallbacks=[ZeroFilled()])
    assert report.ok and len(report.done) == len(find_cases(mini_tree))
    # after the first file (one slice, 0.3 s) two more files would overrun the 0.5 s budget
    assert caplog.text.count("with slow in") == 1 and caplog.text.count("with zero-filled in") == 2
    assert "time budget: slow would not finish" in caplog.text
    caplog.clear()
    with caplog.at_level(logging.INFO):
        report = predict_tree(mini_tree, tmp_path / "out2", _Slow(0.0), budget_seconds=3600, fallbacks=[ZeroFilled()])
    assert caplog.text.count("with slow in") == len(find_cases(mini_tree)) and report.ok


def test_run_ends_with_the_submission_check(mini_tree, tmp_path, caplog):
    out = tmp_path / "out"
    args = ["predict", "--input", str(mini_tree), "--output", str(out), "--method", "zero-filled"]
    with caplog.at_level(logging.INFO):
        assert main(args) == 0
    assert "passes the submission check" in caplog.text
    (out / "TaskR1" / "notes.txt").write_text("an extra file crashes the validation scorer")
    with caplog.at_level(logging.ERROR):
        assert main(args) == 1
    assert "notes.txt" in caplog.text


def test_default_method_uses_the_shipped_weights(mini_tree, tmp_path):
    out = tmp_path / "out"
    assert main(["predict", "--input", str(mini_tree), "--output", str(out), "--device", "cpu"]) == 0
    for case in find_cases(mini_tree):
        got = scipy.io.loadmat(case.output_path(out))["img4ranking"]
        assert got.dtype == np.float32 and got.shape == _gt(case, mini_tree, OutputMode.FULL).shape
        assert np.isfinite(got).all() and got.max() > 0


def test_the_next_slice_is_read_while_this_one_is_reconstructed(mini_tree, monkeypatch):
    case = next(c for c in find_cases(mini_tree) if c.stem == "cine_sax")  # 3 slices
    started = [threading.Event() for _ in range(3)]
    read = pipeline._checked

    def recording_read(kus, index, shape):
        started[index[1]].set()
        return read(kus, index, shape)

    class WaitsForTheNextRead:
        name = "waits"
        calls = 0
        overlapped = []

        def reconstruct(self, kspace, mask, info):
            z, self.calls = self.calls, self.calls + 1
            if z + 1 < len(started):  # a serial loop would only start that read after this returns
                self.overlapped.append(started[z + 1].wait(timeout=10))
            return ZeroFilled().reconstruct(kspace, mask, info)

    serial = pipeline.reconstruct_case(case, ZeroFilled(), OutputMode.FULL)
    monkeypatch.setattr(pipeline, "_checked", recording_read)
    method = WaitsForTheNextRead()
    got = pipeline.reconstruct_case(case, method, OutputMode.FULL)
    assert method.overlapped == [True, True]
    np.testing.assert_array_equal(got, serial)


def test_read_ahead_keeps_order_and_raises_a_read_error_where_its_slice_is_used():
    def read(i):
        if i == 7:
            raise pipeline.CaseError("slice 7 is broken")
        return i * 10

    assert list(pipeline._read_ahead(read, [3, 1, 2])) == [(3, 30), (1, 10), (2, 20)]
    assert list(pipeline._read_ahead(read, [])) == []
    chunks = pipeline._read_ahead(read, [0, 7, 1])
    assert next(chunks) == (0, 0)
    with pytest.raises(pipeline.CaseError, match="slice 7"):
        next(chunks)


def test_a_methods_own_error_is_reported_with_the_file(mini_tree, tmp_path, caplog):
    class FailsOnT1w:
        name = "fails"

        def reconstruct(self, kspace, mask, info):
            if info.stem == "T1w":
                raise ValueError("bart pics failed: out of memory")
            return ZeroFilled().reconstruct(kspace, mask, info)

    with caplog.at_level(logging.ERROR):
        report = pipeline.predict_tree(mini_tree, tmp_path / "out", FailsOnT1w())
    [(path, problem)] = report.failed
    assert path.name.startswith("T1w_kus_") and problem == f"{path}: bart pics failed: out of memory"
    assert problem in caplog.text and len(report.done) == len(find_cases(mini_tree)) - 1


def test_a_missing_mask_is_read_off_the_kspace_with_one_warning(mini_tree, tmp_path, caplog):
    case = next(c for c in find_cases(mini_tree) if c.stem == "cine_sax")
    with_mask = pipeline.reconstruct_case(case, CGSense(), OutputMode.FULL)
    case.mask_path.unlink()
    out = tmp_path / "out"
    with caplog.at_level(logging.INFO):
        assert main(["predict", "--input", str(mini_tree), "--output", str(out), "--method", "sense", "--device", "cpu"]) == 0
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1 and "\n" not in warnings[0], warnings
    assert warnings[0].startswith(f"{case.kus_path}: no mask file found")
    assert warnings[0].endswith("derived the mask from the nonzero k-space samples (whole ky lines)")
    np.testing.assert_allclose(scipy.io.loadmat(case.output_path(out))["img4ranking"], with_mask, rtol=1e-5, atol=1e-6)


def _test_scorer_spelling(root):
    """The test scorer's ``TestSet/<T>/...`` spelling: ``UnderSample_<T>`` renamed to the bare task name."""
    for folder in sorted(root.rglob("UnderSample_TaskR1")):
        folder.rename(folder.with_name("TaskR1"))
    return root


def _wrapped(root):
    shutil.move(root / "TaskR1", root / "ChallengeData" / "TaskR1")
    return root


@pytest.mark.parametrize("layout,input_of", [
    ("test scorer spelling", _test_scorer_spelling),
    ("no task folder above MultiCoil", lambda root: root / "TaskR1"),
    ("task folder wrapped", _wrapped),
])
def test_every_input_layout_lands_where_the_grader_looks(mini_tree, tmp_path, layout, input_of):
    standard = tmp_path / "standard"
    assert main(["predict", "--input", str(mini_tree), "--output", str(standard), "--method", "zero-filled"]) == 0
    expected = {c.relative: scipy.io.loadmat(c.output_path(standard))["img4ranking"] for c in find_cases(mini_tree)}
    if layout == "test scorer spelling":
        expected = {Path(*("TaskR1" if p == "UnderSample_TaskR1" else p for p in rel.parts)): v for rel, v in expected.items()}
    out = tmp_path / "out"
    # Exit 0 includes the closing submission check: every output at OUT/<T>/MultiCoil/..., nothing wrapping it.
    assert main(["predict", "--input", str(input_of(mini_tree)), "--output", str(out), "--method", "zero-filled"]) == 0
    assert _outputs(out) == sorted(expected)
    for relative, image in expected.items():
        np.testing.assert_array_equal(scipy.io.loadmat(out / relative)["img4ranking"], image)


def _matlab_saved(values):
    """``values`` in h5py order as MATLAB saves it: leading frame and slice axes of length 1 dropped."""
    while values.ndim > 2 and values.shape[0] == 1:
        values = values[0]
    return values


#: (coil folder, stem, modality, frames, slices): a cine stack and a no-time stack of a SingleCoil
#: tree, and a 2-D (ky, kx) k-space, one coil whatever the tree says.
SINGLE_COIL_SERIES = [("SingleCoil", "cine_sax", "Cine", 4, 3), ("SingleCoil", "T1w", "T1w", 1, 3),
                      ("MultiCoil", "blackblood", "BlackBlood", 1, 1)]


@pytest.fixture
def single_coil_tree(tmp_path):
    """A 2024-style validation tree of k-space without a coil axis, ground truth in ``kspace_full``."""
    root = tmp_path / "single"
    for seed, (coil_folder, stem, modality, frames, slices) in enumerate(SINGLE_COIL_SERIES):
        base = root / "TaskR1" / coil_folder / modality / "ValidationSet"
        rel = Path("Center001", "Siemens_30T_Vida", "P001")
        k = phantom_kspace(frames, slices, 1, 21, 24, seed)[:, :, 0]  # (frames, slices, ky, kx)
        mask = uniform_mask(frames, 21, 24, 4)
        write_mat73(base / "FullSample_TaskR1" / rel / f"{stem}.mat", {"kspace_full": _matlab_saved(k)})
        write_mat73(base / "UnderSample_TaskR1" / rel / f"{stem}_kus_Uniform4.mat", {"kus": _matlab_saved(k * mask[:, None])})
        write_mat73(base / "Mask_TaskR1" / rel / f"{stem}_mask_Uniform4.mat", {"mask": _matlab_saved(mask)})
    return root


@pytest.mark.parametrize("method", ["zero-filled", "sense", "genre", pytest.param("bart", marks=pytest.mark.skipif(
    shutil.which("bart") is None, reason="needs the bart binary (apt-get install bart)"))])
def test_single_coil_and_two_dimensional_kspace_is_reconstructed(single_coil_tree, tmp_path, method):
    out = tmp_path / "out"
    assert main(["predict", "--input", str(single_coil_tree), "--output", str(out), "--method", method, "--device", "cpu"]) == 0
    cases = find_cases(single_coil_tree)
    assert _outputs(out) == sorted(c.relative for c in cases)
    for case in cases:
        got = scipy.io.loadmat(case.output_path(out))["img4ranking"]
        expected = _gt(case, single_coil_tree, OutputMode.FULL)
        assert got.dtype == np.float32 and got.shape == expected.shape
        # Measured: zero-filled 0.16 at most, CG-SENSE the same (one coil with unit maps: a
        # regularised inverse that leaves the unmeasured samples at zero), GENRE-CMR 0.12, BART 0.11.
        error = _relative_error(got, expected)
        assert error < MAX_ERROR, (case.stem, error)
        assert _relative_error(0.5 * got, expected) > MAX_ERROR


def test_two_inputs_with_one_output_are_refused_in_one_line(mini_tree, tmp_path, caplog):
    shutil.copytree(mini_tree / "TaskR1", mini_tree / "copy" / "TaskR1")
    with caplog.at_level(logging.ERROR):
        assert main(["predict", "--input", str(mini_tree), "--output", str(tmp_path / "out"), "--method", "zero-filled"]) == 2
    [error] = [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR]
    assert "would also be the output of" in error and "\n" not in error


def test_guarded_predict_writes_each_file_with_one_of_its_methods(mini_tree, tmp_path, caplog):
    """``--guard``: every output is exactly the primary's or the guard's reconstruction, and the choice is logged."""
    outputs = {}
    for name, flags in {"genre": ["--method", "genre"], "sense": ["--method", "sense"],
                        "guarded": ["--method", "genre", "--guard", "sense"]}.items():
        outputs[name] = tmp_path / name
        with caplog.at_level(logging.INFO, logger="genre.predict"):
            assert main(["predict", "--input", str(mini_tree), "--output", str(outputs[name]), "--device", "cpu", *flags]) == 0
    assert "held-out error genre" in caplog.text and "guard: slices reconstructed by each method" in caplog.text
    files = _outputs(outputs["guarded"])
    assert files
    for relative in files:
        got = scipy.io.loadmat(outputs["guarded"] / relative)["img4ranking"]
        candidates = [scipy.io.loadmat(outputs[m] / relative)["img4ranking"] for m in ("genre", "sense")]
        # A cine or mapping stack (x, y, slices, frames) is one call per slice; other files one call.
        pieces = [(slice(None),) * 2 + (z,) for z in range(got.shape[2])] if got.ndim == 4 else [()]
        for piece in pieces:
            assert any(np.array_equal(got[piece], c[piece]) for c in candidates), (relative, piece)


def test_a_guard_that_cannot_score_is_refused_in_one_line(mini_tree, tmp_path, caplog):
    for guard in ("zero-filled", "genre", "nonsense"):
        with caplog.at_level(logging.ERROR):
            caplog.clear()
            assert main(["predict", "--input", str(mini_tree), "--output", str(tmp_path / guard), "--method", "genre", "--guard", guard]) == 2
        assert len(caplog.records) == 1 and ("--guard" in caplog.text or "unknown method" in caplog.text), guard
def test_concurrent_writability_checks_never_collide(tmp_path):
    """Two predicts sharing an output tree met on one .write-test name (about 6 % of runs failed)."""
    inp, out, errors = tmp_path / "in", tmp_path / "out", []
    inp.mkdir()

    def check():
        for _ in range(50):
            try:
                pipeline.check_roots(inp, out)
            except pipeline.PredictionSetupError as exc:
                errors.append(str(exc))

    workers = [threading.Thread(target=check) for _ in range(4)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    assert errors == [] and list(out.iterdir()) == []


def test_a_rerun_removes_its_own_leftover_temporaries_and_nothing_else(mini_tree, tmp_path, caplog):
    out = tmp_path / "out"
    args = ["predict", "--input", str(mini_tree), "--output", str(out), "--method", "zero-filled"]
    assert main(args) == 0
    case = find_cases(mini_tree)[0]
    target = case.output_path(out)
    fd, stale = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".part", dir=target.parent)  # as a killed writer left it
    os.close(fd)
    stale = Path(stale)
    foreign = case.output_path(out).parent / ".notes.part"
    foreign.write_text("someone else's file")
    with caplog.at_level(logging.INFO):
        assert main(args) == 1  # the foreign file is an extra file for the graders
    assert not stale.exists() and foreign.is_file()
    assert f"removed {stale}" in caplog.text and ".notes.part: unexpected hidden file" in caplog.text
    foreign.unlink()
    assert main(args) == 0


def test_a_folder_that_cannot_be_locked_is_a_warning_not_a_failure(mini_tree, tmp_path, caplog, monkeypatch):
    def no_locks(folder, names):
        raise OSError(37, f"cannot lock {folder}")

    monkeypatch.setattr(pipeline, "remove_stale_temporaries", no_locks)
    with caplog.at_level(logging.WARNING):
        report = pipeline.predict_tree(mini_tree, tmp_path / "out", ZeroFilled())
    assert report.ok and "left any temporaries of interrupted runs in place (cannot lock" in caplog.text


# Stands in for a kill during a write: half of the first output's bytes reach its temporary, then
# the process says so and waits to be killed.
HALF_WRITTEN = """
import io, sys, time
from pathlib import Path
import scipy.io

savemat = scipy.io.savemat

def half_then_wait(handle, *args, **kwargs):
    whole = io.BytesIO()
    savemat(whole, *args, **kwargs)
    handle.write(whole.getvalue()[: len(whole.getvalue()) // 2])
    handle.flush()
    Path(sys.argv[1]).touch()
    time.sleep(600)

scipy.io.savemat = half_then_wait
from genre.cli import main
main(sys.argv[2:])
"""


def _start(command, log_path):
    with open(log_path, "w") as log:
        return subprocess.Popen(command, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT,
                                env={**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"})


def _kill_when(child, condition, then=0.0, timeout=120):
    """SIGKILL ``child`` ``then`` seconds after ``condition()`` holds (or once it has ended)."""
    deadline = time.monotonic() + timeout
    while not condition() and child.poll() is None:
        assert time.monotonic() < deadline, "the run never got there"
        time.sleep(0.005)
    time.sleep(then)
    child.send_signal(signal.SIGKILL)
    child.wait()


@pytest.mark.slow
def test_a_kill_9_at_any_moment_then_a_rerun_gives_the_uninterrupted_tree(tmp_path):
    inp = tmp_path / "input"
    for i, (stem, modality, frames, slices, timed) in enumerate(MINI_SERIES * 2):
        write_case(inp, stem, modality, frames, slices, timed, patient=f"P00{1 + i // len(MINI_SERIES)}", seed=i)
    cases = find_cases(inp)
    reference = tmp_path / "reference"
    assert pipeline.predict_tree(inp, reference, ZeroFilled()).ok
    out = tmp_path / "out"
    predict = ["predict", "--input", str(inp), "--output", str(out), "--method", "zero-filled"]
    genre = [sys.executable, "-m", "genre", *predict]

    def outputs():
        return sum(case.output_path(out).is_file() for case in cases)

    # In the middle of writing the first output.
    writing = tmp_path / "writing"
    _kill_when(_start([sys.executable, "-c", HALF_WRITTEN, str(writing), *predict], tmp_path / "0.log"), writing.exists)
    [partial] = [p for p in out.rglob("*") if p.is_file()]
    assert partial.name.endswith(".part") and outputs() == 0
    # Between files: once the rerun has written two outputs.
    _kill_when(_start(genre, tmp_path / "1.log"), lambda: outputs() >= 2)
    assert f"removed {partial}" in (tmp_path / "1.log").read_text()
    # At a moment nobody chose, once the run has started work.
    child = _start(genre, tmp_path / "2.log")
    _kill_when(child, lambda: "files under" in (tmp_path / "2.log").read_text(), then=np.random.default_rng(11).uniform(0, 0.1))

    last = subprocess.run(genre, cwd=ROOT, capture_output=True, text=True, timeout=300,
                          env={**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"})
    assert last.returncode == 0, last.stdout + last.stderr
    assert validate_submission(out, inp, OutputMode.FULL).ok
    for case in cases:
        np.testing.assert_array_equal(scipy.io.loadmat(case.output_path(out))["img4ranking"],
                                      scipy.io.loadmat(case.output_path(reference))["img4ranking"])


def test_shards_are_disjoint_cover_the_tree_and_check_only_their_own_files(mini_tree, tmp_path, caplog):
    out, cases = tmp_path / "out", find_cases(mini_tree)
    with caplog.at_level(logging.INFO):
        first = pipeline.predict_tree(mini_tree, out, ZeroFilled(), shard=pipeline.Shard(0, 2))
        pipeline.log_summary(first)
    assert first.ok and len(first.done) == 2  # the other shard's file is missing, and not this shard's problem
    assert "genre validate-submission" in caplog.text and "shard 1/2's outputs pass" in caplog.text
    second = pipeline.predict_tree(mini_tree, out, ZeroFilled(), shard=pipeline.Shard(1, 2))
    assert second.ok and not set(first.done) & set(second.done)
    assert sorted(first.done + second.done) == sorted(c.output_path(out) for c in cases)
    assert validate_submission(out, mini_tree, OutputMode.FULL).ok
    again = pipeline.predict_tree(mini_tree, out, ZeroFilled(), shard=pipeline.Shard(0, 2))
    assert again.skipped == first.done  # the same share on a rerun
    more = pipeline.predict_tree(mini_tree, out, ZeroFilled(), shard=pipeline.Shard(3, 4))
    assert more.ok and not more.done and not more.skipped  # more shards than files: nothing to do


def test_shards_running_at_once_finish_the_tree_a_killed_run_left(mini_tree, tmp_path):
    out, cases = tmp_path / "out", find_cases(mini_tree)
    target = cases[0].output_path(out)
    target.parent.mkdir(parents=True)
    fd, stale = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".part", dir=target.parent)
    os.close(fd)
    reports = {}

    def work(index):
        reports[index] = pipeline.predict_tree(mini_tree, out, ZeroFilled(), shard=pipeline.Shard(index, 2))

    workers = [threading.Thread(target=work, args=(i,)) for i in range(2)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    assert all(r.ok for r in reports.values()) and sum(len(r.done) for r in reports.values()) == len(cases)
    assert not Path(stale).exists() and validate_submission(out, mini_tree, OutputMode.FULL).ok


def test_a_plain_rerun_redoes_what_a_shard_left_and_checks_the_whole_tree(mini_tree, tmp_path):
    out = tmp_path / "out"
    pipeline.predict_tree(mini_tree, out, ZeroFilled(), shard=pipeline.Shard(1, 3))
    report = pipeline.predict_tree(mini_tree, out, ZeroFilled())
    assert report.ok and len(report.skipped) == 1 and len(report.done) == 2 and not report.whole_tree_check
    (out / "TaskR1" / "extra.txt").write_text("x")
    assert pipeline.predict_tree(mini_tree, out, ZeroFilled(), shard=pipeline.Shard(1, 3)).ok
    assert not pipeline.predict_tree(mini_tree, out, ZeroFilled()).ok


@pytest.mark.parametrize("value", ["0/2", "3/2", "2", "a/b", "1/0", "-1/2", "1/2/3", "²/4"])
def test_a_bad_shard_is_refused_in_one_line(mini_tree, tmp_path, caplog, value):
    with caplog.at_level(logging.ERROR):
        assert main(["predict", "--input", str(mini_tree), "--output", str(tmp_path / "o"), f"--shard={value}"]) == 2
    [error] = [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR]
    assert error.startswith(f"--shard {value}: expected I/N") and "\n" not in error
    assert not (tmp_path / "o").exists()


def test_under_torchrun_each_rank_takes_its_share(mini_tree, tmp_path, caplog, monkeypatch):
    out = tmp_path / "out"
    args = ["predict", "--input", str(mini_tree), "--output", str(out), "--method", "zero-filled"]
    monkeypatch.setenv("WORLD_SIZE", "2")
    monkeypatch.setenv("RANK", "1")
    with caplog.at_level(logging.INFO):
        assert main(args) == 0
    expected = pipeline.Shard(1, 2).take(find_cases(mini_tree))
    assert _outputs(out) == sorted(c.relative for c in expected) and "shard 2/2" in caplog.text
    assert main(args + ["--shard", "1/2"]) == 0  # --shard wins over the rank
    assert len(_outputs(out)) == len(find_cases(mini_tree))
    monkeypatch.setenv("RANK", "2")
    with caplog.at_level(logging.ERROR):
        assert main(args) == 2
    assert "RANK=2 WORLD_SIZE=2: not a worker" in caplog.text
    monkeypatch.setenv("WORLD_SIZE", "1")
    monkeypatch.setenv("RANK", "0")
    assert main(args) == 0  # a job of one worker does the whole tree


def test_a_torchrun_worker_computes_on_its_local_rank_gpu(monkeypatch):
    chosen = []
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 2)
    monkeypatch.setattr(torch.cuda, "set_device", chosen.append)
    assert worker_device(torch.device("cuda"), {"LOCAL_RANK": "3"}) == torch.device("cuda", 1)
    assert chosen == [torch.device("cuda", 1)]
    assert worker_device(torch.device("cpu"), {"LOCAL_RANK": "3"}) == torch.device("cpu")
    assert worker_device(torch.device("cuda"), {}) == torch.device("cuda")


def test_a_file_too_large_for_memory_is_refused_by_its_declared_shape_before_any_read(mini_tree, tmp_path, caplog, monkeypatch):
    # A 2 KB file declaring 10^6 frames made predict try to allocate 13 GiB.
    sizes = {}

    def available():
        return sizes.get("available")

    monkeypatch.setattr(pipeline, "available_memory", available)
    monkeypatch.setattr(MatArray, "read", lambda self, index=(): pytest.fail(f"{self.path} was read"))
    sizes["available"] = 10_000
    with caplog.at_level(logging.ERROR):
        report = pipeline.predict_tree(mini_tree, tmp_path / "out", ZeroFilled())
    assert len(report.failed) == len(find_cases(mini_tree)) and not report.done
    for path, problem in report.failed:
        assert problem.startswith(f"{path}: k-space of declared shape ") and "GiB of memory to reconstruct, more than the 0.0 GiB available" in problem
    monkeypatch.undo()
    monkeypatch.setattr(pipeline, "available_memory", available)
    sizes["available"] = None  # unknown: nothing is refused
    assert pipeline.predict_tree(mini_tree, tmp_path / "out2", ZeroFilled()).ok


@pytest.mark.parametrize("stem,declared,whole", [
    ("cine_sax", (12, 3, 10, 162, 448), False),  # one slice of every frame at a time
    ("T1w", (3, 10, 162, 448), True),  # a single-frame stack goes in whole
])
def test_the_memory_estimate_is_the_image_and_the_working_copies_of_what_is_reconstructed(tmp_path, monkeypatch, stem, declared, whole):
    import h5py

    path = tmp_path / f"{stem}_kus_Uniform8.mat"
    with h5py.File(path, "w") as handle:  # declared only: the file stays small
        handle.create_dataset("kus", shape=declared, dtype=[("real", "<f4"), ("imag", "<f4")])
    frames, slices, coils, ny, nx = (1,) * (5 - len(declared)) + declared
    chunk = frames * coils * ny * nx * (slices if whole else 1)
    needed = frames * slices * ny * nx * 4 + chunk * (8 + 8 * pipeline.WORKING_COPIES)
    with MatArray(path, ["kus"]) as kus:
        shape = pipeline.kspace_layout(stem, kus.shape)
        assert pipeline._reads_whole_volume(stem, shape) is whole
        monkeypatch.setattr(pipeline, "available_memory", lambda: needed)
        pipeline.check_memory(kus, shape, whole)
        monkeypatch.setattr(pipeline, "available_memory", lambda: needed - 1)
        with pytest.raises(pipeline.CaseError, match=f"{path.name}: k-space of declared shape"):
            pipeline.check_memory(kus, shape, whole)


def test_available_memory_is_a_positive_byte_count_here():
    available = pipeline.available_memory()
    assert isinstance(available, int) and 2**20 < available < 2**50


def test_an_output_folder_that_is_a_link_is_not_written_through(mini_tree, tmp_path, caplog):
    out, elsewhere = tmp_path / "out", tmp_path / "elsewhere"
    elsewhere.mkdir()
    case = next(c for c in find_cases(mini_tree) if c.stem == "T1w")
    linked = case.output_path(out).parent
    linked.parent.mkdir(parents=True)
    linked.symlink_to(elsewhere, target_is_directory=True)
    with caplog.at_level(logging.ERROR):
        report = pipeline.predict_tree(mini_tree, out, ZeroFilled())
    [(path, problem)] = report.failed
    assert path == case.kus_path and f"its folder {linked} is a symbolic link" in problem and "\n" not in problem
    assert len(report.done) == len(find_cases(mini_tree)) - 1
    assert not list(elsewhere.iterdir())


def test_what_was_assumed_to_read_a_file_is_one_warning_line(mini_tree, tmp_path, caplog):
    case = next(c for c in find_cases(mini_tree) if c.stem == "cine_sax")
    with MatArray(case.kus_path, ["kus"]) as kus:
        real = kus.complex64().real.copy()
    write_mat73(case.kus_path, {"kdata": real})
    zero = next(c for c in find_cases(mini_tree) if c.stem == "T1w")
    with MatArray(zero.kus_path, ["kus"]) as kus:
        write_mat73(zero.kus_path, {"kus": np.zeros(kus.shape, np.complex64)})
    with caplog.at_level(logging.WARNING):
        report = pipeline.predict_tree(mini_tree, tmp_path / "out", ZeroFilled())
    assert report.ok
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert warnings == [
        f"{case.kus_path}: no variable 'kus': read its only variable 'kdata' as the k-space; "
        "real-valued k-space (float32): read with a zero imaginary part",
        f"{zero.kus_path}: the k-space read is all zero where the mask samples; its output is an empty image",
    ]
    assert not scipy.io.loadmat(zero.output_path(tmp_path / "out"))["img4ranking"].any()


def test_adapted_predict_writes_every_file_and_logs_each_check(mini_tree, tmp_path, caplog):
    """``--adapt``: the same files and shapes as the plain network, and each slice's check in the log."""
    outputs = {}
    for name, flags in {"genre": [], "adapted": ["--adapt", "2", "--adapt-lr", "1e-4"]}.items():
        outputs[name] = tmp_path / name
        with caplog.at_level(logging.INFO, logger="genre.predict"):
            assert main(["predict", "--input", str(mini_tree), "--output", str(outputs[name]), "--device", "cpu",
                         "--method", "genre", *flags]) == 0
    assert "adapted 2 steps, withheld-sample error" in caplog.text and "adapt: the check kept adapted weights on" in caplog.text
    files = _outputs(outputs["adapted"])
    assert files and files == _outputs(outputs["genre"])
    for relative in files:
        got = scipy.io.loadmat(outputs["adapted"] / relative)["img4ranking"]
        assert got.shape == scipy.io.loadmat(outputs["genre"] / relative)["img4ranking"].shape
        assert np.isfinite(got).all()


def test_an_unusable_adaptation_is_refused_in_one_line(mini_tree, tmp_path, caplog):
    for flags in (["--method", "sense", "--adapt", "3"], ["--method", "genre", "--adapt", "-1"],
                  ["--method", "genre", "--adapt", "3", "--adapt-lr", "0"]):
        with caplog.at_level(logging.ERROR):
            caplog.clear()
            assert main(["predict", "--input", str(mini_tree), "--output", str(tmp_path / "out"), *flags]) == 2
        assert len(caplog.records) == 1 and "--adapt" in caplog.text and "\n" not in caplog.records[0].getMessage(), flags
    assert not (tmp_path / "out").exists() or not any((tmp_path / "out").rglob("*.mat"))
