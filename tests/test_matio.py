import errno
import fcntl
import os
import subprocess
import sys
from pathlib import Path

import h5py
import numpy as np
import pytest
import scipy.io

from genre.data.matio import (MatArray, MatFileError, atomic_path, matlab_shape, remove_stale_temporaries,
                              temporary_target, write_img4ranking, write_mat73)

ROOT = Path(__file__).resolve().parents[1]


def test_mat73_roundtrip_lazy_and_matlab_header(tmp_path):
    k = (np.arange(2 * 3 * 4 * 5 * 6).reshape(2, 3, 4, 5, 6) * (1 + 2j)).astype(np.complex64)
    path = tmp_path / "k.mat"
    write_mat73(path, {"kspace": k})
    assert h5py.is_hdf5(path)
    assert path.read_bytes()[:19] == b"MATLAB 7.3 MAT-file"
    with MatArray(path, ["kspace"]) as arr:
        assert arr.shape == k.shape and arr.name == "kspace"
        np.testing.assert_array_equal(arr.complex64((slice(None), 1)), k[:, 1])
        np.testing.assert_array_equal(arr.complex64(), k)
    with h5py.File(path) as f:
        assert f["kspace"].attrs["MATLAB_class"] == b"single"


def test_double_precision_compound_and_real_masks(tmp_path):
    k = (np.random.default_rng(0).standard_normal((3, 4)) * 1j + 1).astype(np.complex128)
    write_mat73(tmp_path / "d.mat", {"kus": k, "other": np.zeros(2)})
    with MatArray(tmp_path / "d.mat", ["kus"]) as arr:
        out = arr.complex64()
    assert out.dtype == np.complex64
    np.testing.assert_allclose(out, k.astype(np.complex64))
    write_mat73(tmp_path / "m.mat", {"mask": np.eye(3)})
    with MatArray(tmp_path / "m.mat", ["mask"]) as arr:
        np.testing.assert_array_equal(arr.float32(), np.eye(3, dtype=np.float32))


def test_single_unnamed_variable_is_accepted_but_ambiguity_is_an_error(tmp_path):
    write_mat73(tmp_path / "one.mat", {"kspace_full": np.ones((2, 2), np.complex64)})
    with MatArray(tmp_path / "one.mat", ["kus"]) as arr:
        assert arr.name == "kspace_full"
    write_mat73(tmp_path / "two.mat", {"a": np.ones(2), "b": np.ones(2)})
    with pytest.raises(MatFileError, match=r"two\.mat: no variable 'kus' \(the file holds 'a', 'b'\)"):
        MatArray(tmp_path / "two.mat", ["kus"])


def test_scipy_fallback_transposes_to_h5py_order(tmp_path):
    matlab = np.arange(4 * 3 * 2).reshape(4, 3, 2).astype(np.complex64)  # (nx, ny, nc)
    scipy.io.savemat(tmp_path / "v5.mat", {"kus": matlab})
    with MatArray(tmp_path / "v5.mat", ["kus"]) as arr:
        assert arr.shape == (2, 3, 4)
        np.testing.assert_array_equal(arr.complex64(), matlab.T)


def test_a_mat_v5_file_is_sized_from_its_header_and_loaded_only_when_read(tmp_path, monkeypatch):
    scipy.io.savemat(tmp_path / "v5.mat", {"kus": np.ones((4, 3, 2), np.complex64)})
    loads = []
    loadmat = scipy.io.loadmat
    monkeypatch.setattr(scipy.io, "loadmat", lambda *args, **kwargs: loads.append(args) or loadmat(*args, **kwargs))
    with MatArray(tmp_path / "v5.mat", ["kus"]) as arr:
        # The header says single but not whether complex: the size is that of complex singles.
        assert arr.shape == (2, 3, 4) and arr.reads_whole and arr.nbytes == 24 * 8
        assert not loads
        assert arr.is_complex and len(loads) == 1
        arr.complex64()
        assert len(loads) == 1


def _hdf5(path, name, data, **attrs):
    with h5py.File(path, "w") as handle:
        handle.create_dataset(name, data=data)
        handle[name].attrs.update(attrs)


@pytest.mark.parametrize("data,attrs,problem", [
    (np.frombuffer(b"abc", np.uint8).astype(np.uint16), {"MATLAB_class": np.bytes_("char")}, "is a MATLAB char, not a numeric array"),
    (np.array([0, 3], np.uint64), {"MATLAB_class": np.bytes_("double"), "MATLAB_empty": np.uint8(1)}, "is an empty MATLAB array"),
    (np.zeros((2, 0, 3)), {}, r"is empty \(shape \(2, 0, 3\)"),
    (np.zeros(3, [("re", "<f4"), ("im", "<f4")]), {}, r"is a compound of \('re', 'im'\), not real/imag"),
    (np.array([b"ab", b"cd"]), {}, "holds |S2 elements, not numbers"),
])
def test_what_is_not_a_numeric_array_is_refused_before_reading(tmp_path, data, attrs, problem):
    path = tmp_path / "k.mat"
    _hdf5(path, "kus", data, **attrs)
    with pytest.raises(MatFileError, match=f"k.mat: variable 'kus' {problem}"):
        MatArray(path, ["kus"])


def test_declared_size_and_type_come_from_the_header(tmp_path):
    complex64 = np.dtype([("real", "<f4"), ("imag", "<f4")])
    with h5py.File(tmp_path / "k.mat", "w") as handle:  # declared, never written: the file stays small
        handle.create_dataset("kus", shape=(10**6, 2, 4, 8), dtype=complex64)
    with MatArray(tmp_path / "k.mat", ["kus"]) as arr:
        assert arr.nbytes == 10**6 * 64 * 8 and arr.itemsize == 8 and not arr.reads_whole and arr.is_complex
    write_mat73(tmp_path / "r.mat", {"kus": np.ones((2, 3), np.int16)})
    with MatArray(tmp_path / "r.mat", ["kus"]) as arr:
        assert not arr.is_complex and arr.dtype == np.int16
        np.testing.assert_array_equal(arr.complex64(), np.ones((2, 3), np.complex64))


@pytest.mark.parametrize("content,problem", [(b"", "not a readable MATLAB file"), (b"hello world" * 20, "not a readable MATLAB file")])
def test_garbage_files_give_one_line_errors(tmp_path, content, problem):
    path = tmp_path / "bad.mat"
    path.write_bytes(content)
    with pytest.raises(MatFileError) as info:
        MatArray(path, ["kus"])
    assert str(info.value).startswith(str(path)) and problem in str(info.value)
    assert "\n" not in str(info.value)


def test_truncated_hdf5_file_is_a_clear_error(tmp_path):
    path = tmp_path / "k.mat"
    write_mat73(path, {"kus": np.ones((4, 64, 64), np.complex64)})
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(MatFileError, match=str(path)):
        with MatArray(path, ["kus"]) as arr:
            arr.complex64()


def test_missing_file(tmp_path):
    with pytest.raises(MatFileError, match="file not found"):
        MatArray(tmp_path / "nope.mat")


def test_write_img4ranking_is_v5_float32_and_atomic(tmp_path):
    img = np.random.default_rng(1).random((5, 4, 2)).astype(np.float64)
    path = tmp_path / "sub" / "x_kus_Uniform8.mat"
    write_img4ranking(path, img)
    loaded = scipy.io.loadmat(path)["img4ranking"]
    assert loaded.dtype == np.float32 and loaded.shape == (5, 4, 2)
    assert sorted(p.name for p in path.parent.iterdir()) == [path.name]  # no temporary left behind
    bad = img.copy()
    bad[0, 0, 0] = np.nan
    with pytest.raises(MatFileError, match="non-finite"):
        write_img4ranking(tmp_path / "sub" / "nan.mat", bad)
    assert sorted(p.name for p in path.parent.iterdir()) == [path.name]


def test_failed_write_leaves_previous_file_intact(tmp_path, monkeypatch):
    path = tmp_path / "out.mat"
    write_img4ranking(path, np.ones((3, 3)))

    def boom(*args, **kwargs):
        raise OSError("disk full")

    monkeypatch.setattr(scipy.io, "savemat", boom)
    with pytest.raises(OSError):
        write_img4ranking(path, np.zeros((3, 3)))
    np.testing.assert_array_equal(scipy.io.loadmat(path)["img4ranking"], np.ones((3, 3), np.float32))
    assert [p.name for p in tmp_path.iterdir()] == ["out.mat"]


# A writer that stops inside atomic_path with half a file written: killed (kill -9) or held open until told.
WRITER = """
import os, signal, sys
from genre.data.matio import atomic_path
write = atomic_path(sys.argv[1])
tmp = write.__enter__()
tmp.write_bytes(b"half a file")
print(tmp, flush=True)
if sys.argv[2] == "kill":
    os.kill(os.getpid(), signal.SIGKILL)
sys.stdin.read()
tmp.write_bytes(b"the whole file")
write.__exit__(None, None, None)
"""


def _writer(path: Path, how: str) -> tuple[subprocess.Popen, Path]:
    child = subprocess.Popen([sys.executable, "-c", WRITER, str(path), how], cwd=ROOT, text=True,
                             stdin=subprocess.PIPE, stdout=subprocess.PIPE, env={**os.environ, "PYTHONPATH": str(ROOT)})
    return child, Path(child.stdout.readline().strip())


def test_a_killed_writers_temporary_is_removed_and_a_live_writers_kept(tmp_path):
    dead, live = tmp_path / "dead" / "a_kus_Uniform8.mat", tmp_path / "live" / "b_kus_Uniform8.mat"
    killed, stale = _writer(dead, "kill")
    killed.wait()
    running, busy = _writer(live, "hold")
    assert stale.is_file() and busy.is_file() and temporary_target(stale.name) == dead.name
    others = [dead.parent / n for n in (".c_kus_Uniform8.mat.abcd1234.part", ".a_kus_Uniform8.mat.part", "notes.txt")]
    for path in others:
        path.write_text("not ours to delete")
    try:
        assert remove_stale_temporaries(dead.parent, {dead.name}) == [stale]
        assert remove_stale_temporaries(live.parent, {live.name}) == []  # being written right now
        assert busy.is_file() and all(p.is_file() for p in others)
        running.stdin.close()
        assert running.wait(timeout=30) == 0
    finally:
        running.kill()
    assert live.read_bytes() == b"the whole file" and not busy.exists()
    assert remove_stale_temporaries(tmp_path / "absent", {"x.mat"}) == []


def test_without_locks_writes_still_happen_and_no_temporary_is_called_stale(tmp_path, monkeypatch):
    def no_locks(fd, operation):
        raise OSError(errno.ENOLCK, "No locks available")

    monkeypatch.setattr(fcntl, "flock", no_locks)
    write_img4ranking(tmp_path / "x.mat", np.ones((2, 2)))
    assert scipy.io.loadmat(tmp_path / "x.mat")["img4ranking"].shape == (2, 2)
    with atomic_path(tmp_path / "y.mat") as tmp:
        tmp.write_bytes(b"")
        with pytest.raises(OSError, match="cannot lock"):
            remove_stale_temporaries(tmp_path, {"y.mat"})


def test_matlab_shape_drops_only_trailing_singletons():
    assert matlab_shape((5, 4, 1, 3)) == (5, 4, 1, 3)
    assert matlab_shape((5, 4, 2, 1)) == (5, 4, 2)
    assert matlab_shape((5, 4, 1, 1)) == (5, 4)
    assert matlab_shape((5, 1)) == (5, 1)


def test_compressed_chunks_are_cached_whole_so_slice_reads_decompress_each_chunk_once(tmp_path, monkeypatch):
    """MATLAB compresses v7.3 by default; chunks spanning slices need a cache of the variable, not HDF5's 1 MiB."""
    import genre.data.matio as matio

    rng = np.random.default_rng(0)
    shape = (4, 3, 2, 40, 48)  # (nt, nz, nc, ny, nx)
    values = (rng.standard_normal(shape) + 1j * rng.standard_normal(shape)).astype(np.complex64)
    path = tmp_path / "cine_sax.mat"
    write_mat73(path, {"kspace": values}, chunks=(4, 3, 1, 40, 48), compression="gzip")

    with MatArray(path, ["kspace"]) as data:
        _, nbytes, _ = data._data.id.get_access_plist().get_chunk_cache()
        assert nbytes == values.nbytes  # the whole variable, here under the cap
        assert np.array_equal(np.stack([data.complex64((slice(None), z)) for z in range(3)], axis=1), values)

    monkeypatch.setattr(matio, "CHUNK_CACHE_BYTES", 10_000)
    with MatArray(path, ["kspace"]) as data:
        assert data._data.id.get_access_plist().get_chunk_cache()[1] == 10_000

    contiguous = tmp_path / "contiguous.mat"
    write_mat73(contiguous, {"kspace": values})
    with MatArray(contiguous, ["kspace"]) as data:  # nothing to cache: left as h5py opens it
        assert data._data.chunks is None


def _compressed_kspace_file(path, values):
    """A MATLAB-like v7.3 file: gzip-chunked k-space, a #refs# group, a header of its own (to see it kept)."""
    write_mat73(path, {"kspace": values}, chunks=(*values.shape[:2], 1, *values.shape[3:]), compression="gzip")
    with h5py.File(path, "a") as handle:
        handle.create_group("#refs#").create_dataset("a", data=np.zeros(2))
    with open(path, "r+b") as raw:
        raw.write(b"MATLAB 7.3 MAT-file, written by a test".ljust(128, b" "))


def test_repack_makes_variables_contiguous_and_keeps_values_attributes_and_header(tmp_path):
    from genre.data.matio import is_chunked_mat73, repack_mat73

    rng = np.random.default_rng(1)
    values = (rng.standard_normal((3, 2, 2, 20, 24)) + 1j * rng.standard_normal((3, 2, 2, 20, 24))).astype(np.complex64)
    source = tmp_path / "in" / "cine_sax.mat"
    source.parent.mkdir()
    _compressed_kspace_file(source, values)
    assert is_chunked_mat73(source)

    target = tmp_path / "out" / "cine_sax.mat"
    repack_mat73(source, target)
    assert not is_chunked_mat73(target)
    assert target.read_bytes()[:38] == b"MATLAB 7.3 MAT-file, written by a test"
    with h5py.File(target, "r") as handle:
        assert handle["kspace"].compression is None and handle["kspace"].attrs["MATLAB_class"] == b"single"
        assert "#refs#" in handle
    with MatArray(target, ["kspace"]) as data:
        assert np.array_equal(data.complex64(), values)

    repack_mat73(source, source)  # in place
    assert not is_chunked_mat73(source)
    with MatArray(source, ["kspace"]) as data:
        assert np.array_equal(data.complex64(), values)


def test_repack_command_rewrites_copies_keeps_and_reports_failures(tmp_path, caplog):
    from genre.cli import main
    from genre.data.matio import is_chunked_mat73

    values = np.ones((2, 1, 2, 8, 8), np.complex64)
    tree = tmp_path / "tree" / "Center001"
    tree.mkdir(parents=True)
    _compressed_kspace_file(tree / "compressed.mat", values)
    write_mat73(tree / "contiguous.mat", {"kspace": values})
    (tree / "broken.mat").write_bytes(b"\x89HDF\r\n\x1a\n" + b"\x00" * 64)  # an HDF5 signature, then nothing

    out = tmp_path / "out"
    assert main(["repack", "--input", str(tmp_path / "tree"), "--output", str(out)]) == 1
    assert not is_chunked_mat73(out / "Center001" / "compressed.mat")
    assert (out / "Center001" / "contiguous.mat").read_bytes() == (tree / "contiguous.mat").read_bytes()
    assert not (out / "Center001" / "broken.mat").exists()
    assert any("broken.mat" in r.getMessage() for r in caplog.records if r.levelname == "ERROR")
    assert not list(out.rglob(".*"))  # no temporary file left behind

    (tree / "broken.mat").unlink()
    assert main(["repack", "--input", str(tmp_path / "tree"), "--in-place"]) == 0
    assert not is_chunked_mat73(tree / "compressed.mat")
    assert main(["repack", "--input", str(tmp_path / "tree"), "--output", str(tmp_path / "tree" / "sub")]) == 2
