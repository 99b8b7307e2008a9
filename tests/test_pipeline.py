"""predict: end to end on a miniature tree, resumability, and every kind of bad input."""

import logging
import os
import threading

import numpy as np
import pytest
import scipy.io

from genre.evaluation.reference import reference_image
from genre import pipeline
from genre.cli import main
from genre.data.cmrx import find_cases
from genre.data.contract import OutputMode
from genre.data.matio import MatArray, write_mat73
from genre.recon.zero_filled import ZeroFilled


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
    elif how == "missing-mask":
        case.mask_path.unlink()
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
    ("missing-mask", "no mask file found"),
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
