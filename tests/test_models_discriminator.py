"""Tests of the patch discriminator: shapes (odd sizes included), limits, gradients."""

from __future__ import annotations

import pytest
import torch

from genre.losses import discriminator_loss, generator_loss
from genre.models.discriminator import DiscriminatorConfig, PatchDiscriminator, min_size

TINY = DiscriminatorConfig(base_channels=8, num_layers=3)


@pytest.mark.parametrize(("ny", "nx", "expected"), [(33, 47, (2, 3)), (24, 24, (1, 1)), (64, 40, (6, 3))])
def test_patch_logits_shape_for_odd_and_even_sizes(ny: int, nx: int, expected: tuple[int, int]) -> None:
    logits = PatchDiscriminator(TINY)(torch.rand(2, 2, ny, nx))
    assert logits.shape == (2, 1, *expected)


def test_default_config_on_a_cmrxrecon_sized_image() -> None:
    model = PatchDiscriminator()
    assert model.config == DiscriminatorConfig(in_channels=2, base_channels=64, num_layers=3)
    assert 2.7e6 < sum(p.numel() for p in model.parameters()) < 2.8e6  # pix2pix's 70x70 PatchGAN
    with torch.no_grad():
        logits = model(torch.rand(1, 2, 162, 448))
    assert logits.shape == (1, 1, 18, 54)


def test_size_limits_and_channel_check() -> None:
    model = PatchDiscriminator(TINY)
    assert min_size(TINY) == 24
    model(torch.rand(1, 2, 24, 30))
    with pytest.raises(ValueError):
        model(torch.rand(1, 2, 23, 30))
    with pytest.raises(ValueError):
        model(torch.rand(1, 3, 32, 32))
    one_layer = PatchDiscriminator(DiscriminatorConfig(base_channels=4, num_layers=1))
    assert min_size(one_layer.config) == 6
    assert one_layer(torch.rand(1, 2, 6, 7)).shape == (1, 1, 1, 1)
    with pytest.raises(ValueError):
        DiscriminatorConfig(num_layers=0)


def test_gradients_flow_to_discriminator_and_generator_output() -> None:
    torch.manual_seed(0)
    model = PatchDiscriminator(TINY)
    zero_filled, gt = torch.rand(1, 33, 40), torch.rand(1, 33, 40)
    rec = torch.rand(1, 33, 40, requires_grad=True)
    real = model(torch.stack([gt, zero_filled], dim=1))
    fake = model(torch.stack([rec.detach(), zero_filled], dim=1))
    discriminator_loss(real, fake).backward()
    assert all(p.grad is not None and torch.isfinite(p.grad).all() for p in model.parameters())
    assert rec.grad is None
    generator_loss(model(torch.stack([rec, zero_filled], dim=1))).backward()
    assert rec.grad is not None and rec.grad.abs().sum() > 0
