"""GENRE-CMR inference: adjacent-input gathering, batching, scaling and the reconstruct contract."""

from __future__ import annotations

import pytest
import torch

from genre.weights_file import save_weights
from genre.models.config import preset
from genre.models.generator import Generator
from genre.recon import make_reconstructor
from genre.recon import network as recon_network
from genre.recon.base import MethodUnavailable
from genre.recon.base import SeriesInfo
from genre.models.generator import input_scale
from genre.recon.network import GenreReconstructor, build_genre_reconstructor
from genre.series import adjacent_indices
from genre.series import Neighbours

KY, KX, COILS = 37, 51, 3
WRAP, REFLECT, SLICES = Neighbours.WRAP, Neighbours.REFLECT, Neighbours.SLICES


@pytest.mark.parametrize(
    ("n", "center", "length", "mode", "expected"),
    [
        (10, 0, 5, WRAP, [8, 9, 0, 1, 2]),
        (10, 9, 5, WRAP, [7, 8, 9, 0, 1]),
        (10, 4, 5, WRAP, [2, 3, 4, 5, 6]),
        (3, 1, 5, WRAP, [2, 0, 1, 2, 0]),
        (2, 0, 5, WRAP, [0, 1, 0, 1, 0]),
        (1, 0, 5, WRAP, [0, 0, 0, 0, 0]),
        (10, 0, 5, REFLECT, [2, 1, 0, 1, 2]),
        (10, 9, 5, REFLECT, [7, 8, 9, 8, 7]),
        (10, 4, 5, REFLECT, [2, 3, 4, 5, 6]),
        (3, 0, 5, REFLECT, [2, 1, 0, 1, 2]),
        (3, 2, 7, REFLECT, [1, 0, 1, 2, 1, 0, 1]),
        (2, 1, 5, REFLECT, [1, 0, 1, 0, 1]),
        (1, 0, 5, REFLECT, [0, 0, 0, 0, 0]),
        (5, 0, 5, SLICES, [2, 1, 0, 1, 2]),
        (2, 0, 5, SLICES, [0, 1, 0, 1, 0]),
        (1, 0, 5, SLICES, [0, 0, 0, 0, 0]),
        (4, 3, 1, REFLECT, [3]),
    ],
)
def test_adjacent_indices(n, center, length, mode, expected):
    assert adjacent_indices(n, center, length, mode) == expected


def test_adjacent_indices_rejects_bad_arguments():
    with pytest.raises(ValueError, match="odd"):
        adjacent_indices(5, 0, 4, WRAP)
    with pytest.raises(ValueError, match="outside"):
        adjacent_indices(5, 5, 5, REFLECT)


def _series(frames: int, slices: int, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    mask = torch.zeros(frames, KY, KX)
    for f in range(frames):
        mask[f, f % 4 :: 4] = 1
    mask[:, KY // 2 - 3 : KY // 2 + 3] = 1
    kspace = torch.randn(frames, slices, COILS, KY, KX, dtype=torch.complex64, generator=g)
    # Raw-data-like magnitudes, far from 1: the reconstructor's scaling must cope.
    return 1e-4 * kspace * mask[:, None, None], mask


@pytest.fixture(scope="module")
def reconstructor():
    torch.manual_seed(0)
    return GenreReconstructor(Generator(preset("tiny")), device="cpu", max_batch=3)


@pytest.mark.parametrize(
    ("stem", "frames", "slices", "mode"),
    [("cine_sax", 4, 2, WRAP), ("T1map", 3, 2, REFLECT), ("T2w", 1, 3, SLICES), ("lge_sax", 1, 1, SLICES)],
)
def test_reconstruct_shape_dtype_finite(reconstructor, stem, frames, slices, mode):
    info = SeriesInfo(stem=stem, frames=frames)
    assert info.neighbours is mode
    kspace, mask = _series(frames, slices)
    image = reconstructor.reconstruct(kspace, mask, info)
    assert image.shape == (frames, slices, KY, KX)
    assert image.dtype == torch.float32 and image.device.type == "cpu"
    assert torch.isfinite(image).all() and image.abs().max() > 0


@pytest.mark.parametrize(("stem", "frames", "slices"), [("cine_lax", 4, 2), ("T1map", 3, 1), ("T1w", 1, 4)])
def test_reconstruct_matches_the_generator_on_gathered_inputs(reconstructor, stem, frames, slices):
    """Each output is the generator applied to that target's adjacent stack, scaled to O(1) and back."""
    info = SeriesInfo(stem=stem, frames=frames)
    kspace, mask = _series(frames, slices, seed=1)
    image = reconstructor.reconstruct(kspace, mask, info)
    adj = reconstructor.model.config.adjacent
    f, s = frames - 1, slices - 1  # a target at the end, where wrapping / reflecting matters
    if info.neighbours is SLICES:
        frame_idx, slice_idx = [0] * adj, adjacent_indices(slices, s, adj, SLICES)
    else:
        frame_idx, slice_idx = adjacent_indices(frames, f, adj, info.neighbours), [s] * adj
    stack, stack_mask = kspace[frame_idx, slice_idx][None], mask[frame_idx][None]
    scale = input_scale(stack[:, adj // 2])
    with torch.no_grad():
        expected = reconstructor.model(stack / scale, stack_mask).image()[0] * scale
    assert torch.allclose(image[f, s], expected, rtol=1e-4, atol=1e-9)


def test_batch_size_does_not_change_the_result(reconstructor):
    info = SeriesInfo(stem="cine_sax", frames=5)
    kspace, mask = _series(5, 2)
    one = GenreReconstructor(reconstructor.model, device="cpu", max_batch=1).reconstruct(kspace, mask, info)
    many = GenreReconstructor(reconstructor.model, device="cpu", max_batch=8).reconstruct(kspace, mask, info)
    assert torch.allclose(one, many, rtol=1e-4, atol=1e-9)


class _SmallMemoryGenerator(Generator):
    """Raises CUDA's out-of-memory error for batches above two, as a full GPU would."""

    def forward(self, kspace, mask, return_intermediate=True):
        if kspace.shape[0] > 2:
            raise torch.cuda.OutOfMemoryError("CUDA out of memory (simulated)")
        return super().forward(kspace, mask, return_intermediate)


def test_out_of_memory_halves_the_batch(reconstructor, caplog):
    model = _SmallMemoryGenerator(preset("tiny"))
    model.load_state_dict(reconstructor.model.state_dict())
    info = SeriesInfo(stem="cine_sax", frames=5)
    kspace, mask = _series(5, 1)
    image = GenreReconstructor(model, device="cpu", max_batch=8).reconstruct(kspace, mask, info)
    assert torch.allclose(image, reconstructor.reconstruct(kspace, mask, info), rtol=1e-4, atol=1e-9)
    assert "retrying with 2 target frames" in caplog.text


def test_make_reconstructor_loads_a_checkpoint(tmp_path, reconstructor):
    path = save_weights(tmp_path / "g.safetensors", reconstructor.model)
    loaded = make_reconstructor("genre", torch.device("cpu"), path, max_batch=2)
    assert isinstance(loaded, GenreReconstructor) and loaded.max_batch == 2
    info = SeriesInfo(stem="T1map", frames=3)
    kspace, mask = _series(3, 1)
    expected = reconstructor.reconstruct(kspace, mask, info)
    assert torch.allclose(loaded.reconstruct(kspace, mask, info), expected, rtol=1e-4, atol=1e-9)


def test_shipped_weights_are_the_default(tmp_path, monkeypatch, reconstructor):
    monkeypatch.setattr(recon_network, "SHIPPED_WEIGHTS_DIR", tmp_path)
    with pytest.raises(MethodUnavailable, match="no GENRE-CMR weights shipped"):
        build_genre_reconstructor(None, torch.device("cpu"))
    save_weights(tmp_path / "genre.safetensors", reconstructor.model)
    assert build_genre_reconstructor(None, torch.device("cpu")).max_batch == recon_network.DEFAULT_MAX_BATCH
    save_weights(tmp_path / "other.safetensors", reconstructor.model)
    with pytest.raises(MethodUnavailable, match="several weights files"):
        build_genre_reconstructor(None, torch.device("cpu"))


def test_unusable_checkpoint_or_batch_is_one_line(tmp_path, reconstructor):
    with pytest.raises(MethodUnavailable, match="missing.safetensors: no such checkpoint file"):
        build_genre_reconstructor(tmp_path / "missing.safetensors", torch.device("cpu"))
    path = save_weights(tmp_path / "g.safetensors", reconstructor.model)
    with pytest.raises(MethodUnavailable, match="max-batch"):
        build_genre_reconstructor(path, torch.device("cpu"), max_batch=0)


def test_reconstruct_rejects_a_mask_of_other_shape(reconstructor):
    kspace, mask = _series(3, 1)
    with pytest.raises(ValueError, match="mask must be"):
        reconstructor.reconstruct(kspace, mask[:2], SeriesInfo(stem="T1map", frames=3))


@pytest.mark.parametrize(("stem", "frames", "slices"), [("cine_sax", 4, 2), ("T2w", 1, 3)])
def test_estimate_kspace_is_the_coil_kspace_behind_the_image(reconstructor, stem, frames, slices):
    """The hold-out guard scores this k-space; its RSS must be the image predict writes."""
    from genre.kspace import rss_from_kspace

    info = SeriesInfo(stem=stem, frames=frames)
    kspace, mask = _series(frames, slices, seed=2)
    estimate = reconstructor.estimate_kspace(kspace, mask, info)
    assert estimate.shape == (frames, slices, COILS, KY, KX) and estimate.dtype == torch.complex64
    assert not estimate.requires_grad  # inference builds no autograd graph, though the generator's path allows one
    image = reconstructor.reconstruct(kspace, mask, info)
    assert torch.allclose(rss_from_kspace(estimate), image, rtol=1e-4, atol=1e-9)
    # measured_out: the acquired samples come back unchanged.
    sampled = mask[:, None, None].bool().expand_as(kspace)
    assert torch.allclose(estimate[sampled], kspace[sampled], rtol=1e-4, atol=1e-10)
