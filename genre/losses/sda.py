"""Statistical Distribution Alignment (SDA): symmetric KL between feature Gaussians of different domains.

For each sample and each cascade the feature map ``(batch, C, h, w)`` of the cascade's last
decoder level is average-pooled to a fixed ``grid x grid`` (the cost does not depend on the
image size) and a Gaussian ``N(mu, Sigma)`` is fitted to its ``grid^2`` positions, one
``d = C`` dimensional vector each. **Decision** (METHOD.md): the paper's "one feature vector
per sample" cannot define a covariance; the per-position reading is the Gaussian hypothesis of
its reference [28]. The covariance is shrunk towards a scaled identity,
``Sigma + eps * (tr(Sigma) / d + floor) * I``, so it is positive definite even when channels
are dead or ``d`` exceeds the number of positions. **Decision**: the shrinkage is relative to
the mean variance, not absolute, and the loss is the symmetric KL per feature dimension
(divided by ``d``). With an absolute ``eps`` the KL depended on the feature scale and reached
~1e3 on the first training steps (one near-constant channel suffices); the CoV weighting then
gave SDA two thirds of the weight and fidelity rose while SDA fell (``runs`` of 2026-11-25,
docs/benchmarks.md). Relative shrinkage makes the loss invariant to the feature scale and
bounds the condition number of every covariance.

The symmetric KL is Jeffreys' divergence ``KL(p || q) + KL(q || p)`` (the sum, not the mean).
The loss of a sample (Eq. 5-6) is the mean of the symmetric KL over the pairs it forms with the
``window`` most recent samples stored for that cascade whose domain differs from its own,
summed over cascades. The stored samples are detached, so the gradient flows only into the
current features.
"""

from __future__ import annotations

from collections import deque
from dataclasses import asdict, dataclass
from typing import Any, NamedTuple, Sequence

import torch
import torch.nn.functional as F


_FLOOR = 1e-6  # added to the mean variance before shrinking, for maps that are constant


@dataclass(frozen=True)
class SDAConfig:
    """SDA loss settings. ``window`` is the paper's SDAWindow; ``grid`` the pooled feature grid side."""

    grid: int = 16
    eps: float = 0.1  # shrinkage, relative to the mean feature variance
    window: int = 4
    diagonal: bool = False

    def __post_init__(self) -> None:
        if self.grid < 2 or self.window < 1 or self.eps <= 0:
            raise ValueError(f"need grid >= 2, window >= 1 and eps > 0, got {self}")


class Gaussian(NamedTuple):
    """A batch of Gaussians: ``mean (..., d)``; ``scale`` the lower Cholesky factor of the
    covariance ``(..., d, d)``, or for a diagonal covariance the standard deviations ``(..., d)``."""

    mean: torch.Tensor
    scale: torch.Tensor

    @property
    def diagonal(self) -> bool:
        return self.scale.ndim == self.mean.ndim

    def detach(self) -> Gaussian:
        return Gaussian(self.mean.detach(), self.scale.detach())


def fit_gaussian(features: torch.Tensor, grid: int = 16, eps: float = 1e-3, diagonal: bool = False) -> Gaussian:
    """Per-sample Gaussian of the pooled feature vectors of ``(batch, C, h, w)``: ``mean (batch, C)``.

    The covariance is the unbiased sample covariance over the ``grid^2`` positions plus
    ``eps * (mean variance + floor) * I``; the floor keeps an all-constant map well defined. Computed in float32 or wider with autocast off: Cholesky has no half-precision
    kernels and the covariance needs the precision.
    """
    if features.ndim != 4:
        raise ValueError(f"expected (batch, C, h, w) features, got shape {tuple(features.shape)}")
    with torch.autocast(device_type=features.device.type, enabled=False):
        dtype = torch.promote_types(features.dtype, torch.float32)
        pooled = F.adaptive_avg_pool2d(features.to(dtype), grid)
        vectors = pooled.flatten(2).transpose(1, 2)  # (batch, positions, C)
        mean = vectors.mean(dim=1)
        centred = vectors - mean.unsqueeze(1)
        n = vectors.shape[1]
        if diagonal:
            variance = centred.square().sum(dim=1) / (n - 1)
            ridge = eps * (variance.mean(dim=-1, keepdim=True) + _FLOOR)
            return Gaussian(mean, (variance + ridge).sqrt())
        cov = centred.transpose(1, 2) @ centred / (n - 1)
        ridge = eps * (torch.diagonal(cov, dim1=-2, dim2=-1).mean(dim=-1) + _FLOOR)
        cov = cov + ridge[:, None, None] * torch.eye(cov.shape[-1], dtype=dtype, device=cov.device)
        return Gaussian(mean, torch.linalg.cholesky(cov))


def _logdet(g: Gaussian) -> torch.Tensor:
    diag = g.scale if g.diagonal else torch.diagonal(g.scale, dim1=-2, dim2=-1)
    return 2.0 * diag.log().sum(dim=-1)


def kl_divergence(p: Gaussian, q: Gaussian) -> torch.Tensor:
    """Closed-form ``KL(p || q)`` of (broadcastable batches of) Gaussians; returns the batch shape.

    ``0.5 * (tr(Sq^-1 Sp) + (mq - mp)^T Sq^-1 (mq - mp) - d + log det Sq - log det Sp)``, with
    ``tr(Sq^-1 Sp) = ||Lq^-1 Lp||_F^2`` and the Mahalanobis term ``||Lq^-1 (mq - mp)||^2``
    from triangular solves; ``p`` and ``q`` must both be full or both diagonal.
    """
    if p.diagonal != q.diagonal:
        raise ValueError("cannot mix full and diagonal Gaussians")
    d = p.mean.shape[-1]
    delta = q.mean - p.mean
    if p.diagonal:
        trace = (p.scale / q.scale).square().sum(dim=-1)
        mahalanobis = (delta / q.scale).square().sum(dim=-1)
    else:
        whitened = torch.linalg.solve_triangular(q.scale, p.scale, upper=False)
        trace = whitened.square().sum(dim=(-2, -1))
        whitened_delta = torch.linalg.solve_triangular(q.scale, delta.unsqueeze(-1), upper=False)
        mahalanobis = whitened_delta.square().sum(dim=(-2, -1))
    return 0.5 * (trace + mahalanobis - d + _logdet(q) - _logdet(p))


def symmetric_kl(p: Gaussian, q: Gaussian) -> torch.Tensor:
    """Jeffreys' divergence ``KL(p || q) + KL(q || p)``; returns the broadcast batch shape."""
    return kl_divergence(p, q) + kl_divergence(q, p)


class SDABank:
    """Per-cascade memory of the most recent samples' feature Gaussians, and the SDA loss against it.

    Each cascade keeps the ``config.window`` most recent samples (any domain) as detached
    ``(domain, Gaussian)`` entries. With the domain-interleaved sampler the window holds the
    other domains' latest samples. Samples of one batch are compared with the stored ones only,
    not with each other. The bank is per process (DDP).
    """

    def __init__(self, config: SDAConfig | None = None) -> None:
        self.config = config or SDAConfig()
        self._banks: list[deque[tuple[str, Gaussian]]] = []

    def _bank(self, cascade: int) -> deque[tuple[str, Gaussian]]:
        while len(self._banks) <= cascade:
            self._banks.append(deque(maxlen=self.config.window))
        return self._banks[cascade]

    def loss(self, features: Sequence[torch.Tensor], domains: str | Sequence[str]) -> torch.Tensor:
        """SDA loss of the current samples, then store them.

        ``features``: one ``(batch, C, h, w)`` map per cascade; ``domains``: one key per sample
        (a single key applies to the whole batch). Returns a scalar: per cascade, the mean
        symmetric KL over all (current sample, stored sample of another domain) pairs; summed
        over cascades; the KL is per feature dimension. Zero (without a graph) while no stored
        sample of another domain exists.
        """
        if not features:
            raise ValueError("features must hold one map per cascade")
        batch = features[0].shape[0]
        keys = [domains] * batch if isinstance(domains, str) else list(domains)
        if len(keys) != batch:
            raise ValueError(f"{len(keys)} domain keys for a batch of {batch}")
        cfg = self.config
        current = [fit_gaussian(f, cfg.grid, cfg.eps, cfg.diagonal) for f in features]
        total = torch.zeros((), dtype=current[0].mean.dtype, device=features[0].device)
        for cascade, gaussian in enumerate(current):
            pairs = [
                (b, stored)
                for b, key in enumerate(keys)
                for stored_key, stored in self._bank(cascade)
                if stored_key != key
            ]
            if not pairs:
                continue
            index = torch.tensor([b for b, _ in pairs], device=gaussian.mean.device)
            p = Gaussian(gaussian.mean[index], gaussian.scale[index])
            q = Gaussian(
                torch.stack([s.mean for _, s in pairs]).to(p.mean.device),
                torch.stack([s.scale for _, s in pairs]).to(p.mean.device),
            )
            total = total + symmetric_kl(p, q).mean() / p.mean.shape[-1]
        for cascade, gaussian in enumerate(current):
            bank = self._bank(cascade)
            for b, key in enumerate(keys):
                bank.append((key, Gaussian(gaussian.mean[b], gaussian.scale[b]).detach()))
        return total

    def state_dict(self) -> dict[str, Any]:
        """The config and every stored entry (tensors on their device), for exact resumption."""
        return {
            "config": asdict(self.config),
            "cascades": [
                [{"domain": key, "mean": g.mean, "scale": g.scale} for key, g in bank] for bank in self._banks
            ],
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore :meth:`state_dict`'s output; the config must match this bank's."""
        if state["config"] != asdict(self.config):
            raise ValueError(f"SDA config mismatch: saved {state['config']}, current {asdict(self.config)}")
        self._banks = [
            deque(
                ((entry["domain"], Gaussian(entry["mean"], entry["scale"])) for entry in bank),
                maxlen=self.config.window,
            )
            for bank in state["cascades"]
        ]
