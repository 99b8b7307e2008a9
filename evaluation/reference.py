"""The arrays a score compares: ground truth built from full k-space, and ``img4ranking`` files.

Everything returned here is in **MATLAB order** ``(x, y[, z[, t]])`` with trailing singletons
dropped, the layout of the output contract (``genre.data.contract``).

Ground truth for a case of a validation-like tree is found, in this order:

1. ``FullSample_<T>/.../<stem>.mat`` (:func:`genre.data.cmrx.fullsample_path`) holding
   ``kspace`` (or the 2024 name ``kspace_full``): the RSS image of every needed (frame, slice),
   read one slice at a time, then reduced by ``contract.reduce_image`` in the requested mode;
2. the same file holding ``img4ranking``: the organizers' own ground-truth layout, used as is;
3. an ``img4ranking`` at the case's own path: a tree of ground-truth images mirroring the
   submission layout, used as is.

The output mode applies to the first source only; image ground truth is already reduced.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import torch

from genre.data.cmrx import FULLY_SAMPLED_VARIABLES, Case, fullsample_path, kspace_layout, stored_index
from genre.data.contract import OutputMode, reduce_image, selection
from genre.data.matio import MatArray, MatFileError
from genre.kspace import rss_from_kspace

IMAGE_NAME = "img4ranking"


class GroundTruthError(Exception):
    """No usable ground truth for a case; ``str()`` is one line naming the file."""


def read_img4ranking(path: os.PathLike | str) -> np.ndarray:
    """The ``img4ranking`` variable of a MAT file as float32 in MATLAB order. Raises ``MatFileError``."""
    with MatArray(path, names=(IMAGE_NAME,)) as array:
        if array.name != IMAGE_NAME:
            raise MatFileError(path, f"holds {array.name!r} where the grader reads {IMAGE_NAME!r}")
        return _matlab_order(array.float32())


def _matlab_order(values: np.ndarray) -> np.ndarray:
    # MatArray returns h5py order, MATLAB's dimensions reversed.
    return np.ascontiguousarray(values.T)


def image_from_kspace(kspace: MatArray, stem: str, mode: OutputMode, single_coil: bool = False) -> np.ndarray:
    """The ground-truth ``img4ranking`` of a full k-space file, MATLAB order.

    Only the (frame, slice) pairs the mode keeps are transformed, one slice read at a time, so
    a ranking reference of a cine file reads 6 (frame, slice) planes. ``single_coil``: the file
    has no coil axis (a ``SingleCoil`` tree). Raises ``MatFileError``.
    """
    try:
        frames, slices, coils, ny, nx = kspace_layout(stem, kspace.shape, single_coil)
    except ValueError as exc:
        raise MatFileError(kspace.path, str(exc)) from None
    keep_frames, keep_slices = selection(stem, frames, slices, mode)
    image = np.zeros((frames, slices, ny, nx), dtype=np.float32)
    for t in keep_frames:
        for z in keep_slices:
            plane = kspace.complex64(stored_index(kspace.shape, single_coil, t, z)).reshape(coils, ny, nx)
            image[t, z] = rss_from_kspace(torch.from_numpy(plane)).numpy()
    return reduce_image(image, stem, mode)


def reference_image(case: Case, gt_root: os.PathLike | str, mode: OutputMode) -> np.ndarray:
    """The ground truth for ``case`` (see the module docstring), MATLAB order.

    Raises ``MatFileError`` for an unreadable file, :class:`GroundTruthError` when none exists.
    """
    full = fullsample_path(case, gt_root)
    if full.is_file():
        with MatArray(full, names=(*FULLY_SAMPLED_VARIABLES, IMAGE_NAME)) as array:
            if array.name == IMAGE_NAME:
                return _matlab_order(array.float32())
            if array.name in FULLY_SAMPLED_VARIABLES:
                return image_from_kspace(array, case.stem, mode, case.single_coil)
            raise MatFileError(full, f"holds {array.name!r}, neither k-space ({' or '.join(FULLY_SAMPLED_VARIABLES)}) nor {IMAGE_NAME!r}")
    with MatArray(case.kus_path, names=(IMAGE_NAME,)) as array:
        if array.name == IMAGE_NAME:
            return _matlab_order(array.float32())
    raise GroundTruthError(f"{Path(full)}: no ground truth (no such file, and {case.kus_path.name} holds no {IMAGE_NAME!r})")
