"""The bad-input corpus: every kind of bad input `genre predict` handles, in one tree with good files.

Each kind sits in its own patient folder of one small validation tree, beside good files, and
``genre predict`` runs once over the tree in a subprocess, as the harness runs it. Every good
file must be written; each bad kind must get exactly one per-file error line naming its file
(the ``FAILED`` line; the summary at the end repeats it), or, where the file is accepted, exactly
one warning line naming it and an output; no traceback anywhere; exit status 1.
docs/failure-modes.md lists what each kind does.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import h5py
import numpy as np
import scipy.io

from conftest import write_case
from genre.data.matio import MatArray, write_mat73

ROOT = Path(__file__).resolve().parents[1]
FRAMES, NY, NX, COILS = 2, 12, 16, 2


@dataclass(frozen=True)
class Files:
    """The files of one case: its k-space and mask, the folder its output goes to, and a scratch folder."""

    kus: Path
    mask: Path
    out_folder: Path
    scratch: Path

    def kspace(self) -> np.ndarray:
        return _kspace(self.kus)


def _kspace(path: Path) -> np.ndarray:
    with MatArray(path, ["kus"]) as kus:
        return kus.complex64()


def _h5(path: Path, build: Callable[[h5py.File], None]) -> None:
    with h5py.File(path, "w", userblock_size=512) as handle:
        build(handle)


def _non_finite(f: Files) -> None:
    k = f.kspace()
    k.flat[5] = np.inf
    write_mat73(f.kus, {"kus": k})


def _huge(f: Files) -> None:
    # A 2 KB file declaring 10^6 frames (never written): the shared 2-D mask fits its ky, kx.
    complex64 = np.dtype([("real", "<f4"), ("imag", "<f4")])
    _h5(f.kus, lambda h: h.create_dataset("kus", shape=(10**6, 1, 16, 64, 64), dtype=complex64))
    write_mat73(f.mask, {"mask": np.ones((64, 64))})


def _struct(f: Files) -> None:
    _h5(f.kus, lambda h: h.create_group("kus").attrs.create("MATLAB_class", np.bytes_("struct")))


def _char(f: Files) -> None:
    def build(h):
        h.create_dataset("kus", data=np.frombuffer(b"kspace here!", np.uint8).astype(np.uint16).reshape(1, 12))
        h["kus"].attrs["MATLAB_class"] = np.bytes_("char")

    _h5(f.kus, build)


def _compound(f: Files) -> None:
    _h5(f.kus, lambda h: h.create_dataset("kus", data=np.zeros((FRAMES, 1, COILS, NY, NX), [("re", "<f4"), ("im", "<f4")])))


def _empty_array(f: Files) -> None:
    def build(h):
        # How MATLAB saves `kus = zeros(0, 5)`: the dimensions, flagged as empty.
        h.create_dataset("kus", data=np.array([0, 5], np.uint64))
        h["kus"].attrs["MATLAB_class"] = np.bytes_("double")
        h["kus"].attrs["MATLAB_empty"] = np.uint8(1)

    _h5(f.kus, build)


def _v5_truncated(f: Files) -> None:
    scipy.io.savemat(f.kus, {"kus": f.kspace().T})
    f.kus.write_bytes(f.kus.read_bytes()[:300])


def _masked(values: np.ndarray) -> Callable[[Files], None]:
    return lambda f: write_mat73(f.mask, {"mask": values})


def _empty_frame() -> np.ndarray:
    mask = np.zeros((FRAMES, NY, NX))
    mask[0, ::2] = 1
    return mask


def _link_output(f: Files) -> None:
    f.out_folder.parent.mkdir(parents=True)
    (f.scratch / "elsewhere").mkdir()
    f.out_folder.symlink_to(f.scratch / "elsewhere", target_is_directory=True)


def _unreadable(f: Files) -> None:
    f.kus.chmod(0)


def _folder(f: Files) -> None:
    f.kus.unlink()
    f.kus.mkdir()


def _zero_without_mask(f: Files) -> None:
    f.mask.unlink()
    write_mat73(f.kus, {"kus": np.zeros((FRAMES, 1, COILS, NY, NX), np.complex64)})


# (name, builder, expected outcome, a fragment of its message). Outcomes: "error" (one FAILED
# line naming the file, no output), "warning" (one warning line naming it, output written).
KINDS: list[tuple[str, Callable[[Files], None], str, str]] = [
    ("random bytes", lambda f: f.kus.write_bytes(np.random.default_rng(0).bytes(3000)), "error", "not a readable MATLAB file"),
    ("empty file", lambda f: f.kus.write_bytes(b""), "error", "not a readable MATLAB file"),
    ("truncated HDF5", lambda f: f.kus.write_bytes(f.kus.read_bytes()[:1500]), "error", "truncated"),
    ("truncated MAT v5", _v5_truncated, "error", "not a readable MATLAB file"),
    ("several variables, none kus", lambda f: write_mat73(f.kus, {"a": np.zeros(2), "b": np.zeros(2)}), "error", "no variable 'kus'"),
    ("six dimensions", lambda f: write_mat73(f.kus, {"kus": np.zeros((2, 1, 1, COILS, NY, NX), np.complex64)}), "error", "dimensions"),
    ("Inf in k-space", _non_finite, "error", "NaN or Inf"),
    ("huge declared shape", _huge, "error", "of memory to reconstruct"),
    ("struct variable", _struct, "error", "struct or cell"),
    ("char variable", _char, "error", "MATLAB char"),
    ("compound not real/imag", _compound, "error", "not real/imag"),
    ("empty MATLAB array", _empty_array, "error", "empty"),
    ("no mask file", lambda f: f.mask.unlink(), "warning", "derived the mask from the nonzero k-space samples"),
    ("zero-byte mask", lambda f: f.mask.write_bytes(b""), "error", "not a readable MATLAB file"),
    ("mask not HDF5", lambda f: f.mask.write_text("a mask in words"), "error", "not a readable MATLAB file"),
    ("mask shape mismatch", _masked(np.ones((FRAMES, NY, NX - 1))), "error", "does not fit k-space"),
    ("mask values not 0/1", _masked(np.full((FRAMES, NY, NX), 0.5)), "error", "0 or 1"),
    ("all-zero mask", _masked(np.zeros((FRAMES, NY, NX))), "error", "mask is all zero"),
    ("mask frame samples nothing", _masked(_empty_frame()), "error", "samples nothing in frame(s) 2"),
    ("output folder is a link", _link_output, "error", "is a symbolic link"),
    ("lone variable not named kus", lambda f: write_mat73(f.kus, {"kdata": f.kspace()}), "warning", "its only variable 'kdata'"),
    ("real-valued k-space", lambda f: write_mat73(f.kus, {"kus": f.kspace().real.copy()}), "warning", "real-valued k-space (float32)"),
    ("integer k-space", lambda f: write_mat73(f.kus, {"kus": (f.kspace().real * 1e3).astype(np.int16)}), "warning", "(int16)"),
    ("all-zero k-space", lambda f: write_mat73(f.kus, {"kus": np.zeros((FRAMES, 1, COILS, NY, NX), np.complex64)}), "warning", "all zero"),
    ("all-zero k-space, no mask file", _zero_without_mask, "error", "no mask file, and the k-space is all zero"),
    ("folder named like a kus file", _folder, "warning", "a folder named like an undersampled file"),
]


def _permission_bits_bind() -> bool:
    """Whether this process is refused a file it has no read permission for (root usually is not)."""
    with tempfile.NamedTemporaryFile() as probe:
        os.chmod(probe.name, 0)
        return not os.access(probe.name, os.R_OK)


if _permission_bits_bind():
    KINDS.append(("unreadable file", _unreadable, "error", "Permission denied"))


def _case(root: Path, patient: str, **kwargs) -> Path:
    return write_case(root, "cine_sax", "Cine", FRAMES, 1, True, ny=NY, nx=NX, coils=COILS, patient=patient, **kwargs)


def _output(out: Path, root: Path, kus: Path) -> Path:
    return out / kus.relative_to(root)


def test_every_bad_input_gets_one_line_and_the_good_files_are_written(tmp_path):
    root, out = tmp_path / "input", tmp_path / "output"
    good = [
        write_case(root, "cine_sax", "Cine", 3, 2, True, patient="P001"),
        write_case(root, "cine_lax_4ch", "Cine", 3, 1, True, patient="P002"),
        write_case(root, "T1w", "T1w", 1, 2, False, patient="P003", seed=3),
    ]
    v5 = _case(root, "P004")  # MAT v5 input: read with scipy, as the contract allows
    scipy.io.savemat(v5, {"kus": _kspace(v5).T})
    good.append(v5)
    bad = {}
    for i, (name, build, outcome, fragment) in enumerate(KINDS):
        kus = _case(root, f"P{100 + i}")
        files = Files(kus, Path(str(kus).replace("UnderSample_", "Mask_").replace("_kus_", "_mask_")),
                      _output(out, root, kus).parent, tmp_path / f"scratch{i}")
        files.scratch.mkdir()
        build(files)
        bad[name] = (kus, outcome, fragment)
    assert len(KINDS) >= 15

    result = subprocess.run(
        [sys.executable, "-m", "genre", "predict", "--input", str(root), "--output", str(out), "--method", "zero-filled",
         "--device", "cpu"],
        cwd=ROOT, capture_output=True, text=True, timeout=300, env={**os.environ, "TQDM_DISABLE": "1"},
    )
    log = result.stdout + result.stderr
    lines = log.splitlines()
    assert "Traceback" not in log, log
    assert result.returncode == 1, log
    for kus in good:
        assert _output(out, root, kus).is_file(), (kus, log)
    failed = [line for line in lines if " ERROR FAILED " in line]
    warnings = [line for line in lines if " WARNING " in line]
    for name, (kus, outcome, fragment) in bad.items():
        if outcome == "error":
            mine = [line for line in failed if str(kus) in line]
            assert len(mine) == 1 and fragment in mine[0], (name, mine, log)
            assert not _output(out, root, kus).is_file(), name
        else:
            mine = [line for line in warnings if str(kus) in line]
            assert len(mine) == 1 and fragment in mine[0], (name, mine, log)
            assert _output(out, root, kus).is_file() == (name != "folder named like a kus file"), name
    assert len(failed) == sum(outcome == "error" for _, _, outcome, _ in KINDS), failed
    [linked] = [i for i, kind in enumerate(KINDS) if kind[0] == "output folder is a link"]
    assert not list((tmp_path / f"scratch{linked}" / "elsewhere").iterdir()), "nothing is written through the link"
