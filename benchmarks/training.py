"""One GENRE-CMR training step, timed with and without activation checkpointing.

The step is the paper's iteration at batch 1 (METHOD.md, "Training"): the generator through
every cascade; per cascade the fidelity and EAR losses (deep supervision), the SDA loss over
the cascades' features against a bank of another domain; the trainer's discriminator update
on the detached final image and its adversarial loss (:mod:`genre.train.adversary`); backward,
gradient clipping, AdamW on both networks. The losses are summed with equal weights: the CoV
weighting is a handful of scalar operations. On CUDA the CNNs run under bf16 autocast as the
config says, and the discriminator too, as in the trainer. Inputs: random fully sampled k-space ``(1, adjacent, coils, ky, kx)`` under a
ktGaussian R = 8 mask.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace

import torch

from benchmarks.inference import sampling_mask
from benchmarks.timing import Timing, time_call
from genre.losses import SDABank, ear_loss
from genre.models.config import GeneratorConfig
from genre.models.discriminator import PatchDiscriminator
from genre.models.generator import Generator
from genre.train.adversary import adversarial_loss, discriminator_step
from genre.train.batch import scaled_batch
from genre.train.objective import fidelity, rss_image

ADV_WEIGHT = 0.01
GRAD_CLIP = 0.1


class TrainingStep:
    """A callable running one training step on fixed inputs; alternates the domain key so SDA has pairs."""

    def __init__(self, generator: Generator, device: torch.device, coils: int, size: tuple[int, int]):
        self.generator = generator.train()
        self.discriminator = PatchDiscriminator().to(device).train()
        self.opt_g = torch.optim.AdamW(generator.parameters(), lr=2e-3, weight_decay=0.1)
        self.opt_d = torch.optim.AdamW(self.discriminator.parameters(), lr=2e-3, weight_decay=0.1)
        self.bank = SDABank()
        self.device = device
        self.steps = 0
        adjacent = generator.config.adjacent
        mask = sampling_mask(adjacent, size).unsqueeze(0).to(device)
        g = torch.Generator().manual_seed(1)
        full = torch.randn(1, adjacent, coils, *size, dtype=torch.complex64, generator=g).to(device)
        self.batch = scaled_batch(full, mask)

    def __call__(self) -> None:
        b = self.batch
        out = self.generator(b.measured, b.mask)
        total = torch.zeros((), device=self.device)
        for kspace in out.kspace:
            total = total + fidelity(kspace, b.target_kspace, b.target).total + ear_loss(rss_image(kspace), b.target)
        total = total + self.bank.loss(out.features, "ab"[self.steps % 2])
        final = out.image()

        bf16 = self.generator.config.bf16
        discriminator_step(self.discriminator, self.opt_d, [final], b.target, b.zero_filled, GRAD_CLIP, bf16)
        total = total + ADV_WEIGHT * adversarial_loss(self.discriminator, final, b.zero_filled, bf16)
        self.opt_g.zero_grad(set_to_none=True)
        total.backward()
        torch.nn.utils.clip_grad_norm_(self.generator.parameters(), GRAD_CLIP)
        self.opt_g.step()
        self.steps += 1


def time_training(
    config: GeneratorConfig,
    state: Mapping[str, torch.Tensor],
    device: torch.device,
    coils: int,
    size: tuple[int, int],
    checkpointing: bool,
    channels_last: bool,
    repeats: int,
) -> Timing:
    """One step's :class:`Timing` for ``config`` with activation checkpointing and the channels-last layout on or off.

    The generator starts from the weights ``state`` (copied: the step updates them).
    """
    with torch.device(device):
        generator = Generator(replace(config, checkpointing=checkpointing))
    generator.load_state_dict(state)
    if channels_last:
        generator = generator.to(memory_format=torch.channels_last)
    step = TrainingStep(generator, device, coils, size)
    # One warm-up: it creates the optimisers' state and fills the SDA bank, so the timed steps are steady.
    return time_call(step, device, repeats, warmups=1)
