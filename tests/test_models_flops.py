"""FLOPs of a generator pass counted on the meta device (genre.models.flops)."""

from __future__ import annotations

import torch
from torch.utils.flop_counter import FlopCounterMode

from genre.models.config import preset
from genre.models.flops import count_flops, meta_generator
from genre.models.generator import Generator


def test_meta_count_equals_the_count_of_a_real_pass():
    config = preset("tiny")
    model = Generator(config).eval()
    kspace = torch.randn(1, config.adjacent, 3, 37, 51, dtype=torch.complex64)
    mask = torch.zeros(1, config.adjacent, 37, 51)
    mask[..., ::3, :] = 1
    mask[..., 14:23, :] = 1  # a calibration block, which the real pass looks for
    counter = FlopCounterMode(display=False)
    with torch.no_grad(), counter:
        model(kspace, mask, return_intermediate=False)
    assert count_flops(config, 3, 37, 51) == counter.get_total_flops() > 0


def test_the_figures_the_readme_quotes():
    """README and CLI.md: paper 108 M parameters and 1.52 TFLOP per slice-frame at 162x448 with 10 coils; small 2.5 M, 44 GFLOP."""
    paper, small = meta_generator(preset("paper")), meta_generator(preset("small"))
    assert f"{sum(p.numel() for p in paper.parameters()) / 1e6:.0f} M" == "108 M"
    assert f"{count_flops(paper.config, 10, 162, 448) / 1e12:.2f} TFLOP" == "1.52 TFLOP"
    assert f"{sum(p.numel() for p in small.parameters()) / 1e6:.1f} M" == "2.5 M"
    assert f"{count_flops(small.config, 10, 162, 448) / 1e9:.0f} GFLOP" == "44 GFLOP"
