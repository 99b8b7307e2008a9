"""BART's file format and binary: ``.cfl``/``.hdr`` arrays, its dimension meanings, running a tool.

A ``.cfl`` file is complex64 in Fortran (column-major) order, its dimensions in the ``.hdr``
beside it, always padded to 16. Used by the BART reconstruction (:mod:`genre.recon.bart`) and
by the BART phantom family of :mod:`genre.data.heldout`.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

import numpy as np

#: Number of dimensions of every BART array.
BART_DIMS = 16
#: BART dimension indices of the axes used here (misc/mri.h).
KY_DIM, KX_DIM, COIL_DIM, TIME_DIM = 0, 1, 3, 10


def write_cfl(path_stem: Path | str, array: np.ndarray) -> None:
    """Write ``array`` (up to 16 axes, any layout) as BART's ``STEM.hdr`` + ``STEM.cfl`` (complex64, Fortran order)."""
    array = np.asarray(array, dtype=np.complex64)
    if array.ndim > BART_DIMS:
        raise ValueError(f"BART arrays have at most {BART_DIMS} dimensions, got {array.ndim}")
    dims = array.shape + (1,) * (BART_DIMS - array.ndim)
    Path(f"{path_stem}.hdr").write_text("# Dimensions\n" + " ".join(map(str, dims)) + "\n")
    array.ravel(order="F").tofile(f"{path_stem}.cfl")


def read_cfl(path_stem: Path | str) -> np.ndarray:
    """Read BART's ``STEM.hdr`` + ``STEM.cfl`` into a complex64 array of all 16 dimensions of its header."""
    lines = Path(f"{path_stem}.hdr").read_text().splitlines()
    dims = [int(n) for n in lines[lines.index("# Dimensions") + 1].split()]
    dims += [1] * (BART_DIMS - len(dims))
    return np.fromfile(f"{path_stem}.cfl", dtype=np.complex64).reshape(dims, order="F")


def to_bart(array: np.ndarray, dims: tuple[int, ...]) -> np.ndarray:
    """Put axis ``i`` of ``array`` at BART dimension ``dims[i]``; every other dimension is 1.

    E.g. k-space ``(frames, coils, ky, kx)`` with ``dims = (10, 3, 0, 1)``.
    """
    shape = [1] * BART_DIMS
    for axis, dim in enumerate(dims):
        shape[dim] = array.shape[axis]
    return np.transpose(array, np.argsort(dims)).reshape(shape)


def from_bart(array: np.ndarray, dims: tuple[int, ...]) -> np.ndarray:
    """The inverse of :func:`to_bart`: BART dimension ``dims[i]`` becomes axis ``i``; the others must be 1."""
    ordered = sorted(dims)
    squeezed = array.reshape([array.shape[d] for d in ordered])
    return np.transpose(squeezed, [ordered.index(d) for d in dims])


def run_bart(executable: str, workdir: Path, step: str, *args: str) -> None:
    """Run ``bart STEP ARGS`` in ``workdir``; a failure raises ``ValueError`` with the step and its last stderr line."""
    done = subprocess.run([executable, step, *args], cwd=workdir, capture_output=True, text=True)
    if done.returncode != 0:
        lines = [line.strip() for line in done.stderr.splitlines() if line.strip()]
        raise ValueError(f"bart {step} failed: {lines[-1] if lines else f'exit status {done.returncode}'}")
