"""The work of one generator inference pass, counted on the meta device: shapes only, no arithmetic.

Counting at the challenge's 162x448 by running the paper preset took about 90 s on a CPU; on the
meta device every operator only computes its output's shape, so the same count takes seconds on
any machine, with or without a GPU.
"""

from __future__ import annotations

import torch
from torch.utils.flop_counter import FlopCounterMode

from genre.models.config import GeneratorConfig
from genre.models.generator import Generator


def meta_generator(config: GeneratorConfig) -> Generator:
    """A :class:`Generator` of ``config`` on the meta device, in eval mode: parameters without values."""
    with torch.device("meta"):
        return Generator(config).eval()


def count_flops(config: GeneratorConfig, coils: int, height: int, width: int) -> int:
    """FLOPs of one inference pass of a ``config`` generator reconstructing one slice-frame of ``coils x height x width``.

    Counted with torch's FlopCounterMode on meta k-space ``(1, adjacent, coils, height, width)``:
    convolutions and matrix products, 2 FLOPs per multiply-add; FFTs and elementwise operations
    are not counted. The count does not depend on the mask or the values.
    """
    model = meta_generator(config)
    adjacent = config.adjacent
    kspace = torch.empty(1, adjacent, coils, height, width, dtype=torch.complex64, device="meta")
    mask = torch.ones(1, adjacent, height, width, device="meta")
    counter = FlopCounterMode(display=False)
    with torch.no_grad(), counter:
        model(kspace, mask, return_intermediate=False)
    return counter.get_total_flops()
