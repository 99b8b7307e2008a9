"""Adversarial losses of the patch discriminator: binary cross-entropy on logits.

Label convention: real = 1, fake = 0. Real pairs are ``(I_gt, I_zero_filled)``, fake pairs
``(I_rec, I_zero_filled)``. The paper labels real = 0 and fake = 1; that is the same game with
the sign of the logits flipped (``BCE(z, 1) = BCE(-z, 0)``), so only the meaning of the logit's
sign differs. The generator uses the non-saturating loss ``BCE(D(fake), 1)``.

Logits are any shape, typically patch logits ``(batch, 1, h', w')``; losses are means over all
patches.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F


def discriminator_loss(real_logits: torch.Tensor, fake_logits: torch.Tensor) -> torch.Tensor:
    """``0.5 * (BCE(D(real), 1) + BCE(D(fake), 0))``; ``fake_logits`` must come from a detached reconstruction.

    The factor 0.5 (as pix2pix) slows the discriminator relative to the generator.
    """
    real = F.binary_cross_entropy_with_logits(real_logits, torch.ones_like(real_logits))
    fake = F.binary_cross_entropy_with_logits(fake_logits, torch.zeros_like(fake_logits))
    return 0.5 * (real + fake)


def generator_loss(fake_logits: torch.Tensor) -> torch.Tensor:
    """Non-saturating generator loss ``BCE(D(fake), 1)``: the generator wants its output called real."""
    return F.binary_cross_entropy_with_logits(fake_logits, torch.ones_like(fake_logits))
