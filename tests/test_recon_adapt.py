"""Test-time adaptation: the loss, the readout crop, and that the check keeps the trained weights unless adaptation helps."""

from __future__ import annotations

import copy

import pytest
import torch

from conftest import phantom_kspace, uniform_mask
from genre.models.config import preset
from genre.models.generator import Generator
from genre.recon.adapt import Adapted, AdaptConfig, kspace_loss, readout_window
from genre.recon.base import SeriesInfo
from genre.recon.network import GenreReconstructor

FRAMES, SLICES, COILS, KY, KX = 3, 1, 4, 40, 48


def _series(mask: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    kspace = torch.from_numpy(phantom_kspace(FRAMES, SLICES, COILS, KY, KX, seed=1))
    if mask is None:
        mask = torch.from_numpy(uniform_mask(FRAMES, KY, KX, step=3, acs=8)).float()
        for f in range(FRAMES):  # a different set of lines per frame, as kt patterns have
            mask[f] = mask[f].roll(f, dims=0).maximum(mask[0])
    return 1e-3 * kspace * mask[:, None, None], mask


def _network() -> GenreReconstructor:
    torch.manual_seed(0)
    return GenreReconstructor(Generator(preset("tiny")), device="cpu")


def _weights(network: GenreReconstructor) -> dict[str, torch.Tensor]:
    return copy.deepcopy(network.model.state_dict())


def _same(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor]) -> bool:
    return all(torch.equal(a[k], b[k]) for k in a)


def test_kspace_loss_is_zero_at_the_target_and_scale_free():
    target = torch.randn(2, 3, 8, 6, dtype=torch.complex64)
    weight = (torch.rand(2, 1, 8, 6) < 0.5).float()
    estimate = target + 0.1 * torch.randn_like(target)
    assert kspace_loss(target, target, weight) == 0
    assert kspace_loss(1e3 * estimate, 1e3 * target, weight) == pytest.approx(float(kspace_loss(estimate, target, weight)), rel=1e-4)
    # Only the selected samples count.
    outside = estimate + 100 * (1 - weight) * torch.randn_like(target)
    assert kspace_loss(outside, target, weight) == pytest.approx(float(kspace_loss(estimate, target, weight)), rel=1e-5)
    assert kspace_loss(torch.zeros_like(target), target, weight) == pytest.approx(2.0)


def test_readout_window_covers_the_energy():
    hybrid = torch.zeros(2, 3, 10, 100, dtype=torch.complex64)
    hybrid[..., 60:66] = 1
    generator = torch.Generator().manual_seed(0)
    for _ in range(20):
        start = readout_window(hybrid, 16, generator)
        assert 0 <= start <= 84 and start + 16 > 60 and start < 66


def test_no_steps_is_the_trained_network():
    network = _network()
    kspace, mask = _series()
    info = SeriesInfo("cine_sax", FRAMES)
    adapted = Adapted(network, AdaptConfig(steps=0))
    assert torch.equal(adapted.reconstruct(kspace, mask, info), network.reconstruct(kspace, mask, info))


def test_a_diverging_adaptation_is_rejected_by_the_check():
    network = _network()
    trained = _weights(network)
    kspace, mask = _series()
    info = SeriesInfo("cine_sax", FRAMES)
    plain = network.reconstruct(kspace, mask, info)
    adapted = Adapted(network, AdaptConfig(steps=4, lr=1e3, check_every=1))
    assert torch.equal(adapted.reconstruct(kspace, mask, info), plain)
    assert adapted.kept == 0 and adapted.calls == 1
    assert _same(trained, _weights(network))


@pytest.mark.parametrize("crop", [None, 16])
def test_adaptation_that_predicts_withheld_lines_better_is_kept_then_undone(crop):
    network = _network()  # untrained: the phantom's own lines teach it something at once
    trained = _weights(network)
    kspace, mask = _series()
    info = SeriesInfo("cine_sax", FRAMES)
    plain = network.reconstruct(kspace, mask, info)
    adapted = Adapted(network, AdaptConfig(steps=6, lr=1e-2, check_every=2, crop=crop))
    first = adapted.reconstruct(kspace, mask, info)
    assert adapted.kept == 1
    assert not torch.allclose(first, plain)
    assert first.shape == plain.shape and torch.isfinite(first).all()
    assert _same(trained, _weights(network))  # the next input starts from the trained weights
    assert torch.equal(adapted.reconstruct(kspace, mask, info), first)  # a rerun writes the same array


def test_two_dimensional_masks_and_slice_neighbours_adapt_without_a_crop():
    network = _network()
    generator = torch.Generator().manual_seed(3)
    mask = (torch.rand(1, KY, KX, generator=generator) < 0.3).float()  # samples scattered along kx too
    mask[:, KY // 2 - 4 : KY // 2 + 4] = 1
    kspace = torch.from_numpy(phantom_kspace(1, 3, COILS, KY, KX, seed=2)) * mask[:, None, None]
    info = SeriesInfo("lge_sax", 1)
    adapted = Adapted(network, AdaptConfig(steps=2, check_every=1, crop=16))
    image = adapted.reconstruct(kspace, mask, info)
    assert image.shape == (1, 3, KY, KX) and torch.isfinite(image).all()
    estimate = adapted.estimate_kspace(kspace, mask, info)
    assert estimate.shape == kspace.shape


@pytest.mark.parametrize("field", [{"steps": -1}, {"lr": 0}, {"loss_fraction": 1}, {"check_fraction": 0}, {"crop": 4}])
def test_config_rejects_unusable_values(field):
    with pytest.raises(ValueError):
        AdaptConfig(**field)
