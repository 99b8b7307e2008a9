"""CoV weighting of several losses (Groenendijk et al., "Multi-Loss Weighting with Coefficient of
Variations", WACV 2021).

At training step ``t`` (from 0), for each loss ``L_i``:

* ratio ``l_i = L_i / mean(L_i over steps 0..t-1)``, and ``l_i = 1`` at step 0; the mean is the
  one from *before* this step's update, as the authors' code (``rickgroen/cov-weighting``);
* weight ``alpha_i = c_i / sum_j c_j`` with ``c_i = std(l_i) / mean(l_i)`` over the ratios of
  steps ``0..t-1`` (the statistics before this step's ratio is added, again as the authors'
  code); the std is the population std with ``1e-8`` added to the variance as theirs;
* equal weights ``1 / n`` at steps 0 and 1: at step 1 the only stored ratio is step 0's ``1``,
  whose std is 0 for every loss;
* then Welford updates of the mean of ``L_i`` and of the mean and variance of ``l_i``.

The weights are detached: they scale the losses, they are not optimised. The statistics are
buffers (float64), so ``state_dict()`` / ``load_state_dict()`` resume training exactly. In eval
mode nothing is updated and the weights of the current statistics are used.

A loss whose running mean is still 0 (e.g. SDA before the bank holds another domain) gets the
ratio 1 instead of ``0 / 0``.
"""

from __future__ import annotations

from typing import Sequence

import torch
from torch import nn


class CoVWeighting(nn.Module):
    """Running CoV weights of ``num_losses`` scalar losses; ``forward(losses) -> (weighted sum, weights)``."""

    step: torch.Tensor
    loss_mean: torch.Tensor
    ratio_mean: torch.Tensor
    ratio_m2: torch.Tensor
    weights: torch.Tensor

    def __init__(self, num_losses: int, variance_eps: float = 1e-8) -> None:
        super().__init__()
        if num_losses < 1:
            raise ValueError(f"num_losses must be >= 1, got {num_losses}")
        self.num_losses = num_losses
        self.variance_eps = variance_eps
        self.register_buffer("step", torch.zeros((), dtype=torch.long))
        self.register_buffer("loss_mean", torch.zeros(num_losses, dtype=torch.float64))
        self.register_buffer("ratio_mean", torch.zeros(num_losses, dtype=torch.float64))
        self.register_buffer("ratio_m2", torch.zeros(num_losses, dtype=torch.float64))
        self.register_buffer("weights", torch.full((num_losses,), 1.0 / num_losses, dtype=torch.float64))

    def current_weights(self) -> torch.Tensor:
        """``alpha`` from the ratio statistics gathered so far, ``(num_losses,)`` float64."""
        count = int(self.step)
        if count < 2:
            return torch.full_like(self.ratio_mean, 1.0 / self.num_losses)
        std = (self.ratio_m2 / count + self.variance_eps).sqrt()
        cov = std / self.ratio_mean
        return cov / cov.sum()

    @torch.no_grad()
    def update(self, losses: torch.Tensor) -> torch.Tensor:
        """Weights for this step's ``losses`` ``(num_losses,)``, then fold the losses into the statistics."""
        losses = losses.detach().to(self.loss_mean)
        weights = self.current_weights()
        seen = self.loss_mean > 0
        ratio = torch.where(seen, losses / torch.where(seen, self.loss_mean, 1.0), torch.ones_like(losses))
        count = int(self.step) + 1
        delta = ratio - self.ratio_mean
        self.ratio_mean += delta / count
        self.ratio_m2 += delta * (ratio - self.ratio_mean)
        self.loss_mean += (losses - self.loss_mean) / count
        self.step += 1
        self.weights.copy_(weights)
        return weights

    def forward(self, losses: Sequence[torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
        """``(sum_i alpha_i * L_i, alpha)`` for scalar ``losses``; ``alpha`` ``(num_losses,)`` is detached.

        Updates the statistics in training mode only.
        """
        if len(losses) != self.num_losses:
            raise ValueError(f"expected {self.num_losses} losses, got {len(losses)}")
        stacked = torch.stack([loss.reshape(()) for loss in losses])
        weights = self.update(stacked) if self.training else self.current_weights()
        weights = weights.to(stacked)
        return (weights * stacked).sum(), weights
