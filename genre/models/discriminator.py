"""Patch discriminator of GENRE-CMR (the 2024 "All-in-One" Patch-GAN, pix2pix's ``NLayerDiscriminator``).

Input: magnitude images of the central frame, ``(batch, 2, ky, kx)`` with channel 0 the
candidate (``I_gt`` for real pairs, ``I_rec`` for fake ones) and channel 1 the zero-filled
image that conditions it. Output: patch logits ``(batch, 1, h', w')``, one per overlapping
receptive field (70x70 pixels for three layers). Any size of at least ``min_size(config)``
works, odd ones included: every 4x4 stride-2 convolution with padding 1 maps ``n`` to
``floor(n / 2)``.

Instance normalisation, not batch normalisation: training runs with batch size 1.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

_KERNEL = 4
_SLOPE = 0.2


@dataclass(frozen=True)
class DiscriminatorConfig:
    """PatchGAN sizes: ``num_layers`` stride-2 convolutions starting at ``base_channels``, doubling up to 8x."""

    in_channels: int = 2
    base_channels: int = 64
    num_layers: int = 3

    def __post_init__(self) -> None:
        if min(self.in_channels, self.base_channels, self.num_layers) < 1:
            raise ValueError(f"discriminator sizes must be >= 1, got {self}")


def min_size(config: DiscriminatorConfig) -> int:
    """Smallest image side the discriminator accepts.

    ``num_layers`` halvings, then two 4x4 stride-1 convolutions that each remove one pixel; the
    normalised one before the last must keep at least 2 pixels (instance norm needs more than
    one value per channel).
    """
    return 3 * 2**config.num_layers


class PatchDiscriminator(nn.Module):
    """``(batch, 2, ky, kx)`` magnitude pair -> patch logits ``(batch, 1, h', w')``."""

    def __init__(self, config: DiscriminatorConfig | None = None) -> None:
        super().__init__()
        self.config = config = config or DiscriminatorConfig()
        channels = [min(config.base_channels * 2**i, config.base_channels * 8) for i in range(config.num_layers + 1)]
        layers: list[nn.Module] = [
            nn.Conv2d(config.in_channels, channels[0], _KERNEL, stride=2, padding=1),
            nn.LeakyReLU(_SLOPE, inplace=True),
        ]
        for i in range(1, config.num_layers + 1):
            # The last block keeps the resolution (stride 1), as pix2pix's NLayerDiscriminator.
            stride = 2 if i < config.num_layers else 1
            layers += [
                nn.Conv2d(channels[i - 1], channels[i], _KERNEL, stride=stride, padding=1, bias=False),
                nn.InstanceNorm2d(channels[i], affine=True),
                nn.LeakyReLU(_SLOPE, inplace=True),
            ]
        layers.append(nn.Conv2d(channels[-1], 1, _KERNEL, stride=1, padding=1))
        self.net = nn.Sequential(*layers)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """pix2pix initialisation: convolutions N(0, 0.02), norm scales N(1, 0.02), biases 0."""
        for module in self.modules():
            if isinstance(module, nn.Conv2d):
                nn.init.normal_(module.weight, 0.0, 0.02)
                if module.bias is not None:
                    nn.init.zeros_(module.bias)
            elif isinstance(module, nn.InstanceNorm2d):
                nn.init.normal_(module.weight, 1.0, 0.02)
                nn.init.zeros_(module.bias)

    def forward(self, pair: torch.Tensor) -> torch.Tensor:
        if pair.ndim != 4 or pair.shape[1] != self.config.in_channels:
            raise ValueError(f"expected (batch, {self.config.in_channels}, ky, kx), got {tuple(pair.shape)}")
        if min(pair.shape[-2:]) < min_size(self.config):
            raise ValueError(f"image {tuple(pair.shape[-2:])} smaller than {min_size(self.config)} pixels a side")
        return self.net(pair)
