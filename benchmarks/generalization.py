"""Where GENRE-CMR loses on the held-out families: the analysis behind docs/benchmarks.md's findings.

Run after ``scripts/generalization.sh OUT`` (same OUT, same fixed seeds)::

    python -m benchmarks.generalization build/generalization

Per family it prints:

* each method's mean SSIM and PSNR, and GENRE-CMR's gain over zero-filled, CG-SENSE and BART,
  grouped by coil count (read from the held-out vendor folder, ``HeldOut_<nc>ch_...``), phase
  encodes (within the simulated training's range, :data:`TRAINED_NY`, or above it), R, pattern
  and stem kind (cine: periodic frames; mapping: weightings; single-frame: slice neighbours),
  with the number of files where GENRE-CMR is below zero-filled;
* the median share of the zero-filled error that each method moves (``|x - zf| / |gt - zf|``)
  and removes (``1 - |x - gt|^2 / |zf - gt|^2``), every array scaled by its 99.5th percentile
  as the scorer scales images;
* the mean and minimum coherence of the network's learned coil maps (``Generator.sensitivity``)
  and of CG-SENSE's ACS maps with the true maps, on each file's first frame and slice;
* the largest change of the network's output, relative to its peak, when a file's k-space is
  scaled by 1000 (the input normalisation should make it scale-free).

The trees are re-simulated from the seeds the script uses, so the true coil maps are at hand.
"""

from __future__ import annotations

import argparse
import csv
import re
from pathlib import Path

import numpy as np
import scipy.io
import torch

from genre.evaluation.reference import reference_image
from genre.data.cmrx import find_cases
from genre.data.contract import OutputMode
from genre.data.simulation import SimulationConfig
from genre.data.synthetic import SynthConfig, job_mask, plan, series_images, series_kspace
from genre.recon.base import SeriesInfo
from genre.models.generator import input_scale
from genre.recon.network import build_genre_reconstructor
from genre.recon.sense import sens_maps_from_acs
from genre.series import PERIODIC_PREFIXES, is_mapping

METHODS = ("zero-filled", "sense", "bart", "genre")
#: The trees of scripts/generalization.sh, by family (its synth options).
CONFIGS = {
    "cardiac": SynthConfig(seed=101),
    "bart": SynthConfig(family="bart", frames=6, slices=2, seed=11),
    "biological": SynthConfig(family="biological", frames=6, slices=2, seed=12),
}
#: Row order of the grouped table.
GROUP_ORDER = ("4-6 coils", "8-12 coils", "16-32 coils", "ny in training", "ny above", "R 8", "R 16", "R 24", "Uniform",
               "ktGaussian", "ktRadial", "cine", "mapping", "single-frame", "all")
#: The most phase encodes the simulated training draws (SimulationConfig.ny).
TRAINED_NY = SimulationConfig().ny[1]
#: Pixels above this fraction of the image's peak count as the object in the map coherence.
OBJECT_LEVEL = 0.1


def stem_kind(stem: str) -> str:
    """``cine`` (periodic frames), ``mapping`` (weightings) or ``single-frame`` (slice neighbours)."""
    if is_mapping(stem):
        return "mapping"
    return "cine" if stem.startswith(PERIODIC_PREFIXES) else "single-frame"


def vendor_coils(vendor: str) -> int | None:
    """The coil count a held-out vendor folder names (``HeldOut_04ch_SNR40`` -> 4); None for other vendors."""
    found = re.search(r"_(\d+)ch_", vendor)
    return int(found.group(1)) if found else None


def coil_class(coils: int | None) -> str | None:
    if coils is None:
        return None
    return "4-6 coils" if coils <= 6 else "8-12 coils" if coils <= 12 else "16-32 coils"


def map_coherence(estimate: np.ndarray, truth: np.ndarray, region: np.ndarray) -> float:
    """Mean over ``region`` ``(ny, nx)`` of ``|<e, t>| / (|e| |t|)`` over coils of maps ``(coils, ny, nx)``: 1 = equal up to a phase and scale per pixel."""
    inner = np.abs((estimate.conj() * truth).sum(0))
    norms = np.sqrt((np.abs(estimate) ** 2).sum(0) * (np.abs(truth) ** 2).sum(0))
    return float((inner / np.maximum(norms, 1e-12))[region].mean())


def correction(gt: np.ndarray, zero_filled: np.ndarray, x: np.ndarray) -> tuple[float, float]:
    """(moved, removed): ``|x - zf| / |gt - zf|`` and ``1 - |x - gt|^2 / |zf - gt|^2``, each array scaled by its 99.5th percentile."""
    gt, zero_filled, x = (a / np.percentile(a, 99.5) for a in (gt, zero_filled, x))
    error = np.linalg.norm(gt - zero_filled)
    return float(np.linalg.norm(x - zero_filled) / error), float(1 - np.linalg.norm(x - gt) ** 2 / error**2)


def _scores(compare: Path, config: SynthConfig) -> list[dict]:
    """One dict per file: its per_file.csv metadata, its phase encodes ``ny`` and each method's ``{"ssim", "psnr"}``."""
    ny = {(job.domain.vendor, job.patient, job.stem): job.ny for job in plan(config)}
    files: dict[str, dict] = {}
    for method in METHODS:
        for row in csv.DictReader(open(compare / method / "per_file.csv", newline="")):
            entry = files.setdefault(row["file"], dict(row, ny=ny[row["vendor"], row["patient"], row["stem"]]))
            entry[method] = {"ssim": float(row["ssim"]), "psnr": float(row["psnr"])}
    return list(files.values())


def _print_groups(rows: list[dict], metric: str) -> None:
    groups: dict[str, list[dict]] = {}
    for row in rows:
        size = "ny in training" if row["ny"] <= TRAINED_NY else "ny above"
        for key in (coil_class(vendor_coils(row["vendor"])), size, f"R {row['acceleration']}", row["pattern"], stem_kind(row["stem"]), "all"):
            if key is not None:
                groups.setdefault(key, []).append(row)
    print(f"{metric.upper():14s}")
    print(f"{'group':14s} files " + " ".join(f"{m:>11s}" for m in METHODS) + "  genre-zf  genre-sense  genre-bart  genre<zf")
    for key, chosen in sorted(groups.items(), key=lambda item: GROUP_ORDER.index(item[0])):
        mean = {m: np.mean([r[m][metric] for r in chosen]) for m in METHODS}
        below = sum(r["genre"][metric] < r["zero-filled"][metric] for r in chosen)
        print(f"{key:14s} {len(chosen):5d} " + " ".join(f"{mean[m]:11.4f}" for m in METHODS)
              + f"  {mean['genre'] - mean['zero-filled']:+.4f}   {mean['genre'] - mean['sense']:+.4f}     "
              f"{mean['genre'] - mean['bart']:+.4f}     {below}/{len(chosen)}")


def _print_corrections(root: Path, family: str) -> None:
    data = root / "data" / family
    shares: dict[str, list[tuple[float, float]]] = {m: [] for m in METHODS[1:]}
    for case in find_cases(data):
        gt = reference_image(case, data, OutputMode.RANKING).astype(np.float64)
        outputs = {m: scipy.io.loadmat(case.output_path(root / "pred" / family / m))["img4ranking"].astype(np.float64)
                   for m in METHODS}
        for method in shares:
            shares[method].append(correction(gt, outputs["zero-filled"], outputs[method]))
    print("  ".join(f"{m}: moves {np.median([s[0] for s in v]):.2f}, removes {np.median([s[1] for s in v]):+.2f}"
                    for m, v in shares.items()) + " of the zero-filled error (medians over files)")


def _print_maps_and_scale(config: SynthConfig) -> None:
    reconstructor = build_genre_reconstructor(None, torch.device("cpu"))
    network, acs, scale_change = [], [], 0.0
    for index, job in enumerate(plan(config)):
        images, maps = series_images(job, config.seed)
        kspace = torch.from_numpy(series_kspace(job, config.seed))[:, :1]
        pattern, acceleration = job.combos[0]
        mask = torch.from_numpy(job_mask(job, pattern, acceleration, config))
        undersampled = kspace * mask[:, None, None]
        first = undersampled[0, 0]
        with torch.no_grad():
            learned = reconstructor.model.sensitivity((first / input_scale(first[None]))[None], mask[:1])[0].numpy()
        region = np.abs(images[0, 0]) > OBJECT_LEVEL * np.abs(images[0, 0]).max()
        network.append(map_coherence(learned, maps, region))
        acs.append(map_coherence(sens_maps_from_acs(undersampled, mask)[0, 0].numpy(), maps, region))
        if index == 0:
            info = SeriesInfo(job.stem, job.frames)
            plain = reconstructor.reconstruct(undersampled, mask, info)
            scaled = reconstructor.reconstruct(undersampled * 1000, mask, info) / 1000
            scale_change = float((plain - scaled).abs().max() / plain.abs().max())
    print(f"coil-map coherence with the true maps: network mean {np.mean(network):.4f} (min {min(network):.3f}), "
          f"ACS maps mean {np.mean(acs):.4f} (min {min(acs):.3f}); k-space x 1000 changes the output by {scale_change:.1e} of its peak")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("out", type=Path, help="the OUT folder of scripts/generalization.sh")
    args = parser.parse_args(argv)
    for family, config in CONFIGS.items():
        compare = args.out / "compare" / family
        if not compare.is_dir():
            continue
        print(f"== {family} ==")
        rows = _scores(compare, config)
        _print_groups(rows, "ssim")
        _print_groups(rows, "psnr")
        _print_corrections(args.out, family)
        _print_maps_and_scale(config)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
