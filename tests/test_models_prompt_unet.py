"""The prompt U-Net (genre.models.prompt_unet): any input size, channel layout, its own precision policy."""

from __future__ import annotations

import pytest
import torch

from genre.models.config import preset
from genre.models.prompt_unet import PromptUnet, channels_to_complex, complex_to_channels

KY, KX = 37, 51  # odd on both axes, not a multiple of 2**depth


def test_channel_layout_round_trip():
    x = torch.randn(2, 5, 7, 9, dtype=torch.complex64)
    channels = complex_to_channels(x)
    assert channels.shape == (2, 10, 7, 9)
    assert torch.equal(channels[:, 2], x[:, 1].real) and torch.equal(channels[:, 3], x[:, 1].imag)
    assert torch.equal(channels_to_complex(channels), x)


@pytest.mark.parametrize("size", [(KY, KX), (16, 16), (1, 3)])
def test_prompt_unet_any_size(size):
    config = preset("tiny").unet
    net = PromptUnet(4, 6, config)
    out, features = net(torch.randn(2, 4, *size))
    assert out.shape == (2, 6, *size)
    assert features.shape == (2, config.n_feat0, *size)
    assert torch.isfinite(out).all()


def test_a_callers_autocast_does_not_change_the_precision_policy():
    """The U-Net sets autocast itself: under an outer bf16 autocast a float32 model still computes in float32."""
    torch.manual_seed(0)
    unet = PromptUnet(4, 4, preset("tiny").unet).eval()
    x = torch.randn(2, 4, 24, 32)
    with torch.no_grad():
        reference, _ = unet(x)
        with torch.autocast("cpu", dtype=torch.bfloat16):
            out, features = unet(x)
    assert out.dtype == features.dtype == torch.float32
    torch.testing.assert_close(out, reference, rtol=0, atol=0)
