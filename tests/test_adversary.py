"""The adversarial game of a training step (genre.train.adversary)."""

from __future__ import annotations

import torch

from genre.models.discriminator import PatchDiscriminator
from genre.train.adversary import adversarial_loss, discriminate, discriminator_step


def _images(seed: int) -> torch.Tensor:
    return torch.rand(2, 32, 32, generator=torch.Generator().manual_seed(seed))


def test_discriminator_steps_separate_real_from_fake_pairs():
    torch.manual_seed(0)
    disc = PatchDiscriminator()
    optimizer = torch.optim.AdamW(disc.parameters(), lr=1e-3)
    target, fake, zero_filled = _images(0), 0.5 * _images(1), _images(2)
    losses = [float(discriminator_step(disc, optimizer, [fake], target, zero_filled, 0.1, bf16=True)) for _ in range(15)]
    assert losses[-1] < 0.8 * losses[0]
    with torch.no_grad():
        real, made = discriminate(disc, target, zero_filled, bf16=True), discriminate(disc, fake, zero_filled, bf16=True)
    assert real.dtype == torch.float32 and real.mean() > made.mean()
    # One update per fake: two fakes, two optimizer steps.
    before = float(optimizer.state[next(disc.parameters())]["step"])
    discriminator_step(disc, optimizer, [fake, fake], target, zero_filled, 0.1, bf16=False)
    assert optimizer.state[next(disc.parameters())]["step"] == before + 2


def test_adversarial_loss_trains_the_generator_only():
    disc = PatchDiscriminator()
    image = _images(0).requires_grad_()
    adversarial_loss(disc, image, _images(1), bf16=False).backward()
    assert image.grad is not None and image.grad.abs().sum() > 0
    assert all(p.grad is None and p.requires_grad for p in disc.parameters())
