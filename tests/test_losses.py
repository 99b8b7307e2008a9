"""Tests of genre.losses: SSIM parity with scikit-image, fidelity, EAR, SDA, adversarial, CoV weighting."""

from __future__ import annotations

import io
import math
import statistics

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from scipy import ndimage, stats
from skimage.metrics import structural_similarity

from genre.kspace import fft2c, rss_from_kspace
from genre.losses import (
    CoVWeighting,
    Gaussian,
    SDABank,
    SDAConfig,
    discriminator_loss,
    ear_loss,
    edge_mask,
    fidelity_loss,
    fit_gaussian,
    generator_loss,
    kl_divergence,
    ssim,
    ssim_loss,
    symmetric_kl,
)


def _rng(seed: int = 0) -> np.random.Generator:
    return np.random.default_rng(seed)


# ---------------------------------------------------------------- SSIM


def _smooth(shape: tuple[int, int], seed: int) -> np.ndarray:
    image = ndimage.gaussian_filter(_rng(seed).random(shape), sigma=3.0)
    return (image - image.min()) / (image.max() - image.min())


@pytest.mark.parametrize("shape", [(32, 32), (33, 47), (7, 9), (64, 41)])
@pytest.mark.parametrize("kind", ["random", "smooth"])
def test_ssim_matches_skimage(shape: tuple[int, int], kind: str) -> None:
    if kind == "random":
        a, b = _rng(1).random(shape), _rng(2).random(shape)
    else:
        a = _smooth(shape, 1)
        b = np.clip(a + 0.05 * _smooth(shape, 2) + 0.02 * _rng(3).standard_normal(shape), 0, None)
    ours = ssim(torch.tensor(a, dtype=torch.float32)[None], torch.tensor(b, dtype=torch.float32)[None], a.max())
    reference = structural_similarity(a, b, data_range=a.max())
    assert ours.shape == (1,)
    assert abs(float(ours[0]) - reference) < 5e-4


def test_ssim_batch_with_per_image_range_and_channel_layout() -> None:
    a = np.stack([_smooth((40, 36), s) * scale for s, scale in [(1, 1.0), (2, 7.0), (3, 0.01)]])
    b = a * 0.9 + 0.05 * a.max(axis=(1, 2), keepdims=True) * _rng(4).random(a.shape)
    ranges = torch.tensor(a.max(axis=(1, 2)))
    ours = ssim(torch.tensor(a)[:, None], torch.tensor(b)[:, None], ranges)
    reference = [structural_similarity(x, y, data_range=x.max()) for x, y in zip(a, b)]
    np.testing.assert_allclose(ours.numpy(), reference, atol=5e-4)


def test_ssim_loss_is_zero_for_identical_images_and_has_gradients() -> None:
    gt = torch.tensor(_smooth((24, 30), 5))[None]
    assert float(ssim_loss(gt, gt)) == pytest.approx(0.0, abs=1e-6)
    rec = (gt + 0.1 * torch.rand_like(gt)).requires_grad_()
    loss = ssim_loss(rec, gt)
    loss.backward()
    assert loss > 0 and torch.isfinite(rec.grad).all() and rec.grad.abs().sum() > 0


def test_ssim_rejects_images_smaller_than_the_window() -> None:
    with pytest.raises(ValueError):
        ssim(torch.rand(1, 6, 20), torch.rand(1, 6, 20), 1.0)


# ---------------------------------------------------------------- fidelity


def _kspace(batch: int = 2, coils: int = 3, ny: int = 20, nx: int = 17, seed: int = 0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    image = torch.randn(batch, coils, ny, nx, generator=g) + 1j * torch.randn(batch, coils, ny, nx, generator=g)
    return fft2c(image.to(torch.complex64))


def test_fidelity_is_zero_for_identical_kspace() -> None:
    k = _kspace()
    parts = fidelity_loss(k, k)
    assert float(parts.magnitude) == 0.0 and float(parts.phase) == 0.0
    assert float(parts.ssim) == pytest.approx(0.0, abs=1e-6)


def test_fidelity_magnitude_and_phase_terms() -> None:
    k_gt = _kspace()
    parts = fidelity_loss(2 * k_gt, k_gt)  # same phase, twice the magnitude
    assert float(parts.magnitude) == pytest.approx(float(k_gt.abs().square().mean()), rel=1e-5)
    assert float(parts.phase) == pytest.approx(0.0, abs=1e-10)
    rotated = k_gt * torch.exp(torch.tensor(0.3j))
    assert float(fidelity_loss(rotated, k_gt).phase) == pytest.approx(0.09, rel=1e-5)


def test_fidelity_phase_difference_is_wrapped() -> None:
    delta = 0.01
    shape = (1, 1, 8, 8)
    k = torch.full(shape, complex(math.cos(math.pi - delta), math.sin(math.pi - delta)), dtype=torch.complex64)
    k_gt = k.conj()  # angle -(pi - delta): a plain difference of angles is 2 pi - 2 delta
    assert float(fidelity_loss(k, k_gt).phase) == pytest.approx((2 * delta) ** 2, rel=1e-3)


def test_fidelity_ssim_term_matches_skimage_on_rss_images() -> None:
    k_gt = _kspace(batch=1, seed=1)
    k = k_gt + 0.3 * _kspace(batch=1, seed=2)
    gt, rec = rss_from_kspace(k_gt)[0].numpy(), rss_from_kspace(k)[0].numpy()
    reference = 1 - structural_similarity(gt, rec, data_range=gt.max())
    assert float(fidelity_loss(k, k_gt).ssim) == pytest.approx(reference, abs=5e-4)


def test_fidelity_gradients_are_finite_for_tiny_and_zero_samples() -> None:
    k_gt = _kspace(batch=1, seed=3)
    k_gt[..., 0, :] = 0  # zero-padded k-space lines
    k_gt[..., 1, :] *= 1e-12
    k = (k_gt + 0.1 * _kspace(batch=1, seed=4)).detach()
    k[..., 1, :] = 1e-12 * k[..., 1, :] + 1e-12  # |k * conj(k_gt)| ~ 1e-24: |.|^2 underflows in float32
    k.requires_grad_()
    parts = fidelity_loss(k, k_gt)
    parts.total.backward()
    assert parts.total.dtype == torch.float32
    assert torch.isfinite(k.grad).all() and k.grad.abs().sum() > 0
    logged = parts.as_floats()
    assert set(logged) == {"magnitude", "phase", "ssim", "total"}
    assert logged["total"] == pytest.approx(logged["magnitude"] + logged["phase"] + logged["ssim"], rel=1e-6)
    assert float(parts.physics.detach()) == pytest.approx(logged["magnitude"] + logged["phase"], rel=1e-6)


# ---------------------------------------------------------------- EAR


def _phantom(n: int = 128, noise: float = 0.01, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Cardiac-like magnitude image (body, myocardium, LV blood pool, RV) on air, with a smooth bias field."""
    y, x = (np.mgrid[:n, :n] - n / 2) / (n / 2)
    labels = np.zeros((n, n), dtype=int)
    image = np.zeros((n, n))
    structures = [
        (0.45, (0.0, 0.0, 0.75, 0.85)),  # body
        (0.30, (-0.05, -0.1, 0.35, 0.35)),  # myocardium
        (0.95, (-0.05, -0.1, 0.22, 0.22)),  # LV blood pool
        (0.80, (0.0, 0.35, 0.25, 0.18)),  # RV blood pool
    ]
    for label, (value, (cy, cx, ry, rx)) in enumerate(structures, start=1):
        inside = ((y - cy) / ry) ** 2 + ((x - cx) / rx) ** 2 <= 1
        image[inside], labels[inside] = value, label
    bias = 1 + 0.3 * x - 0.2 * y + 0.1 * np.exp(-((x - 0.3) ** 2 + (y + 0.4) ** 2) / 0.3)
    return np.abs(image * bias + noise * _rng(seed).standard_normal((n, n))), labels


def _boundary_distance(labels: np.ndarray) -> np.ndarray:
    boundary = np.zeros(labels.shape, dtype=bool)
    for axis in (0, 1):
        change = np.diff(labels, axis=axis) != 0
        lo = [slice(None)] * 2
        hi = [slice(None)] * 2
        lo[axis], hi[axis] = slice(None, -1), slice(1, None)
        boundary[tuple(lo)] |= change
        boundary[tuple(hi)] |= change
    return ndimage.distance_transform_edt(~boundary)


@pytest.mark.parametrize("noise", [0.0, 0.01, 0.03])
def test_edge_mask_covers_edges_and_neighbourhood_not_background(noise: float) -> None:
    """The default tau_rel = 0.1: every edge (down to ~20 % of the strongest contrast, under a
    +-30 % bias) and its 1-2 pixel band is in the mask; flat tissue and air more than 6 pixels
    from an edge are not, with noise up to 3 % of the maximum."""
    image, labels = _phantom(noise=noise)
    distance = _boundary_distance(labels)
    mask = edge_mask(torch.tensor(image)[None])[0].numpy().astype(bool)
    assert 0.1 < mask.mean() < 0.4  # neither empty nor all ones
    assert mask[distance <= 1].mean() > 0.9
    assert mask[distance <= 2].mean() > 0.85
    assert mask[distance > 6].mean() < 0.005


def test_edge_mask_shapes_and_values() -> None:
    image, _ = _phantom(n=48)
    batch = torch.tensor(np.stack([image, image[::-1].copy()]), dtype=torch.float32)
    mask = edge_mask(batch[:, None])
    assert mask.shape == (2, 48, 48) and mask.dtype == torch.float32
    assert set(mask.unique().tolist()) <= {0.0, 1.0}
    assert torch.equal(mask[1], mask[0].flip(0))  # per image: the flipped image has the flipped mask
    assert torch.equal(edge_mask(batch, 0.0), torch.ones_like(mask))
    assert torch.equal(edge_mask(torch.ones(1, 16, 16), 0.1), torch.ones(1, 16, 16))  # no edges: plain SSIM


def test_ear_with_zero_threshold_is_plain_ssim_loss() -> None:
    image, _ = _phantom(n=64)
    gt = torch.tensor(image, dtype=torch.float32)[None]
    rec = gt + 0.05 * torch.randn_like(gt)
    assert torch.equal(ear_loss(rec, gt, tau_rel=0.0), ssim_loss(rec, gt))


def test_ear_loss_zero_for_identical_and_differentiable() -> None:
    image, _ = _phantom(n=64)
    gt = torch.tensor(image, dtype=torch.float32)[None]
    assert float(ear_loss(gt, gt)) == pytest.approx(0.0, abs=1e-6)
    rec = F.avg_pool2d(gt[None], 3, stride=1, padding=1, count_include_pad=False)[0].requires_grad_()
    loss = ear_loss(rec, gt)
    loss.backward()
    assert loss > 0
    mask = edge_mask(gt)
    assert rec.grad[mask == 0].abs().max() == 0  # only the edge region is supervised
    assert rec.grad[mask == 1].abs().sum() > 0


# ---------------------------------------------------------------- SDA


def _random_gaussian(d: int, seed: int, dtype: torch.dtype = torch.float64) -> Gaussian:
    g = torch.Generator().manual_seed(seed)
    a = torch.randn(d, d, generator=g, dtype=dtype)
    cov = a @ a.T / d + 0.5 * torch.eye(d, dtype=dtype)
    return Gaussian(torch.randn(d, generator=g, dtype=dtype), torch.linalg.cholesky(cov))


def _numpy_kl(p: Gaussian, q: Gaussian) -> float:
    mp, mq = p.mean.numpy(), q.mean.numpy()
    sp, sq = (p.scale @ p.scale.T).numpy(), (q.scale @ q.scale.T).numpy()
    inv_q = np.linalg.inv(sq)
    delta = mq - mp
    return 0.5 * (
        np.trace(inv_q @ sp) + delta @ inv_q @ delta - len(mp) + np.linalg.slogdet(sq)[1] - np.linalg.slogdet(sp)[1]
    )


def test_kl_matches_numpy_closed_form_and_monte_carlo() -> None:
    p, q = _random_gaussian(5, 0), _random_gaussian(5, 1)
    assert float(kl_divergence(p, q)) == pytest.approx(_numpy_kl(p, q), rel=1e-10)
    p2, q2 = _random_gaussian(2, 2), _random_gaussian(2, 3)
    cov_p, cov_q = (p2.scale @ p2.scale.T).numpy(), (q2.scale @ q2.scale.T).numpy()
    samples = stats.multivariate_normal(p2.mean.numpy(), cov_p).rvs(200_000, random_state=0)
    monte_carlo = np.mean(
        stats.multivariate_normal(p2.mean.numpy(), cov_p).logpdf(samples)
        - stats.multivariate_normal(q2.mean.numpy(), cov_q).logpdf(samples)
    )
    assert float(kl_divergence(p2, q2)) == pytest.approx(monte_carlo, rel=0.02)


def test_symmetric_kl_properties() -> None:
    p, q = _random_gaussian(6, 4), _random_gaussian(6, 5)
    assert float(symmetric_kl(p, p)) == pytest.approx(0.0, abs=1e-12)
    assert float(symmetric_kl(p, q)) == pytest.approx(float(symmetric_kl(q, p)), rel=1e-12)
    assert float(symmetric_kl(p, q)) == pytest.approx(_numpy_kl(p, q) + _numpy_kl(q, p), rel=1e-10)
    assert float(kl_divergence(p, q)) > 0


def test_diagonal_kl_equals_full_kl_of_diagonal_covariances() -> None:
    g = torch.Generator().manual_seed(6)
    std_p, std_q = torch.rand(2, 4, generator=g, dtype=torch.float64) + 0.5
    mp, mq = torch.randn(2, 4, generator=g, dtype=torch.float64)
    diagonal = kl_divergence(Gaussian(mp, std_p), Gaussian(mq, std_q))
    full = kl_divergence(Gaussian(mp, torch.diag(std_p)), Gaussian(mq, torch.diag(std_q)))
    assert float(diagonal) == pytest.approx(float(full), rel=1e-12)


def test_fit_gaussian_matches_numpy_and_ignores_image_size() -> None:
    features = torch.randn(2, 5, 16, 16, dtype=torch.float64)
    fitted = fit_gaussian(features, grid=16, eps=1e-3)
    for b in range(2):
        vectors = features[b].flatten(1).T.numpy()
        np.testing.assert_allclose(fitted.mean[b].numpy(), vectors.mean(axis=0), rtol=1e-12)
        cov = (fitted.scale[b] @ fitted.scale[b].T).numpy()
        sample = np.cov(vectors.T)
        ridge = 1e-3 * (np.trace(sample) / 5 + 1e-6)  # shrinkage relative to the mean variance
        np.testing.assert_allclose(cov, sample + ridge * np.eye(5), rtol=1e-10, atol=1e-12)
    upsampled = F.interpolate(features, scale_factor=2, mode="nearest")  # the same map at twice the size
    torch.testing.assert_close(fit_gaussian(upsampled, grid=16, eps=1e-3).scale, fitted.scale)
    diagonal = fit_gaussian(features, grid=16, eps=1e-3, diagonal=True)
    variances = torch.diagonal(fitted.scale @ fitted.scale.mT, dim1=-2, dim2=-1)
    torch.testing.assert_close(diagonal.scale.square(), variances)


def test_fit_gaussian_in_half_precision_runs_in_float32() -> None:
    fitted = fit_gaussian(torch.randn(1, 8, 20, 20).to(torch.bfloat16), grid=8)
    assert fitted.scale.dtype == torch.float32 and torch.isfinite(fitted.scale).all()


def _features(seed: int, cascades: int = 2, batch: int = 1, shift: float = 0.0) -> list[torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    return [torch.randn(batch, 4, 12, 10, generator=g) + shift for _ in range(cascades)]


def test_sda_bank_keeps_the_window_most_recent_samples() -> None:
    bank = SDABank(SDAConfig(grid=4, window=4))
    for i, domain in enumerate("abcdef"):
        bank.loss(_features(i), domain)
    state = bank.state_dict()
    assert len(state["cascades"]) == 2
    assert [entry["domain"] for entry in state["cascades"][0]] == list("cdef")


def test_sda_loss_averages_pairs_with_other_domains_and_sums_cascades() -> None:
    config = SDAConfig(grid=4, eps=1e-3)
    bank = SDABank(config)
    stored = [("a", _features(0)), ("b", _features(1, shift=1.0)), ("a", _features(2)), ("c", _features(3, shift=-1.0))]
    assert float(bank.loss(stored[0][1], "a")) == 0.0  # empty bank
    assert float(bank.loss(stored[2][1], "a")) == 0.0  # only the same domain (stored[1] not pushed yet)
    bank = SDABank(config)
    for domain, features in stored:
        bank.loss(features, domain)
    current = _features(4, shift=0.5)
    expected = 0.0
    for cascade in range(2):
        p = fit_gaussian(current[cascade], config.grid, config.eps)
        pairs = [fit_gaussian(f[cascade], config.grid, config.eps) for domain, f in stored if domain != "a"]
        expected += sum(float(symmetric_kl(p, q)) for q in pairs) / len(pairs) / 4  # per dimension, d = 4
    assert float(bank.loss(current, "a")) == pytest.approx(expected, rel=1e-5)


def test_sda_loss_batch_with_several_domains() -> None:
    config = SDAConfig(grid=4)
    bank = SDABank(config)
    bank.loss(_features(0), "a")
    bank.loss(_features(1), "b")
    batch = _features(2, batch=2)
    p = fit_gaussian(batch[0], config.grid, config.eps)
    q_a, q_b = (fit_gaussian(_features(s)[0], config.grid, config.eps) for s in (0, 1))
    pick = lambda g, i: Gaussian(g.mean[i], g.scale[i])  # noqa: E731
    # sample 0 is domain "a" (pairs with "b"), sample 1 is "b" (pairs with "a"): mean of the two
    first = (float(symmetric_kl(pick(p, 0), pick(q_b, 0))) + float(symmetric_kl(pick(p, 1), pick(q_a, 0)))) / 2
    second = fit_gaussian(batch[1], config.grid, config.eps)
    second_value = (
        float(symmetric_kl(pick(second, 0), pick(fit_gaussian(_features(1)[1], 4, config.eps), 0)))
        + float(symmetric_kl(pick(second, 1), pick(fit_gaussian(_features(0)[1], 4, config.eps), 0)))
    ) / 2
    assert float(bank.loss(batch, ["a", "b"])) == pytest.approx((first + second_value) / 4, rel=1e-5)  # d = 4
    with pytest.raises(ValueError):
        bank.loss(batch, ["a"])


def test_sda_gradients_reach_only_the_current_features() -> None:
    bank = SDABank(SDAConfig(grid=4, diagonal=False))
    for step, domain in enumerate("abab"):
        features = [f.requires_grad_() for f in _features(step, shift=float(step))]
        loss = bank.loss(features, domain)
        if step > 0:
            loss.backward()  # would fail on a second backward through a stored graph
            assert all(f.grad is not None and f.grad.abs().sum() > 0 for f in features)
    for cascade in bank.state_dict()["cascades"]:
        assert all(not entry["mean"].requires_grad and not entry["scale"].requires_grad for entry in cascade)


def test_sda_diagonal_option() -> None:
    bank = SDABank(SDAConfig(grid=4, diagonal=True))
    bank.loss(_features(0), "a")
    features = [f.requires_grad_() for f in _features(1, shift=1.0)]
    loss = bank.loss(features, "b")
    loss.backward()
    assert loss > 0 and all(torch.isfinite(f.grad).all() for f in features)
    assert bank.state_dict()["cascades"][0][0]["scale"].shape == (4,)


def test_sda_state_dict_resumes_exactly() -> None:
    config = SDAConfig(grid=4)
    bank = SDABank(config)
    for step, domain in enumerate("abc"):
        bank.loss(_features(step), domain)
    buffer = io.BytesIO()
    torch.save(bank.state_dict(), buffer)
    buffer.seek(0)
    resumed = SDABank(config)
    resumed.load_state_dict(torch.load(buffer, weights_only=True))
    nxt = _features(10, shift=0.3)
    assert torch.equal(resumed.loss(nxt, "a"), bank.loss(nxt, "a"))
    with pytest.raises(ValueError):
        SDABank(SDAConfig(grid=8)).load_state_dict(bank.state_dict())


# ---------------------------------------------------------------- adversarial


def test_adversarial_losses() -> None:
    real, fake = torch.randn(2, 1, 5, 6), torch.randn(2, 1, 5, 6)
    expected_d = 0.5 * (F.softplus(-real).mean() + F.softplus(fake).mean())
    torch.testing.assert_close(discriminator_loss(real, fake), expected_d)
    torch.testing.assert_close(generator_loss(fake), F.softplus(-fake).mean())
    assert float(discriminator_loss(torch.full((1, 1, 2, 2), 30.0), torch.full((1, 1, 2, 2), -30.0))) < 1e-10
    # The paper's labels (real 0, fake 1) are the same game on negated logits.
    paper_d = 0.5 * (
        F.binary_cross_entropy_with_logits(-real, torch.zeros_like(real))
        + F.binary_cross_entropy_with_logits(-fake, torch.ones_like(fake))
    )
    torch.testing.assert_close(discriminator_loss(real, fake), paper_d)


# ---------------------------------------------------------------- CoV weighting


def _reference_cov_weights(sequence: list[list[float]], variance_eps: float = 1e-8) -> list[list[float]]:
    """The definition, with plain means over lists (no running updates): the test's hand computation."""
    n = len(sequence[0])
    ratios: list[list[float]] = [[] for _ in range(n)]
    out = []
    for t, losses in enumerate(sequence):
        if t < 2:
            weights = [1 / n] * n
        else:
            c = [math.sqrt(statistics.pvariance(r) + variance_eps) / statistics.fmean(r) for r in ratios]
            weights = [ci / sum(c) for ci in c]
        out.append(weights)
        for i in range(n):
            past = [sequence[s][i] for s in range(t)]
            ratios[i].append(1.0 if t == 0 else losses[i] / statistics.fmean(past))
    return out


def test_cov_weighting_against_hand_computed_weights() -> None:
    sequence = [[2.0, 4.0, 1.0], [1.0, 4.0, 0.5], [1.5, 2.0, 0.8], [0.5, 3.0, 0.9], [0.7, 2.5, 0.1]]
    weighting = CoVWeighting(3)
    got = []
    for losses in sequence:
        tensors = [torch.tensor(v, requires_grad=True) for v in losses]
        total, weights = weighting(tensors)
        assert not weights.requires_grad
        total.backward()
        assert [float(t.grad) for t in tensors] == pytest.approx(weights.tolist())  # weights are constants
        got.append(weights.tolist())
    np.testing.assert_allclose(got, _reference_cov_weights(sequence), rtol=1e-6)
    # Step 2 by hand: ratios of loss 0 are [1, 1/2] (mean 3/4, std 1/4), of loss 1 [1, 1] (std 0),
    # of loss 2 [1, 1/2]; c = [1/3, 1e-4, 1/3] (the 1e-8 variance floor gives 1e-4).
    c = [math.sqrt(1 / 16 + 1e-8) / 0.75, 1e-4, math.sqrt(1 / 16 + 1e-8) / 0.75]
    assert got[2] == pytest.approx([ci / sum(c) for ci in c], rel=1e-6)
    assert got[0] == got[1] == pytest.approx([1 / 3] * 3)


def test_cov_weighting_resumes_from_state_dict_and_eval_does_not_update() -> None:
    sequence = [[1.0, 3.0], [0.8, 3.5], [0.9, 2.0], [0.4, 2.2], [0.5, 1.0], [0.3, 1.5]]
    straight = CoVWeighting(2)
    expected = [straight([torch.tensor(v) for v in losses])[1] for losses in sequence]
    first = CoVWeighting(2)
    for losses in sequence[:3]:
        first([torch.tensor(v) for v in losses])
    resumed = CoVWeighting(2)
    resumed.load_state_dict(first.state_dict())
    resumed.eval()
    frozen = resumed([torch.tensor(9.0), torch.tensor(9.0)])[1]
    assert torch.equal(frozen, resumed([torch.tensor(1.0), torch.tensor(1.0)])[1])
    resumed.train()
    for losses, weights in zip(sequence[3:], expected[3:]):
        assert torch.equal(resumed([torch.tensor(v) for v in losses])[1], weights)
    assert torch.equal(resumed.weights, straight.weights)


def test_cov_weighting_zero_loss_does_not_make_nan() -> None:
    weighting = CoVWeighting(2)
    for losses in [[1.0, 0.0], [0.9, 0.0], [0.8, 0.5], [0.7, 0.4], [0.6, 0.45]]:
        total, weights = weighting([torch.tensor(v) for v in losses])
        assert torch.isfinite(total) and torch.isfinite(weights).all()
        assert float(weights.sum()) == pytest.approx(1.0)


def test_sda_loss_does_not_depend_on_the_feature_scale() -> None:
    # With an absolute ridge the KL grew with the feature scale and swamped the other losses.
    values = []
    for scale in (1.0, 30.0, 1e3):  # far above the floor that keeps constant maps defined
        bank = SDABank(SDAConfig(grid=4))
        bank.loss([f * scale for f in _features(0)], "a")
        values.append(float(bank.loss([f * scale for f in _features(1, shift=0.3)], "b")))
    assert values[1] == pytest.approx(values[0], rel=1e-3) and values[2] == pytest.approx(values[0], rel=1e-3)
