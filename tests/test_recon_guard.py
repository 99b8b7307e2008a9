"""The hold-out guard: which samples are withheld, how a candidate is scored, and that the better one is chosen."""

from __future__ import annotations

import pytest
import torch

from genre.kspace import acs_block, fft2c, rss_from_kspace
from genre.recon.base import SeriesInfo
from genre.recon.guard import GuardConfig, Guarded, holdout_error, holdout_mask
from genre.recon.sense import CGSense

FRAMES, KY, KX = 3, 40, 24


def _mask() -> torch.Tensor:
    mask = torch.zeros(FRAMES, KY, KX)
    for f in range(FRAMES):
        mask[f, f::4] = 1
    mask[:, KY // 2 - 4 : KY // 2 + 4] = 1
    return mask


def test_holdout_mask_withholds_whole_rows_outside_the_calibration_block():
    mask = _mask()
    held = holdout_mask(mask, 0.25, seed=3)
    assert ((held == 1) <= (mask == 1)).all()
    block = acs_block(mask)
    assert not held[:, block[0], block[1]].any()
    rows = held.any(dim=-1)
    assert (held.sum(dim=-1)[rows] == KX).all()  # a withheld row is withheld whole
    outside = mask.clone()
    outside[:, block[0]] = 0
    candidates = int(outside.any(dim=-1).sum())
    assert int(rows.sum()) == round(0.25 * candidates)
    assert torch.equal(held, holdout_mask(mask, 0.25, seed=3))  # reruns choose the same samples
    assert not torch.equal(held, holdout_mask(mask, 0.25, seed=4))


def test_holdout_mask_is_empty_when_only_the_calibration_block_is_acquired():
    mask = torch.zeros(FRAMES, KY, KX)
    mask[:, KY // 2 - 4 : KY // 2 + 4] = 1
    assert not holdout_mask(mask, 0.5, seed=0).any()


def test_holdout_error_is_relative_to_the_withheld_energy():
    kspace = torch.randn(FRAMES, 2, 3, KY, KX, dtype=torch.complex64)
    held = holdout_mask(_mask(), 0.5, seed=0)
    assert holdout_error(kspace, kspace, held) == 0
    assert holdout_error(torch.zeros_like(kspace), kspace, held) == pytest.approx(1.0)
    assert holdout_error(2 * kspace, kspace, held) == pytest.approx(1.0)


class _Fixed:
    """A candidate whose k-space estimate is a fixed array: the truth, or a corrupted copy of it."""

    def __init__(self, name: str, estimate: torch.Tensor):
        self.name, self.estimate, self.calls = name, estimate, 0

    def estimate_kspace(self, kspace, mask, info):
        return self.estimate

    def reconstruct(self, kspace, mask, info):
        self.calls += 1
        return rss_from_kspace(self.estimate)


@pytest.mark.parametrize("truth_first", [True, False])
def test_guard_reconstructs_with_the_candidate_that_predicts_withheld_samples(truth_first):
    g = torch.Generator().manual_seed(0)
    truth = torch.randn(FRAMES, 1, 4, KY, KX, dtype=torch.complex64, generator=g)
    mask = _mask()
    good = _Fixed("good", truth)
    bad = _Fixed("bad", truth + 0.5 * torch.randn(truth.shape, dtype=torch.complex64, generator=g))
    first, second = (good, bad) if truth_first else (bad, good)
    guard = Guarded(first, [second])
    image = guard.reconstruct(truth * mask[:, None, None], mask, SeriesInfo("cine_sax", FRAMES))
    assert torch.equal(image, rss_from_kspace(truth))
    assert (good.calls, bad.calls) == (1, 0)
    assert guard.choices == {first.name: int(truth_first), second.name: int(not truth_first)}


def test_guard_keeps_the_primary_when_nothing_can_be_withheld():
    mask = torch.zeros(FRAMES, KY, KX)
    mask[:, KY // 2 - 4 : KY // 2 + 4] = 1
    truth = torch.randn(FRAMES, 1, 4, KY, KX, dtype=torch.complex64)
    primary, other = _Fixed("primary", torch.zeros_like(truth)), _Fixed("other", truth)
    Guarded(primary, [other]).reconstruct(truth * mask[:, None, None], mask, SeriesInfo("cine_sax", FRAMES))
    assert (primary.calls, other.calls) == (1, 0)


def test_guard_rejects_a_fraction_outside_the_unit_interval():
    with pytest.raises(ValueError, match="fraction"):
        Guarded(_Fixed("a", torch.zeros(1)), [], GuardConfig(fraction=1.0))


def test_sense_estimate_is_the_kspace_behind_its_image():
    """CG-SENSE's image is its estimate with the measured samples put back."""
    g = torch.Generator().manual_seed(1)
    yy, xx = torch.meshgrid(torch.linspace(-1, 1, KY), torch.linspace(-1, 1, KX), indexing="ij")
    image = ((yy**2 + xx**2) < 0.5).to(torch.complex64)
    coils = torch.stack([torch.exp(-((yy - c) ** 2 + xx**2)) for c in (-1.0, 0.0, 1.0)]).to(torch.complex64)
    truth = fft2c(coils * image).expand(FRAMES, 1, 3, KY, KX) + 0.01 * torch.randn(FRAMES, 1, 3, KY, KX, dtype=torch.complex64, generator=g)
    mask = _mask()
    measured = truth * mask[:, None, None]
    sense, info = CGSense(), SeriesInfo("cine_sax", FRAMES)
    estimate = sense.estimate_kspace(measured, mask, info)
    assert estimate.shape == truth.shape and estimate.dtype == torch.complex64
    combined = mask[:, None, None] * measured + (1 - mask[:, None, None]) * estimate
    assert torch.allclose(sense.reconstruct(measured, mask, info), rss_from_kspace(combined), rtol=1e-5, atol=1e-6)
