"""The adversarial game of a training step: the patch discriminator's update and the generator's adversarial loss.

Every image is an RSS magnitude ``(batch, ky, kx)`` float32; the discriminator sees it paired
with the zero-filled image of the same input, ``(image, zero-filled)`` stacked as two channels:
real pairs hold the target, fake pairs a reconstruction. On CUDA it runs under bf16 autocast when
``bf16`` is set (as the generator's CNNs do); its logits come back in float32.
"""

from __future__ import annotations

import contextlib

import torch
from torch.nn.utils import clip_grad_norm_

from genre.losses import discriminator_loss, generator_loss


def discriminate(disc: torch.nn.Module, image: torch.Tensor, zero_filled: torch.Tensor, bf16: bool) -> torch.Tensor:
    """Patch logits of the pairs ``(image, zero-filled)``, each ``(batch, ky, kx)``, in float32."""
    autocast = (torch.autocast("cuda", dtype=torch.bfloat16, enabled=bf16) if image.device.type == "cuda"
                else contextlib.nullcontext())
    with autocast:
        return disc(torch.stack([image, zero_filled], dim=1)).float()


def discriminator_step(
    disc: torch.nn.Module,
    optimizer: torch.optim.Optimizer,
    fakes: list[torch.Tensor],
    target: torch.Tensor,
    zero_filled: torch.Tensor,
    grad_clip: float,
    bf16: bool,
) -> torch.Tensor:
    """One update per (detached) fake image, real and fake pairs through the network as one batch; the mean loss, detached."""
    losses = []
    for fake in fakes:
        logits = discriminate(disc, torch.cat([target, fake.detach()]), torch.cat([zero_filled, zero_filled]), bf16)
        real_logits, fake_logits = logits.chunk(2)
        loss = discriminator_loss(real_logits, fake_logits)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        clip_grad_norm_(disc.parameters(), grad_clip)
        optimizer.step()
        losses.append(loss.detach())
    return torch.stack(losses).mean()


def adversarial_loss(disc: torch.nn.Module, image: torch.Tensor, zero_filled: torch.Tensor, bf16: bool) -> torch.Tensor:
    """The generator's adversarial loss on ``image``; the discriminator is frozen meanwhile (pass it unwrapped of DDP)."""
    disc.requires_grad_(False)
    try:
        return generator_loss(discriminate(disc, image, zero_filled, bf16))
    finally:
        disc.requires_grad_(True)
