"""Data-loading throughput: slices per second read from a MATLAB v7.3 k-space file through MatArray.

The file holds random k-space at the benchmark size, ``(frames, slices, coils, ky, kx)``
complex64 in h5py order, in one of two layouts: ``contiguous`` (no compression, as
:func:`genre.data.matio.write_mat73` writes the synthetic trees) or ``gzip`` (deflate level 3
in chunks of one coil's images over all frames and slices: MATLAB compresses v7.3 files by
default, its chunk shapes are not known here, and this one spans slices, the case the reader's
chunk cache is for). It is read back one slice at a time as ``genre predict`` reads it: every
frame of one slice, converted to complex64. The file was just written, so it is read from the
page cache: this measures decompression, decoding and copying, not the disk.
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

    layout: str
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


#: The file layouts :func:`time_loading` writes; see the module docstring.
LAYOUTS = ("contiguous", "gzip")


def time_loading(
    frames: int, slices: int, coils: int, size: tuple[int, int], repeats: int, layout: str = "contiguous"
) -> LoadingRate:
    """Write a random k-space file of this shape and ``layout`` to a temporary folder and time reading it slice by slice."""
    if layout not in LAYOUTS:
        raise ValueError(f"layout must be one of {', '.join(LAYOUTS)}, got {layout!r}")
    rng = np.random.default_rng(0)
    shape = (frames, slices, coils, *size)
    kspace = (rng.standard_normal(shape, np.float32) + 1j * rng.standard_normal(shape, np.float32)).astype(np.complex64)
    with tempfile.TemporaryDirectory(prefix="genre-speed-") as folder:
        path = Path(folder) / "kus.mat"
        if layout == "contiguous":
            write_mat73(path, {"kus": kspace})
        else:
            write_mat73(path, {"kus": kspace}, chunks=(frames, slices, 1, *size), compression="gzip",
                        compression_opts=3)
        del kspace

        def read_every_slice() -> None:
            with MatArray(path, ["kus"]) as kus:
                for z in range(slices):
                    kus.complex64((slice(None), z))

        timing = time_call(read_every_slice, torch.device("cpu"), repeats)
        file_bytes = path.stat().st_size
    return LoadingRate(layout, frames, slices, coils, size, file_bytes, timing.median_s / slices, repeats)
