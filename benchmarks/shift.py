"""Which part of a held-out family moves the network's lead over the classical methods: its images or its coils.

On the training distribution the shipped weights lead BART by about 3 dB in the mean (level
with it by the median); on the held-out families of the generalization benchmark they trail it
(docs/benchmarks.md). Those families differ from training in several ways at once: image
content, coil model, matrix size, coil count. This benchmark changes one at a time, at the training's matrix sizes, coil counts, SNR,
patterns and R (:class:`genre.data.simulation.SimulationConfig`), acquired by the training's
own :func:`~genre.data.simulation.acquire`:

* ``training images, training coils``: the training distribution itself (its image sources in turn);
* ``F images, training coils``: family ``F``'s image series (``genre.data.heldout``), training coils;
* ``training images, F coils``: training images seen by ``F``'s coil model;
* ``F images, F coils``: both.

Every cell scores the weights (through ``genre predict``'s reconstructor) and the classical
methods on the same samples. The per-sample difference between the network and a classical
method does not depend on how hard a cell's samples are, so its change from cell to cell is the
network's own loss to the shift; its median is printed beside its mean, because a classical
method's rare failures (ESPIRiT on an image that fills the field of view) move the mean. A
diagnosis only: the held-out images and coils are never drawn by training
(``tests/test_simulation.py``).

    python -m benchmarks.shift WEIGHTS [--methods sense,bart] [--samples 48] [--seed 600] [--families bart,biological]
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import Dataset

from benchmarks.simulated import ACCELERATIONS, ADJACENT, method_scores
from genre.data.heldout import RENDERERS
from genre.data.simulation import TRAINING_SOURCES, SimulationConfig, acquire, source_series
from genre.recon import make_reconstructor
from genre.recon.base import MethodUnavailable

#: A held-out family's series in the shift cells: (stem, frames, slices) as its benchmark tree has them.
FAMILY_SERIES = (("cine_sax", 6, 1), ("cine_lax_4ch", 6, 1), ("T2map", 3, 1), ("T1w", 1, 2), ("lge_sax", 1, 2), ("blackblood", 1, 2))


class ShiftDataset(Dataset):
    """``length`` items whose images come from ``images`` and coils from ``coils``: a family's name or ``"training"``."""

    def __init__(self, length: int, adjacent: int, images: str, coils: str, seed: int, config: SimulationConfig = SimulationConfig()):
        for name in (images, coils):
            if name != "training" and name not in RENDERERS:
                raise ValueError(f"unknown source {name!r}; choose training or one of {', '.join(RENDERERS)}")
        self.length, self.adjacent, self.images, self.coils, self.seed, self.config = length, adjacent, images, coils, seed, config

    def __len__(self) -> int:
        return self.length

    def __getitem__(self, index: int) -> dict:
        # 7927: apart from the simulated training stream (7919); the same sizes in every cell.
        rng = np.random.default_rng([7927, self.seed, index])
        ny = int(rng.integers(self.config.ny[0], self.config.ny[1] + 1))
        nx = int(rng.integers(self.config.nx[0], self.config.nx[1] + 1))
        key = f"S{index}"
        if self.images == "training":
            images, stem = source_series(rng, TRAINING_SOURCES[index % len(TRAINING_SOURCES)], ny, nx)
        else:
            stem, frames, slices = FAMILY_SERIES[index % len(FAMILY_SERIES)]
            images = RENDERERS[self.images][0](stem, frames, slices, ny, nx, self.seed, key)
        maps = None if self.coils == "training" else lambda c, y, x: RENDERERS[self.coils][1](c, y, x, self.seed, key)
        return acquire(rng, images, stem, ACCELERATIONS, self.adjacent, self.config, maps)


def cells(families: list[str]) -> list[tuple[str, str]]:
    """(images, coils) of every cell: the training distribution first, then each family's three."""
    out = [("training", "training")]
    for family in families:
        out += [(family, "training"), ("training", family), (family, family)]
    return out


def pair(a: np.ndarray, b: np.ndarray) -> str:
    """``a - b`` per sample, PSNR and SSIM: the mean, and the median in brackets (a few failures of one method move the mean)."""
    d = a[:, :2] - b[:, :2]
    return f"{d[:, 0].mean():+.2f} ({np.median(d[:, 0]):+.2f}) / {d[:, 1].mean():+.4f} ({np.median(d[:, 1]):+.4f})"


@torch.no_grad()
def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("weights", type=Path, help="weights file (.safetensors with its .json sidecar)")
    parser.add_argument("--methods", type=lambda s: [m for m in s.split(",") if m], default=["sense", "bart"],
                        metavar="M[,M]", help="classical methods to compare with (default sense,bart)")
    parser.add_argument("--families", type=lambda s: s.split(","), default=list(RENDERERS), metavar="F[,F]",
                        help=f"held-out families (default {','.join(RENDERERS)})")
    parser.add_argument("--samples", type=int, default=48, help="samples per cell (default 48)")
    parser.add_argument("--seed", type=int, default=600, help="their seed (default 600)")
    args = parser.parse_args(argv)
    unknown = sorted(set(args.families) - set(RENDERERS))
    if unknown:
        parser.error(f"unknown families {', '.join(unknown)}; choose from {', '.join(RENDERERS)}")
    try:
        network = make_reconstructor("genre", torch.device("cpu"), args.weights)
        methods = [make_reconstructor(name, torch.device("cpu")) for name in args.methods]
    except MethodUnavailable as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(f"{args.samples} samples per cell, seed {args.seed}; PSNR / SSIM means, and the network minus each method "
          "per sample: mean (median)")
    print("| images | coils | GENRE-CMR | " + " | ".join(m.name for m in methods) + " | "
          + " | ".join(f"GENRE-CMR − {m.name}" for m in methods) + " |")
    for images, coils in cells(args.families):
        dataset = ShiftDataset(args.samples, ADJACENT, images, coils, args.seed)
        ours = method_scores(network, dataset)
        theirs = [method_scores(method, dataset) for method in methods]
        row = [images, coils, *(f"{s[:, 0].mean():.2f} / {s[:, 1].mean():.4f}" for s in (ours, *theirs))]
        row += [pair(ours, s) for s in theirs]
        print("| " + " | ".join(row) + " |", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
