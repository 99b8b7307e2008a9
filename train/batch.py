"""A training batch on the network's scale: the same input scaling as inference, from fully sampled k-space.

Inference divides each sample by :func:`genre.models.generator.input_scale` inside
:meth:`genre.models.generator.Generator.reconstruct`; training needs the scaled targets as
well, so the scale is applied here once, to inputs and targets alike, with the same function.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from genre.kspace import rss_from_kspace
from genre.models.generator import input_scale


@dataclass(frozen=True)
class ScaledBatch:
    """Tensors of one step, all divided by the per-sample input scale.

    * ``measured``: undersampled k-space ``(batch, adj, coils, ky, kx)`` complex64, the network input;
    * ``mask``: ``(batch, adj, ky, kx)`` float 0/1;
    * ``target_kspace``: fully sampled centre frame ``(batch, coils, ky, kx)`` complex64;
    * ``target``: its RSS image ``(batch, ky, kx)`` float32;
    * ``zero_filled``: RSS image of the measured centre frame ``(batch, ky, kx)``.
    """

    measured: torch.Tensor
    mask: torch.Tensor
    target_kspace: torch.Tensor
    target: torch.Tensor
    zero_filled: torch.Tensor


def scaled_batch(full: torch.Tensor, mask: torch.Tensor) -> ScaledBatch:
    """Undersample fully sampled adjacent k-space ``(batch, adj, coils, ky, kx)`` with ``mask`` ``(batch, adj, ky, kx)`` and scale it."""
    centre = full.shape[1] // 2
    measured = full * mask.unsqueeze(2)
    scale = input_scale(measured[:, centre])
    measured = measured / scale.view(-1, 1, 1, 1, 1)
    target_kspace = full[:, centre] / scale.view(-1, 1, 1, 1)
    return ScaledBatch(
        measured=measured,
        mask=mask,
        target_kspace=target_kspace,
        target=rss_from_kspace(target_kspace),
        zero_filled=rss_from_kspace(measured[:, centre]),
    )
