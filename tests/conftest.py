"""Shared fixtures: a hand-made miniature CMRxRecon validation tree (independent of genre.data.synthetic), and a
synthetic training tree shared by the tests of the training data modules."""

from __future__ import annotations

import os

# One thread per process: the suite shares two cores with other work (a training run, the DDP
# test's second process), where two OpenMP threads per process made the training tests twice as
# slow as one (14 s against 27 s, measured beside a training run). Set before torch starts its pool.
os.environ.setdefault("OMP_NUM_THREADS", "1")

from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402

from genre.data.matio import write_mat73  # noqa: E402
from genre.data.synthetic import SynthConfig, make_tree  # noqa: E402
from genre.kspace import fft2c  # noqa: E402

torch.set_num_threads(1)  # in case torch was started before this file (a plugin)


def pytest_collection_modifyitems(config, items):
    if torch.cuda.is_available():
        return
    skip = pytest.mark.skip(reason="needs a CUDA device")
    for item in items:
        if "gpu" in item.keywords:
            item.add_marker(skip)


def phantom_kspace(frames: int, slices: int, coils: int, ny: int, nx: int, seed: int = 0) -> np.ndarray:
    """Complex64 k-space ``(frames, slices, coils, ky, kx)`` of a smooth moving ellipse seen by smooth coils."""
    rng = np.random.default_rng(seed)
    y, x = np.meshgrid(np.linspace(-1, 1, ny), np.linspace(-1, 1, nx), indexing="ij")
    images = np.empty((frames, slices, ny, nx), np.complex64)
    for t in range(frames):
        for z in range(slices):
            r = 0.25 + 0.05 * np.sin(2 * np.pi * t / max(frames, 1)) + 0.02 * z
            body = ((x / 0.8) ** 2 + (y / 0.65) ** 2 < 1).astype(float)
            heart = ((x - 0.1) ** 2 + y**2 < r**2).astype(float)
            images[t, z] = (0.5 * body + heart) * np.exp(1j * (0.5 * x + 0.3 * y))
    angles = np.linspace(0, 2 * np.pi, coils, endpoint=False)
    maps = np.stack([np.exp(-((x - 0.9 * np.cos(a)) ** 2 + (y - 0.9 * np.sin(a)) ** 2)) for a in angles]).astype(np.complex64)
    coil_images = images[:, :, None] * maps
    k = fft2c(torch.from_numpy(coil_images)).numpy()
    noise = 1e-3 * (rng.standard_normal(k.shape) + 1j * rng.standard_normal(k.shape))
    return (k + noise).astype(np.complex64)


def uniform_mask(frames: int, ny: int, nx: int, step: int, acs: int = 8) -> np.ndarray:
    mask = np.zeros((frames, ny, nx))
    mask[:, ::step] = 1
    c = ny // 2
    mask[:, c - acs // 2 : c - acs // 2 + acs] = 1
    return mask


def kt_mask(frames: int, ky: int, kx: int) -> torch.Tensor:
    """k-t pattern ``(frames, ky, kx)``: every third line shifted per frame, plus 8 central lines."""
    mask = torch.zeros(frames, ky, kx)
    for f in range(frames):
        mask[f, f % 3 :: 3] = 1
    mask[:, ky // 2 - 4 : ky // 2 + 4] = 1
    return mask


# (stem, modality, frames, slices, with_time_axis)
MINI_SERIES = [
    ("cine_sax", "Cine", 4, 3, True),
    ("cine_lax_4ch", "Cine", 4, 1, True),
    ("T1w", "T1w", 1, 3, False),
]


def write_case(root: Path, stem: str, modality: str, frames: int, slices: int, timed: bool, ny=21, nx=24, coils=3,
               pattern="Uniform", acc=4, centre="Center001", vendor="Siemens_30T_CIMA.X", patient="P001", task="TaskR1", seed=0):
    base = root / task / "MultiCoil" / modality / "ValidationSet"
    rel = Path(centre, vendor, patient)
    k = phantom_kspace(frames, slices, coils, ny, nx, seed)
    mask = uniform_mask(frames, ny, nx, acc)
    stored_k = k if timed else k[0]
    stored_mask = mask if frames > 1 else mask[0]
    kus = stored_k * (mask[:, None, None] if timed else mask[0][None, None])
    write_mat73(base / f"FullSample_{task}" / rel / f"{stem}.mat", {"kspace": stored_k})
    kus_path = base / f"UnderSample_{task}" / rel / f"{stem}_kus_{pattern}{acc}.mat"
    write_mat73(kus_path, {"kus": kus.astype(np.complex64)})
    write_mat73(base / f"Mask_{task}" / rel / f"{stem}_mask_{pattern}{acc}.mat", {"mask": stored_mask})
    return kus_path


@pytest.fixture
def mini_tree(tmp_path) -> Path:
    root = tmp_path / "input"
    for i, (stem, modality, frames, slices, timed) in enumerate(MINI_SERIES):
        write_case(root, stem, modality, frames, slices, timed, seed=i)
    return root


# One stem of every storage kind: 5-D stack, nz = 1 with time, 4-D single-frame stack,
# no-time stack (neighbouring slices), no-time single slice (3-D); two domains of two patients.
TRAINING_TREE = SynthConfig(layout="train", domains=2, cases=2, size=(32, 32), coils=4, frames=4, slices=3,
                            stems=("cine_sax", "cine_lax_4ch", "lge_sax", "T1w", "blackblood"), accelerations=(8, 16), acs=8)


@pytest.fixture(scope="session")
def training_tree(tmp_path_factory) -> Path:
    """A synthetic training tree (:data:`TRAINING_TREE`); tests must not write into it."""
    root = tmp_path_factory.mktemp("train_tree")
    make_tree(root, TRAINING_TREE)
    return root
