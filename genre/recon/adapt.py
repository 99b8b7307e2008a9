"""Test-time adaptation: the trained network fine-tuned on each input's own acquired samples before it reconstructs it.

A network trained on one distribution meets images, coils and sizes unlike any it saw; the
undersampled file itself is the only data about them that inference has. Zero-shot
self-supervised learning (Yaman, Hosseini, Akcakaya, ICLR 2022) turns it into training data:
the acquired samples outside the calibration block are split into rows the network sees and
rows it must predict, and the weights take a few optimiser steps on that k-space loss, from
the trained weights rather than from scratch. A third share of rows is withheld from both, as
in :mod:`genre.recon.guard`; its prediction error, checked every few steps, picks the weights
that reconstruct, and the trained weights themselves are the first candidate: adaptation
is kept only where the withheld samples say it helped. The final reconstruction sees every
acquired sample. Each call starts again from the trained weights, so files do not leak into
each other and a rerun writes the same arrays (every split is drawn from seeded generators).
"""

from __future__ import annotations

import copy
import logging
from dataclasses import dataclass, replace

import torch

from genre.kspace import readout_to_image, readout_to_kspace
from genre.recon.base import MethodUnavailable, SeriesInfo
from genre.recon.guard import holdout_error, holdout_mask
from genre.recon.network import GenreReconstructor

log = logging.getLogger("genre.predict")


@dataclass(frozen=True)
class AdaptConfig:
    """How each input adapts the weights (``genre predict --adapt STEPS``)."""

    steps: int = 30  # optimiser steps per call; 0 reconstructs with the trained weights
    # Adam's learning rate: chosen over 1e-4 on simulated samples, never on the held-out
    # families (docs/benchmarks.md, "Test-time adaptation").
    lr: float = 3e-5
    loss_fraction: float = 0.4  # share of the seen rows (outside the calibration block) redrawn as the loss set each step
    check_fraction: float = 0.2  # share withheld from adaptation to choose the weights, as the guard withholds
    check_every: int = 5  # steps between checks of the withheld samples' error
    check_targets: int = 4  # (frame, slice) targets the check reconstructs; all when there are fewer
    batch: int = 2  # targets per step
    # Readout columns each step trains on, where the readout is fully sampled (a mask constant
    # along kx): a crop of the image along x is then a complete smaller problem, and a step on
    # 128 of 448 columns costs about a quarter of one on all. None: always the whole width.
    crop: int | None = 128
    seed: int = 0

    def __post_init__(self) -> None:
        if self.crop is not None and self.crop < 16:
            raise ValueError(f"crop must be >= 16 readout columns or None, got {self.crop}")
        if self.steps < 0 or self.check_every < 1 or self.check_targets < 1 or self.batch < 1:
            raise ValueError("steps must be >= 0; check_every, check_targets and batch >= 1")
        if not 0 < self.loss_fraction < 1 or not 0 < self.check_fraction < 1:
            raise ValueError("loss_fraction and check_fraction must lie in (0, 1)")
        if self.lr <= 0:
            raise ValueError(f"lr must be > 0, got {self.lr}")


def kspace_loss(estimate: torch.Tensor, target: torch.Tensor, weight: torch.Tensor) -> torch.Tensor:
    """Normalised l2 plus normalised l1 error of ``estimate`` at the samples ``weight`` selects (ZS-SSL's loss).

    ``estimate``, ``target`` complex ``(batch, coils, ky, kx)``; ``weight`` ``(batch, 1, ky, kx)`` of 0/1.
    Both norms are relative to ``target``'s at those samples, so the loss is scale-free.
    """
    difference = weight * (estimate - target)
    reference = weight * target
    l2 = torch.linalg.vector_norm(difference) / torch.linalg.vector_norm(reference).clamp_min(1e-12)
    l1 = difference.abs().sum() / reference.abs().sum().clamp_min(1e-12)
    return l2 + l1


def readout_window(hybrid: torch.Tensor, width: int, generator: torch.Generator) -> int:
    """Start of a ``width``-column window of hybrid data ``(..., ky, x)``, drawn in proportion to the energy it holds.

    So that steps train where the object is, not on the empty margins around it, whose
    normalised loss would only fit noise.
    """
    columns = hybrid.abs().square().flatten(0, -2).sum(dim=0).double().cpu()
    totals = torch.cat([columns.new_zeros(1), columns.cumsum(0)])
    windows = totals[width:] - totals[:-width]  # energy of each window start 0 .. nx - width
    if windows.sum() <= 0:
        return int(torch.randint(windows.numel(), (1,), generator=generator))
    return int(torch.multinomial(windows, 1, generator=generator))


class Adapted:
    """``network`` adapted to each call's input before it reconstructs it; see the module docstring.

    Has the reconstructor interface and ``estimate_kspace``, so the hold-out guard can take it as
    a candidate. ``kept`` counts the calls whose check chose adapted weights over the trained ones.
    """

    def __init__(self, network: GenreReconstructor, config: AdaptConfig = AdaptConfig()):
        self.network = network
        self.config = config
        self.name = f"{network.name} (adapted, {config.steps} steps)"
        self.kept = 0
        self.calls = 0
        self._trained = copy.deepcopy(network.model.state_dict())

    def reconstruct(self, kspace: torch.Tensor, mask: torch.Tensor, info: SeriesInfo) -> torch.Tensor:
        """``(frames, slices, coils, ky, kx)`` complex, ``(frames, ky, kx)`` mask -> ``(frames, slices, ky, kx)`` float32."""
        return self._adapted(self.network.reconstruct, kspace, mask, info)

    def estimate_kspace(self, kspace: torch.Tensor, mask: torch.Tensor, info: SeriesInfo) -> torch.Tensor:
        """The adapted network's coil k-space ``(frames, slices, coils, ky, kx)`` for the same inputs as :meth:`reconstruct`."""
        return self._adapted(self.network.estimate_kspace, kspace, mask, info)

    def _adapted(self, forward, kspace: torch.Tensor, mask: torch.Tensor, info: SeriesInfo) -> torch.Tensor:
        """``forward`` (one of the network's inference paths) with weights adapted to this input, then the trained weights back."""
        try:
            self.adapt(kspace, mask, info)
            return forward(kspace, mask, info)
        finally:
            self.network.model.load_state_dict(self._trained)

    def adapt(self, kspace: torch.Tensor, mask: torch.Tensor, info: SeriesInfo) -> None:
        """Leave in the network the weights that best predict withheld samples of this input, the trained ones included."""
        config = self.config
        self.calls += 1
        held = holdout_mask(mask, config.check_fraction, config.seed)
        if config.steps == 0 or not held.any():
            return
        network, model = self.network, self.network.model
        frames, slices = kspace.shape[:2]
        targets = [(f, s) for s in range(slices) for f in range(frames)]
        generator = torch.Generator().manual_seed(config.seed)
        checked = [targets[i] for i in sorted(torch.randperm(len(targets), generator=generator)[: config.check_targets].tolist())]
        seen = mask - held
        device_kspace = network.to_device((kspace * seen[:, None, None]).to(torch.complex64))
        device_seen = network.to_device(seen.to(torch.float32))
        cropped = config.crop is not None and kspace.shape[-1] > config.crop and bool((mask == mask[..., :1]).all())
        if cropped:
            hybrid = readout_to_image(device_kspace)
        device_full = network.to_device(kspace.to(torch.complex64))
        device_held = network.to_device(held.to(torch.float32))
        mode = info.neighbours

        def check() -> float:
            with torch.no_grad():
                k, m = network.gather(device_kspace, device_seen, checked, mode)
                estimate = model.reconstruct_kspace(k, m)
            index = [f for f, _ in checked]
            reference = torch.stack([device_full[f, s] for f, s in checked])
            return holdout_error(estimate.unsqueeze(1), reference.unsqueeze(1), device_held[index])

        best_error, best_step, best_state = check(), 0, None
        start_error = best_error
        optimiser = torch.optim.Adam(model.parameters(), lr=config.lr)
        for step in range(1, config.steps + 1):
            chunk = [targets[i] for i in torch.randint(len(targets), (config.batch,), generator=generator).tolist()]
            # Redrawn each step (ZS-SSL's multi-mask form), so the network cannot learn one split.
            loss_rows = holdout_mask(seen, config.loss_fraction, config.seed + step).to(device_seen.device)
            source, rows, seen_rows = device_kspace, loss_rows, device_seen
            if cropped:
                start = readout_window(hybrid, config.crop, generator)
                source = readout_to_kspace(hybrid[..., start : start + config.crop])
                rows, seen_rows = loss_rows[..., : config.crop], device_seen[..., : config.crop]
            k, m = network.gather(source, seen_rows - rows, chunk, mode)
            k = k * m.unsqueeze(2)
            with torch.enable_grad():
                # In the input's units: the loss is scale-free, so no rescaling of the target.
                output = model.reconstruct_kspace(k, m)
                target = torch.stack([source[f, s] for f, s in chunk])
                weight = rows[[f for f, _ in chunk]].unsqueeze(1)
                loss = kspace_loss(output, target, weight)
                optimiser.zero_grad(set_to_none=True)
                loss.backward()
            optimiser.step()
            if step % config.check_every == 0 or step == config.steps:
                error = check()
                if error < best_error:
                    best_error, best_step, best_state = error, step, copy.deepcopy(model.state_dict())
        if best_state is not None:
            model.load_state_dict(best_state)
            self.kept += 1
        else:
            model.load_state_dict(self._trained)
        log.info("%s: adapted %d steps, withheld-sample error %.4f -> %.4f (step %d kept)",
                 info.stem, config.steps, start_error, best_error, best_step)


def adapted(method, steps: int, lr: float | None = None) -> Adapted:
    """``method`` (GENRE-CMR) adapted to each input, as ``genre predict --adapt STEPS --adapt-lr LR`` asks; raises ``MethodUnavailable``."""
    if not isinstance(method, GenreReconstructor):
        raise MethodUnavailable(f"--adapt fine-tunes the GENRE-CMR network; --method {method.name} has no weights to adapt")
    try:
        config = replace(AdaptConfig(), steps=steps, **({} if lr is None else {"lr": lr}))
    except ValueError as exc:
        raise MethodUnavailable(f"--adapt {steps}" + ("" if lr is None else f" --adapt-lr {lr}") + f": {exc}") from None
    return Adapted(method, config)
