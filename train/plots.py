"""PNG figures of a run (matplotlib, Agg backend): loss curves, CoV weights (the paper's Fig. 3), validation panels."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402 - the backend must be chosen first
import numpy as np  # noqa: E402

from genre.train.records import column  # noqa: E402

_LOSSES = ("loss", "fid", "ear", "sda", "adv", "disc")


def _smooth(values: list[float], window: int) -> np.ndarray:
    """Running mean over ``window`` steps, NaN-aware, so that per-sample noise does not hide the trend."""
    x = np.asarray(values, dtype=float)
    valid = ~np.isnan(x)
    kernel = np.ones(window)
    sums = np.convolve(np.where(valid, x, 0.0), kernel, mode="full")[: len(x)]
    counts = np.convolve(valid.astype(float), kernel, mode="full")[: len(x)]
    with np.errstate(invalid="ignore", divide="ignore"):
        return sums / counts


def plot_losses(rows: Sequence[Mapping[str, str]], path: Path) -> None:
    """Every logged loss over the steps (raw, faint, and a running mean), one panel each, log scale."""
    steps = column(rows, "step")
    present = [name for name in _LOSSES if any(not math.isnan(v) for v in column(rows, name))]
    window = max(1, len(steps) // 25)
    fig, axes = plt.subplots(len(present), 1, figsize=(8, 2.2 * len(present)), sharex=True, squeeze=False)
    for ax, name in zip(axes[:, 0], present):
        values = column(rows, name)
        ax.plot(steps, values, color="0.75", linewidth=0.6)
        ax.plot(steps, _smooth(values, window), color="C0", linewidth=1.2)
        ax.set_ylabel(name)
        if all(v > 0 for v in values if not math.isnan(v)):
            ax.set_yscale("log")
        ax.grid(alpha=0.3)
    axes[-1, 0].set_xlabel("step")
    fig.suptitle("training losses (grey: per step; blue: running mean)")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def plot_cov_weights(rows: Sequence[Mapping[str, str]], path: Path) -> None:
    """The CoV loss weights over the steps, as the paper's Fig. 3."""
    steps = column(rows, "step")
    fig, ax = plt.subplots(figsize=(8, 3.5))
    for name in ("fid", "ear", "sda"):
        values = column(rows, f"w_{name}")
        if any(not math.isnan(v) for v in values):
            ax.plot(steps, values, label=f"alpha_{name}")
    ax.set_xlabel("step")
    ax.set_ylabel("CoV weight")
    ax.set_ylim(0, 1)
    ax.grid(alpha=0.3)
    ax.legend()
    ax.set_title("CoV loss weights")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def plot_panel(gt: np.ndarray, zero_filled: np.ndarray, recon: np.ndarray, title: str, path: Path) -> None:
    """GT, zero-filled, reconstruction and ``|recon - GT|`` of one ``(ky, kx)`` image, on the GT's grey scale."""
    vmax = float(np.percentile(gt, 99.5)) or 1.0
    error = np.abs(recon - gt)
    fig, axes = plt.subplots(1, 4, figsize=(13, 3.8))
    images = (("ground truth", gt, vmax), ("zero-filled", zero_filled, vmax), ("reconstruction", recon, vmax),
              ("|error| x5", error, vmax / 5))
    for ax, (name, image, top) in zip(axes, images):
        ax.imshow(image, cmap="gray" if name != "|error| x5" else "inferno", vmin=0, vmax=top)
        ax.set_title(name)
        ax.axis("off")
    fig.suptitle(title)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
