"""The prompt U-Net (APU) of PromptMR / PromptMR+, the CNN inside every cascade and the SME.

A U-Net of channel-attention blocks (CAB). Each decoder level concatenates a *prompt*: a
softmax-weighted sum of learned prompt components, the weights computed from the
global-average-pooled decoder input (linear layer, softmax), resized bilinearly to the feature
size and convolved. The network works on real channels ``(batch, channels, h, w)`` of any
spatial size (padded to a multiple of ``2 ** depth`` and cropped back) and is scale
equivariant: the input is normalised per sample by its mean and standard deviation and the
output mapped back.
"""

from __future__ import annotations

import contextlib

import torch
import torch.nn.functional as F
from torch import nn

from genre.models.config import PromptUnetConfig

#: Device types on which a ``bf16`` U-Net runs its inner convolutions under bf16 autocast. CUDA
#: only: CPUs keep float32 (docs/benchmarks.md, "bf16 on the CPU"); tools that emulate the CUDA
#: precision on a CPU (``benchmarks.memory``, a test) add ``"cpu"``.
BF16_DEVICE_TYPES: tuple[str, ...] = ("cuda",)


def complex_to_channels(x: torch.Tensor) -> torch.Tensor:
    """Complex ``(batch, n, h, w)`` -> real ``(batch, 2n, h, w)``, channels ``[re_0, im_0, re_1, im_1, ...]``."""
    b, n, h, w = x.shape
    return torch.view_as_real(x).permute(0, 1, 4, 2, 3).reshape(b, 2 * n, h, w)


def channels_to_complex(x: torch.Tensor) -> torch.Tensor:
    """Inverse of :func:`complex_to_channels`: real ``(batch, 2n, h, w)`` -> complex ``(batch, n, h, w)``."""
    b, c, h, w = x.shape
    return torch.view_as_complex(x.reshape(b, c // 2, 2, h, w).permute(0, 1, 3, 4, 2).contiguous())


def _conv(cin: int, cout: int, kernel_size: int, bias: bool = False) -> nn.Conv2d:
    return nn.Conv2d(cin, cout, kernel_size, padding=kernel_size // 2, bias=bias)


class ChannelAttention(nn.Module):
    """Squeeze-and-excitation: rescale each channel by a gate computed from the pooled map."""

    def __init__(self, channels: int, reduction: int):
        super().__init__()
        hidden = max(1, channels // reduction)
        self.gate = nn.Sequential(
            nn.AdaptiveAvgPool2d(1),
            nn.Conv2d(channels, hidden, 1, bias=False),
            nn.ReLU(inplace=True),
            nn.Conv2d(hidden, channels, 1, bias=False),
            nn.Sigmoid(),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * self.gate(x)


class CAB(nn.Module):
    """Channel-attention block: ``x + CA(conv(PReLU(conv(x))))``, shape-preserving."""

    def __init__(self, channels: int, config: PromptUnetConfig):
        super().__init__()
        k = config.kernel_size
        self.body = nn.Sequential(
            _conv(channels, channels, k),
            nn.PReLU(),
            _conv(channels, channels, k),
            ChannelAttention(channels, config.reduction) if config.channel_attention else nn.Identity(),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.body(x)


def _cabs(channels: int, count: int, config: PromptUnetConfig) -> nn.Module:
    if count == 0:
        return nn.Identity()
    return nn.Sequential(*(CAB(channels, config) for _ in range(count)))


class PromptBlock(nn.Module):
    """Input-conditioned prompt ``(batch, prompt_dim, h, w)`` for a feature map ``(batch, feature_dim, h, w)``."""

    def __init__(self, feature_dim: int, prompt_dim: int, length: int, size: int, learnable: bool):
        super().__init__()
        self.components = nn.Parameter(torch.rand(length, prompt_dim, size, size), requires_grad=learnable)
        self.weights = nn.Linear(feature_dim, length)
        self.conv = _conv(prompt_dim, prompt_dim, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        weights = torch.softmax(self.weights(x.mean(dim=(-2, -1))), dim=-1)
        prompt = torch.einsum("bl,lchw->bchw", weights, self.components)
        prompt = F.interpolate(prompt, size=x.shape[-2:], mode="bilinear", align_corners=False)
        return self.conv(prompt)


class DownBlock(nn.Module):
    """CABs at ``cin`` channels (kept as the skip), then a stride-2 conv to ``cout``."""

    def __init__(self, cin: int, cout: int, n_cab: int, config: PromptUnetConfig):
        super().__init__()
        self.encoder = _cabs(cin, n_cab, config)
        self.down = nn.Conv2d(cin, cout, 3, stride=2, padding=1, bias=True)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        skip = self.encoder(x)
        return self.down(skip), skip


class UpBlock(nn.Module):
    """Fuse ``[x, prompt]`` with CABs, reduce to ``cin``, upsample x2 to ``cout``, add the skip, one CAB."""

    def __init__(self, cin: int, cout: int, prompt_dim: int, n_cab: int, config: PromptUnetConfig):
        super().__init__()
        self.fuse = _cabs(cin + prompt_dim, n_cab, config)
        self.reduce = nn.Conv2d(cin + prompt_dim, cin, 1, bias=False)
        self.up = nn.Sequential(
            nn.Upsample(scale_factor=2, mode="bilinear", align_corners=False),
            nn.Conv2d(cin, cout, 1, bias=False),
        )
        self.attention = CAB(cout, config)

    def forward(self, x: torch.Tensor, prompt: torch.Tensor, skip: torch.Tensor) -> torch.Tensor:
        x = self.reduce(self.fuse(torch.cat([x, prompt], dim=1)))
        return self.attention(self.up(x) + skip)


class PromptUnet(nn.Module):
    """The APU: real ``(batch, in_chans, h, w)`` -> ``(output (batch, out_chans, h, w), features (batch, n_feat0, h, w))``.

    ``features`` is the last decoder level (full resolution), cropped to ``(h, w)``: what the
    output convolution sees, and what the SDA loss aligns. ``carry`` (same shape), when given,
    is added to it first: the residual feature path across cascades. With ``bf16`` the
    convolutions between the first and the last run under bf16 autocast on CUDA; those two,
    the normalisation, the full-resolution residual sums and the returned tensors are float32.
    """

    def __init__(self, in_chans: int, out_chans: int, config: PromptUnetConfig, bf16: bool = False):
        super().__init__()
        c = config
        self.depth = c.depth
        self.bf16 = bf16
        widths = (c.n_feat0, *c.feature_dim)  # widths[i]: channels entering encoder level i
        self.feat_extract = _conv(in_chans, c.n_feat0, c.kernel_size)
        self.encoder = nn.ModuleList(
            DownBlock(widths[i], widths[i + 1], c.n_enc_cab[i], c) for i in range(self.depth)
        )
        self.skips = nn.ModuleList(_cabs(widths[i], c.n_skip_cab[i], c) for i in range(self.depth))
        self.bottleneck = _cabs(widths[-1], c.n_bottleneck_cab, c)
        self.prompts = nn.ModuleList(
            PromptBlock(widths[i + 1], c.prompt_dim[i], c.len_prompt[i], c.prompt_size[i], c.learnable_prompt)
            for i in range(self.depth)
        )
        self.decoder = nn.ModuleList(
            UpBlock(widths[i + 1], widths[i], c.prompt_dim[i], c.n_dec_cab[i], c) for i in range(self.depth)
        )
        self.conv_last = _conv(c.n_feat0, out_chans, 5)

    def _autocast(self, device: torch.device, enabled: bool = True) -> contextlib.AbstractContextManager:
        """bf16 autocast where the config asks for it (on :data:`BF16_DEVICE_TYPES`); ``enabled=False`` forces float32."""
        # Switched explicitly on or off, so that a caller's autocast cannot override the policy.
        if device.type not in ("cpu", "cuda"):
            return contextlib.nullcontext()
        bf16 = enabled and self.bf16 and device.type in BF16_DEVICE_TYPES
        return torch.autocast(device.type, dtype=torch.bfloat16, enabled=bf16)

    def forward(self, x: torch.Tensor, carry: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        h, w = x.shape[-2:]
        mean = x.mean(dim=(1, 2, 3), keepdim=True)
        # The floor keeps an all-zero input (a silent coil, an empty ACS) at zero instead of NaN.
        std = x.std(dim=(1, 2, 3), keepdim=True).clamp_min(1e-12)
        x = (x - mean) / std

        multiple = 2**self.depth
        pad_h, pad_w = -h % multiple, -w % multiple
        top, left = pad_h // 2, pad_w // 2
        x = F.pad(x, (left, pad_w - left, top, pad_h - top))

        # The first and last convolutions stay float32 under bf16 (about 2 % of the FLOPs): the
        # first so that the full-resolution residual stream and its skip are float32 sums, the
        # last because its output is the image update itself. Rounding either to bf16 made the
        # fast path's error four times larger (docs/benchmarks.md, "bf16 precision policy").
        with self._autocast(x.device, enabled=False):
            y = self.feat_extract(x)
        with self._autocast(x.device):
            skips = []
            for down, skip in zip(self.encoder, self.skips):
                y, s = down(y)
                skips.append(skip(s))
            y = self.bottleneck(y)
            for i in reversed(range(self.depth)):
                y = self.decoder[i](y, self.prompts[i](y), skips[i])
            features = y[..., top : top + h, left : left + w].float()
        with self._autocast(x.device, enabled=False):
            if carry is not None:
                features = features + carry
            out = self.conv_last(features)
        return out * std + mean, features
