"""Data-loading throughput: slices per second read from a MATLAB v7.3 k-space file through MatArray.

The file is written by :func:`genre.data.matio.write_mat73` (contiguous HDF5, no compression,
as the synthetic trees are) at the benchmark size, ``(frames, slices, coils, ky, kx)`` complex64
in h5py order, and read back one slice at a time as ``genre predict`` reads it: a strided read
of every frame of one slice, converted to complex64. The file was just written, so it is read
from the page cache: this measures decoding and copying, not the disk. The organizers' files,
saved by MATLAB, may be chunked and compressed and then read slower.
"""

from __future__ import annotations

import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from benchmarks.timing import time_call
from genre.data.matio import MatArray, write_mat73


@dataclass(frozen=True)
class LoadingRate:
    """Read rate of one file; ``seconds_per_slice`` is the median over ``repeats`` full passes."""

    frames: int
    slices: int
    coils: int
    size: tuple[int, int]
    file_bytes: int
    seconds_per_slice: float
    repeats: int

    @property
    def slices_per_s(self) -> float:
        return 1.0 / self.seconds_per_slice

    @property
    def slice_frames_per_s(self) -> float:
        return self.frames / self.seconds_per_slice


def time_loading(frames: int, slices: int, coils: int, size: tuple[int, int], repeats: int) -> LoadingRate:
    """Write a random k-space file of this shape to a temporary folder and time reading it slice by slice."""
    rng = np.random.default_rng(0)
    shape = (frames, slices, coils, *size)
    kspace = (rng.standard_normal(shape, np.float32) + 1j * rng.standard_normal(shape, np.float32)).astype(np.complex64)
    with tempfile.TemporaryDirectory(prefix="genre-speed-") as folder:
        path = Path(folder) / "kus.mat"
        write_mat73(path, {"kus": kspace})
        del kspace

        def read_every_slice() -> None:
            with MatArray(path, ["kus"]) as kus:
                for z in range(slices):
                    kus.complex64((slice(None), z))

        timing = time_call(read_every_slice, torch.device("cpu"), repeats)
        file_bytes = path.stat().st_size
    return LoadingRate(frames, slices, coils, size, file_bytes, timing.median_s / slices, repeats)
