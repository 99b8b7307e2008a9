"""Validation during training: held-out samples through predict's forward path, scored as ``genre evaluate`` scores.

Each sample's undersampled adjacent k-space goes through :meth:`Generator.reconstruct` (input
scale, network, unscale: what ``genre predict`` runs), and the reconstruction and the
zero-filled image are scored against the RSS target with the organizers' per-image metrics
(:func:`genre.evaluation.metrics.image_scores` after per-image percentile normalisation).
"""

from __future__ import annotations

from pathlib import Path

import torch
from torch.utils.data import Dataset

from genre.evaluation.metrics import image_scores, normalize_percentile
from genre.kspace import rss_from_kspace
from genre.models.generator import Generator
from genre.train import plots
from genre.train.distributed import DistContext, all_reduce_sum

#: The columns of a group's result, in the order of :func:`genre.evaluation.metrics.image_scores`.
METRICS = ("psnr", "ssim", "nmse", "zf_psnr", "zf_ssim", "zf_nmse")


def evenly_spaced(n: int, limit: int | None) -> list[int]:
    """At most ``limit`` indices of ``range(n)``, first and last included, evenly spaced; all when ``limit`` is None."""
    if limit is None or n <= limit:
        return list(range(n))
    return sorted({round(i * (n - 1) / (limit - 1)) for i in range(limit)}) if limit > 1 else [0]


@torch.no_grad()
def validate(
    model: Generator,
    val_sets: dict[str, Dataset],
    ctx: DistContext,
    max_samples: int | None,
    epoch: int,
    panel: Path | None = None,
) -> dict[str, dict[str, float]]:
    """Mean metrics per validation group (``samples`` and :data:`METRICS`); groups without samples are left out.

    ``val_sets`` maps a group name to a dataset of training items (``kspace`` ``(adj, coils,
    ky, kx)``, ``mask`` ``(adj, ky, kx)``, ``target`` ``(ky, kx)``). The samples (at most
    ``max_samples`` per group, evenly spaced) are sharded over the processes and the sums
    reduced. Rank 0 draws the first sample to ``panel``, titled with ``epoch`` (1-based).
    """
    model.eval()
    centre = model.config.adjacent // 2
    results = {}
    panel_done = panel is None
    for group, dataset in val_sets.items():
        indices = evenly_spaced(len(dataset), max_samples)
        sums = torch.zeros(len(METRICS) + 1, dtype=torch.float64)
        for position in range(ctx.rank, len(indices), ctx.world_size):
            item = dataset[indices[position]]
            full = item["kspace"].unsqueeze(0).to(ctx.device)
            mask = item["mask"].unsqueeze(0).to(ctx.device)
            measured = full * mask.unsqueeze(2)
            recon = model.reconstruct(measured, mask)[0].float().cpu().numpy()
            zero_filled = rss_from_kspace(measured[0, centre]).cpu().numpy()
            gt = item["target"].numpy()
            reference = normalize_percentile(gt)
            scores = image_scores(reference, normalize_percentile(recon))
            zf_scores = image_scores(reference, normalize_percentile(zero_filled))
            sums += torch.tensor([*scores, *zf_scores, 1.0], dtype=torch.float64)
            if ctx.is_main and not panel_done:
                title = (f"epoch {epoch}: {item['stem']} frame {item['frame']} slice {item['slice']}, "
                         f"{item['pattern']}{item['acceleration']}, SSIM {scores[1]:.4f} (zero-filled {zf_scores[1]:.4f})")
                plots.plot_panel(gt, zero_filled, recon, title, panel)
                panel_done = True
        sums = all_reduce_sum(ctx, sums.to(ctx.device)).cpu()
        count = int(sums[-1])
        if count:
            results[group] = {"samples": count, **{m: float(v) / count for m, v in zip(METRICS, sums)}}
    return results
