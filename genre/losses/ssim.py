"""Differentiable SSIM with scikit-image's default definition.

``structural_similarity(a, b, data_range=R)`` of scikit-image (the organizers' metric, see
``CMRXRECON.md``) uses a uniform 7x7 window, ``K1 = 0.01``, ``K2 = 0.03``, the sample
covariance (``N / (N - 1)``) and averages the SSIM map after cropping ``(7 - 1) // 2`` pixels
from every border. The cropped map is exactly the map of the *valid* window positions, so a
stride-1 average pool without padding computes it directly.

Images are real ``(batch, ky, kx)`` or ``(batch, 1, ky, kx)``; results are per image,
``(batch,)``.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

WIN_SIZE = 7
K1 = 0.01
K2 = 0.03


def as_nchw(image: torch.Tensor) -> torch.Tensor:
    """``(batch, ky, kx)`` or ``(batch, 1, ky, kx)`` -> ``(batch, 1, ky, kx)``, the layout ``F.conv2d`` wants."""
    if image.ndim == 3:
        return image.unsqueeze(1)
    if image.ndim == 4 and image.shape[1] == 1:
        return image
    raise ValueError(f"expected (batch, ky, kx) or (batch, 1, ky, kx), got shape {tuple(image.shape)}")


def image_range(image: torch.Tensor) -> torch.Tensor:
    """Per-image maximum of ``(batch, ...)``, detached: the ``data_range`` the challenge uses (``a.max()``)."""
    return image.detach().flatten(1).amax(dim=1)


def ssim(
    x: torch.Tensor,
    y: torch.Tensor,
    data_range: float | torch.Tensor,
    win_size: int = WIN_SIZE,
    k1: float = K1,
    k2: float = K2,
) -> torch.Tensor:
    """Mean SSIM of each image pair, as ``skimage.metrics.structural_similarity`` with its defaults.

    ``x`` and ``y`` are real ``(batch, ky, kx)`` or ``(batch, 1, ky, kx)``; ``data_range`` is a
    number or a ``(batch,)`` tensor (one range per image). Returns ``(batch,)``. Half-precision
    inputs are computed in float32: the variances are differences of nearly equal moments.
    """
    x, y = as_nchw(x), as_nchw(y)
    if x.shape != y.shape:
        raise ValueError(f"shape mismatch: {tuple(x.shape)} vs {tuple(y.shape)}")
    if win_size % 2 != 1 or min(x.shape[-2:]) < win_size:
        raise ValueError(f"win_size {win_size} must be odd and fit in the image {tuple(x.shape[-2:])}")
    dtype = torch.promote_types(x.dtype, torch.float32)
    x, y = x.to(dtype), y.to(dtype)
    data_range = torch.as_tensor(data_range, dtype=dtype, device=x.device).reshape(-1, 1, 1, 1)

    def window_mean(t: torch.Tensor) -> torch.Tensor:
        return F.avg_pool2d(t, win_size, stride=1)

    n = win_size * win_size
    cov_norm = n / (n - 1)
    mu_x, mu_y = window_mean(x), window_mean(y)
    var_x = cov_norm * (window_mean(x * x) - mu_x * mu_x)
    var_y = cov_norm * (window_mean(y * y) - mu_y * mu_y)
    cov_xy = cov_norm * (window_mean(x * y) - mu_x * mu_y)
    c1 = (k1 * data_range) ** 2
    c2 = (k2 * data_range) ** 2
    ssim_map = ((2 * mu_x * mu_y + c1) * (2 * cov_xy + c2)) / ((mu_x**2 + mu_y**2 + c1) * (var_x + var_y + c2))
    return ssim_map.flatten(1).mean(dim=1)


def ssim_loss(
    rec: torch.Tensor, gt: torch.Tensor, data_range: float | torch.Tensor | None = None
) -> torch.Tensor:
    """``1 - SSIM(rec, gt)`` averaged over the batch; ``data_range`` defaults to each GT image's maximum.

    Layouts as :func:`ssim`. The default range is the organizers' choice (``data_range = gt.max()``).
    """
    if data_range is None:
        data_range = image_range(gt)
    return 1.0 - ssim(rec, gt, data_range).mean()
