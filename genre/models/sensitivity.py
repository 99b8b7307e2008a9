"""Sensitivity-map estimation (SME): coil maps from the calibration block, refined by a prompt U-Net."""

from __future__ import annotations

import functools

import torch
from torch import nn

from genre.kspace import acs_block, acs_kspace, ifft2c, limit_block, normalize_sens
from genre.models.config import SensitivityConfig
from genre.models.prompt_unet import PromptUnet, channels_to_complex, complex_to_channels


class SensitivityModel(nn.Module):
    """k-space ``(batch, coils, ky, kx)`` complex64 and mask ``(batch, ky, kx)`` -> maps ``(batch, coils, ky, kx)`` complex64.

    Per sample: the central fully sampled block of the mask (at most ``num_acs`` lines), all
    other k-space zeroed, inverse FFT to low-resolution coil images, each refined by the same
    prompt U-Net (coils as batch, real/imag as two channels), then scaled so that the
    root-sum-of-squares over coils is 1. The generator passes the centre frame: the maps do not
    change over frames.
    """

    def __init__(self, config: SensitivityConfig, bf16: bool = False):
        super().__init__()
        self.num_acs = config.num_acs
        self.unet = PromptUnet(2, 2, config.unet, bf16=bf16)

    def forward(self, kspace: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        batch, coils, ny, nx = kspace.shape
        if mask.is_meta:
            # No values to find the block in (FLOP counting, genre.models.flops); shapes, and so the
            # work, do not depend on which block it is.
            blocks = [(slice(0, ny), slice(0, nx))] * batch
        else:
            # acs_block walks the mask element by element: one copy to the host, not a sync per step.
            host_mask = mask.detach().to("cpu", torch.bool).numpy()
            blocks = [_calibration_block(host_mask[b].tobytes(), (ny, nx), self.num_acs) for b in range(batch)]
        calibration = torch.stack([acs_kspace(kspace[b], block) for b, block in enumerate(blocks)])
        images = ifft2c(calibration).reshape(batch * coils, 1, ny, nx)
        refined, _ = self.unet(complex_to_channels(images))
        maps = channels_to_complex(refined).reshape(batch, coils, ny, nx)
        return normalize_sens(maps)


@functools.lru_cache(maxsize=64)
def _calibration_block(mask: bytes, shape: tuple[int, int], num_acs: int | None) -> tuple[slice, slice]:
    """The calibration block of a ``(ky, kx)`` bool mask given as its bytes, memoised.

    :func:`acs_block` takes several milliseconds per mask (a Python loop over the block's
    edges), a large part of the ~20 ms a target frame may take on a GPU, and the GPU waits for
    it. A file holds one mask per frame, shared by all its slices, so nearly every call is a
    cache hit.
    """
    sampled = torch.frombuffer(bytearray(mask), dtype=torch.bool).reshape(shape)
    return limit_block(acs_block(sampled), shape, num_acs)
