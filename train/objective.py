"""The training objective: per-cascade losses, their CoV weighting, and the adversarial game.

Generator loss of one step (METHOD.md, "Losses")::

    L = sum_i alpha_i * sum_t L_i(t)  +  adv_weight * L_adv(final output)

with ``i`` over the enabled losses of ``fid`` (fidelity), ``ear`` (edge-aware SSIM) and ``sda``
(distribution alignment, already a sum over cascades), ``t`` over the cascades (deep
supervision; only the last one with ``deep_supervision=False``), and ``alpha`` the CoV weights
(detached). Using one ``alpha`` for every cascade is the paper's ``L_step(t) = a1 L_fid(t) +
a2 L_EAR(t) + a3 L_SDA(t)`` summed over ``t``.

All tensors here are on the training scale: k-space and images divided by the input scale of
:func:`genre.models.generator.input_scale`, as inference does. K-space is the centre frame
``(batch, coils, ky, kx)`` complex64, images ``(batch, ky, kx)`` float32.
"""

from __future__ import annotations

import torch

from genre.kspace import ifft2c
from genre.losses import (
    CoVWeighting,
    FidelityLoss,
    SDABank,
    ear_loss,
    magnitude_mse,
    ssim_loss,
    wrapped_phase_mse,
)
from genre.models.generator import GeneratorOutput
from genre.train.config import TrainConfig
from genre.train.distributed import DistContext, all_reduce_mean

#: Added under the square root of the RSS on the gradient path: ``d sqrt(x) / dx`` is infinite at
#: 0, which turns a pixel where every coil is exactly 0 into NaN gradients. It shifts the image
#: by at most 1e-6 on a scale where the bright tissue is about 1.
RSS_EPS = 1e-12


def rss_image(kspace: torch.Tensor) -> torch.Tensor:
    """RSS magnitude ``(..., ky, kx)`` of k-space ``(..., coils, ky, kx)``, with a finite gradient everywhere.

    Differs from :func:`genre.kspace.rss_from_kspace` (the exact, organizers' image) only by
    :data:`RSS_EPS`; use it wherever a gradient flows.
    """
    coils = ifft2c(kspace)
    return (coils.real.square() + coils.imag.square()).sum(dim=-3).add(RSS_EPS).sqrt()


def fidelity(kspace: torch.Tensor, target_kspace: torch.Tensor, target_image: torch.Tensor) -> FidelityLoss:
    """:func:`genre.losses.fidelity_loss` with the SSIM image through :func:`rss_image` (finite gradients)."""
    return FidelityLoss(
        magnitude=magnitude_mse(kspace, target_kspace),
        phase=wrapped_phase_mse(kspace, target_kspace),
        ssim=ssim_loss(rss_image(kspace), target_image),
    )


class Objective:
    """Reconstruction losses of a generator output, weighted by CoV; holds the CoV statistics and the SDA bank.

    The SDA loss is zero until the bank holds a sample of another domain (the first step of a
    process). Such a step is weighted by the current weights of the other losses and is left
    out of the CoV statistics: folding in a loss that is exactly 0 would make its first real
    value look like a huge ratio to its running mean. With a single training domain SDA can
    never be defined and is dropped (the trainer warns).

    Under DDP the loss values that update the CoV statistics are averaged over the processes,
    so that every process applies the same weights; the SDA bank stays per process.
    """

    def __init__(self, config: TrainConfig, ctx: DistContext, sda: bool):
        self.config = config
        self.ctx = ctx
        self.names = tuple(n for n in config.loss_names if sda or n != "sda")
        self.cov = CoVWeighting(len(self.names))
        self.bank = SDABank(config.sda_config) if "sda" in self.names else None

    def _sda_ready(self, domains: list[str]) -> bool:
        stored = self.bank.state_dict()["cascades"]
        # As SDABank.loss pairs them: a current sample with a stored one of another domain.
        return bool(stored) and any(entry["domain"] != key for entry in stored[0] for key in domains)

    def losses(self, out: GeneratorOutput, target_kspace: torch.Tensor, target_image: torch.Tensor,
               domains: list[str]) -> tuple[dict[str, torch.Tensor], bool]:
        """Each enabled loss summed over the supervised cascades (scalars with graphs), and whether all are defined."""
        cascades = out.kspace if self.config.deep_supervision else out.kspace[-1:]
        values = {"fid": sum(fidelity(k, target_kspace, target_image).total for k in cascades)}
        if "ear" in self.names:
            values["ear"] = sum(ear_loss(rss_image(k), target_image, self.config.ear_tau_rel) for k in cascades)
        complete = True
        if self.bank is not None:
            complete = self._sda_ready(domains)
            values["sda"] = self.bank.loss(out.features, domains).to(values["fid"])
        return values, complete

    def weigh(self, values: dict[str, torch.Tensor], complete: bool) -> tuple[torch.Tensor, torch.Tensor, dict[str, float]]:
        """``(sum_i alpha_i L_i, alpha, the losses averaged over the processes)``.

        Updates the CoV statistics when every loss is defined.
        """
        stacked = torch.stack([values[n] for n in self.names])
        # Reduced on every process, complete or not, so that no process waits for another.
        global_values = all_reduce_mean(self.ctx, stacked.detach())
        if complete:
            weights = self.cov.update(global_values)
        else:
            weights = self.cov.current_weights().clone()
            weights[self.names.index("sda")] = 0
            weights /= weights.sum()
        averaged = {name: float(v) for name, v in zip(self.names, global_values)}
        return (weights.to(stacked) * stacked).sum(), weights, averaged

    def state_dict(self) -> dict:
        return {"cov": self.cov.state_dict()}

    def load_state_dict(self, state: dict) -> None:
        self.cov.load_state_dict(state["cov"])
