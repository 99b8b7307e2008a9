"""Score weights files on the same fixed simulated samples: the criterion for choosing which weights ship.

Each training run validates on its own fixed samples (drawn from its seed), so two runs'
validation scores do not compare. This draws one set (a seed no training run validates on, by
default) and scores every weights file given on it through ``genre predict``'s reconstructor
(:class:`genre.recon.network.GenreReconstructor`; until 2026-12-03 through the trainer's
validation, which gave the shipped weights 35.37 dB / 0.9377 where this gives 35.37 / 0.9378)
and the organizers' metrics. The
samples come from the training distribution (:mod:`genre.data.simulation`), never from the
held-out families of the generalization benchmark, so choosing by this score does not tune to
those families.

    python -m benchmarks.simulated [WEIGHTS ...] [--methods zero-filled,sense,bart] [--samples 96] [--seed 500] \
        [--ny 48:112] [--nx 48:128] [--coils 4:12] [--adapt STEPS [--adapt-lr LR]]

``--methods`` scores classical reconstructions of the same samples beside the weights (each
sample's adjacent inputs stand as a short series, :func:`as_series`), which tells a shortfall on the
held-out families that the training distribution shares (capacity) from one it does not (a
distribution shift). Every line has the mean over all samples, then each image source's.

``--ny``/``--nx``/``--coils`` draw matrices and coil counts from other ranges than the default
simulation's, as ``genre train --sim-ny/--sim-nx/--sim-coils`` do. ``--adapt`` scores each
weights file a second time with test-time adaptation (:mod:`genre.recon.adapt`), as ``genre
predict --adapt`` runs it.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import Dataset, Subset
from tqdm import tqdm

from genre.data.simulation import SimulatedDataset, SimulationConfig
from genre.evaluation.metrics import image_scores, normalize_percentile
from genre.recon import make_reconstructor
from genre.recon.adapt import Adapted, adapted
from genre.recon.base import MethodUnavailable, SeriesInfo
from genre.recon.network import GenreReconstructor
from genre.series import has_time_axis


def _range(text: str) -> tuple[int, ...]:
    """``MIN:MAX`` as genre train's --sim-* flags take it; SimulationConfig checks the values."""
    return tuple(int(v) for v in text.split(":"))


#: The accelerations the shipped weights' runs train and validate on.
ACCELERATIONS = (4, 8, 12, 16, 20, 24)


#: Adjacent inputs of the classical methods' samples: the shipped presets' (the samples'
#: images, coils and masks do not depend on it, only which frames surround the centre).
ADJACENT = 5


def by_source(dataset: SimulatedDataset) -> dict[str, Subset]:
    """The dataset's samples grouped by image source (its domains), in the sources' order."""
    return {
        source: Subset(dataset, [i for i, domain in enumerate(dataset.domains) if domain == source])
        for source in dataset.config.sources
        if source in dataset.domains
    }


def as_series(item: dict) -> tuple[torch.Tensor, torch.Tensor, SeriesInfo, tuple[int, int]]:
    """A simulated item as the series a reconstructor takes, and where its centre image lies in it.

    The adjacent inputs stand as the series: frames ``(adj, 1, coils, ky, kx)`` for a
    time-resolved stem, slices ``(1, adj, coils, ky, kx)`` of one frame for a single-frame stem
    (whose neighbours are slices); returns k-space (zero where not sampled), mask ``(frames, ky,
    kx)``, the series info and ``(frame, slice)`` of the centre.
    """
    adj = item["kspace"].shape[0]
    measured = item["kspace"] * item["mask"].unsqueeze(1)
    if has_time_axis(item["stem"]):
        return measured.unsqueeze(1), item["mask"], SeriesInfo(item["stem"], adj), (adj // 2, 0)
    return measured.unsqueeze(0), item["mask"][adj // 2 : adj // 2 + 1], SeriesInfo(item["stem"], 1), (0, adj // 2)


def method_scores(method, samples: Dataset) -> np.ndarray:
    """``(samples, 3)`` PSNR, SSIM, NMSE of ``method``'s centre image of each item, scored as validation scores."""
    scores = []
    for index in tqdm(range(len(samples)), desc=method.name, leave=False):
        item = samples[index]
        kspace, mask, info, (frame, slice_) = as_series(item)
        image = method.reconstruct(kspace, mask, info)[frame, slice_].numpy()
        scores.append(image_scores(normalize_percentile(item["target"].numpy()), normalize_percentile(image)))
    return np.array(scores)


def report(name: str, groups: dict[str, np.ndarray]) -> None:
    """One line: the mean over all samples, then each source's PSNR / SSIM; ``groups`` as :func:`method_scores` returns them."""
    psnr, ssim, nmse = np.concatenate(list(groups.values())).mean(axis=0)
    sources = ", ".join(f"{source} {g[:, 0].mean():.2f} / {g[:, 1].mean():.4f}" for source, g in groups.items())
    print(f"{name}: SSIM {ssim:.4f} PSNR {psnr:.2f} NMSE {nmse:.4f} ({sources})", flush=True)


@torch.no_grad()
def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("weights", type=Path, nargs="*", help="weights files (.safetensors with their .json sidecars)")
    parser.add_argument("--methods", type=lambda s: [m for m in s.split(",") if m], default=[], metavar="M[,M]",
                        help="classical methods scored on the same samples: zero-filled, sense, bart")
    parser.add_argument("--samples", type=int, default=96, help="fixed simulated samples (default 96)")
    parser.add_argument("--seed", type=int, default=500, help="their seed (default 500; runs validate on seed + 1 of theirs)")
    parser.add_argument("--ny", type=_range, default=SimulationConfig().ny, metavar="MIN:MAX", help="phase encodes")
    parser.add_argument("--nx", type=_range, default=SimulationConfig().nx, metavar="MIN:MAX", help="readout points")
    parser.add_argument("--coils", type=_range, default=SimulationConfig().coils, metavar="MIN:MAX", help="coil counts")
    parser.add_argument("--adapt", type=int, default=0, metavar="STEPS",
                        help="also score each weights file with test-time adaptation (genre predict --adapt STEPS)")
    parser.add_argument("--adapt-lr", type=float, default=None, metavar="LR", help="its learning rate (genre predict --adapt-lr)")
    args = parser.parse_args(argv)
    if not args.weights and not args.methods:
        parser.error("give weights files, --methods, or both")
    config = SimulationConfig(ny=args.ny, nx=args.nx, coils=args.coils)
    try:  # everything is loaded before the first long run, so a bad argument fails at once
        runs = [(str(path), make_reconstructor("genre", torch.device("cpu"), path)) for path in args.weights]
        if args.adapt or args.adapt_lr is not None:
            for label, network in list(runs):
                adaptation = adapted(network, args.adapt, args.adapt_lr)
                runs.append((f"{label} {adaptation.name}", adaptation))
        runs += [(name, make_reconstructor(name, torch.device("cpu"))) for name in args.methods]
    except MethodUnavailable as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(f"{args.samples} simulated samples, seed {args.seed}, R {ACCELERATIONS}, ny {config.ny}, nx {config.nx}, coils {config.coils}")
    for label, method in runs:
        # Weights take their own number of adjacent inputs; the samples are otherwise the same.
        network = method.network if isinstance(method, Adapted) else method
        adjacent = network.model.config.adjacent if isinstance(network, GenreReconstructor) else ADJACENT
        dataset = SimulatedDataset(args.samples, adjacent, ACCELERATIONS, args.seed, config, fixed=True)
        report(label, {source: method_scores(method, subset) for source, subset in by_source(dataset).items()})
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
