"""The organizers' image metrics (genre.evaluation.metrics), checked against hand computations.

Where the validation and test scorers differ (arrays with singleton dimensions, 2-D arrays), each
test names the scorer; tests/test_evaluate.py checks both against literal transcriptions of the
organizers' code on files.
"""

import math

import numpy as np
import pytest
from skimage.metrics import structural_similarity

from genre.evaluation.metrics import (
    Grader,
    ScoreError,
    ShapeMismatch,
    normalize_percentile,
    score_pair,
    score_volume,
)


def _images(seed, shape):
    rng = np.random.default_rng(seed)
    gt = rng.random(shape).astype(np.float32) * 5
    pred = (gt + 0.3 * rng.standard_normal(shape)).astype(np.float32)
    return gt, pred


def _by_hand(a_raw, b_raw):
    """PSNR and NMSE with ``a`` the reference, written out; SSIM from scikit-image directly."""
    a = np.abs(a_raw) / np.percentile(np.abs(a_raw), 99.5)
    b = np.abs(b_raw) / np.percentile(np.abs(b_raw), 99.5)
    mse = np.mean((a.astype(np.float64) - b) ** 2)
    psnr = 10 * np.log10(a.max() ** 2 / mse)
    nmse = np.sum((a.astype(np.float64) - b) ** 2) / np.sum(a.astype(np.float64) ** 2)
    ssim = structural_similarity(a, b, data_range=a.max())
    return psnr, ssim, nmse


def test_2d_matches_hand_computation_under_both_scorers():
    gt, pred = _images(0, (9, 11))  # odd sizes on both axes
    psnr, ssim, nmse = _by_hand(gt, pred)
    score = score_volume(gt, pred, grader=Grader.TEST)
    assert score.images == 1
    assert score.psnr == pytest.approx(psnr, rel=1e-5)
    assert score.ssim == pytest.approx(ssim, rel=1e-6)
    assert score.nmse == pytest.approx(nmse, rel=1e-5)
    assert score_volume(gt, pred, leaderboard=False, grader=Grader.TEST) == score
    # The validation scorer's calmetric has no 2-D branch (its whole run stops): scored the test way.
    assert score_volume(gt, pred) == score


def test_normalisation_divides_by_the_995th_percentile_without_clipping():
    x = np.arange(1, 201, dtype=np.float32).reshape(10, 20) * -1  # magnitude is taken
    p = np.percentile(np.arange(1, 201), 99.5)  # linear interpolation between 199 and 200
    assert p == pytest.approx(199.005)
    out = normalize_percentile(x)
    np.testing.assert_allclose(out, np.abs(x) / p, rtol=1e-6)
    assert out.max() > 1  # no clipping


def test_percentile_zero_leaves_the_image_unchanged():
    x = np.zeros((20, 20), np.float32)
    x[3, 4] = 7.0  # one pixel in 400: the 99.5th percentile is 0
    np.testing.assert_array_equal(normalize_percentile(x), x)
    pred = x.copy()
    pred[3, 4] = 6.0
    # unchanged images: data_range is GT's raw maximum 7 and the NMSE is in raw units
    score = score_volume(x, pred, grader=Grader.TEST)
    assert score.nmse == pytest.approx(1 / 49)
    assert score.psnr == pytest.approx(10 * np.log10(49 / (1 / 400)))


def test_identical_images_score_ssim_1_and_psnr_inf():
    gt, _ = _images(1, (12, 10, 2))
    score = score_volume(gt, gt.copy())
    assert score.ssim == pytest.approx(1.0) and math.isinf(score.psnr) and score.nmse == 0


def test_3d_means_over_images_with_gt_as_reference():
    gt, pred = _images(2, (10, 9, 3))
    per_image = [_by_hand(gt[:, :, i], pred[:, :, i]) for i in range(3)]
    score = score_volume(gt, pred)
    assert score.images == 3
    np.testing.assert_allclose([score.psnr, score.ssim, score.nmse], np.mean(per_image, axis=0), rtol=1e-5)


def _scaled_pair(shape):
    # The prediction's brightest pixels differ from the GT's, so the percentile-normalised images
    # have different maxima and energies: which one is the reference then matters.
    gt, pred = _images(3, shape)
    pred = pred.copy()
    pred[0, 0] = 40.0
    return gt, pred


def test_4d_leaderboard_takes_the_submission_as_reference():
    gt, pred = _scaled_pair((10, 12, 2, 3))
    leaderboard, symmetric = score_pair(gt, pred)
    images = [(gt[:, :, z, t], pred[:, :, z, t]) for t in range(3) for z in range(2)]
    swapped = np.mean([_by_hand(p, g) for g, p in images], axis=0)
    straight = np.mean([_by_hand(g, p) for g, p in images], axis=0)
    np.testing.assert_allclose([leaderboard.psnr, leaderboard.ssim, leaderboard.nmse], swapped, rtol=1e-5)
    np.testing.assert_allclose([symmetric.psnr, symmetric.ssim, symmetric.nmse], straight, rtol=1e-5)
    assert leaderboard.psnr != pytest.approx(symmetric.psnr, rel=1e-3)
    assert leaderboard.nmse != pytest.approx(symmetric.nmse, rel=1e-3)
    # swapping the arguments changes the 4-D leaderboard score ...
    assert score_volume(pred, gt) == symmetric
    assert score_volume(pred, gt) != score_volume(gt, pred)


@pytest.mark.parametrize("grader", list(Grader))
def test_3d_is_not_swapped(grader):
    gt, pred = _scaled_pair((10, 12, 3))
    leaderboard, symmetric = score_pair(gt, pred, grader)
    assert leaderboard == symmetric
    # ... and not the 3-D one, whose reference is the GT whichever way round
    assert score_volume(gt, pred, grader=grader) == score_volume(gt, pred, leaderboard=False, grader=grader)


def test_an_interior_singleton_is_4d_for_the_validation_scorer_and_3d_for_the_test_scorer():
    gt, pred = _scaled_pair((10, 12, 3))
    _, symmetric = score_pair(gt, pred)
    gt4, pred4 = gt[:, :, None, :], pred[:, :, None, :]  # one slice, three frames
    # the test scorer squeezes: 3-D, ground truth as reference
    lb_test, sym_test = score_pair(gt4, pred4, Grader.TEST)
    assert lb_test == sym_test == symmetric
    # the validation scorer does not: 4-D, the submission as reference, over the same three images
    lb_val, sym_val = score_pair(gt4, pred4, Grader.VALIDATION)
    assert sym_val == symmetric and lb_val.images == 3
    assert lb_val == score_volume(pred, gt, grader=Grader.TEST)
    assert lb_val.psnr != pytest.approx(symmetric.psnr, rel=1e-3)


@pytest.mark.parametrize("grader", list(Grader))
def test_shape_mismatch_is_an_error(grader):
    gt, pred = _images(4, (10, 12, 3))
    with pytest.raises(ShapeMismatch, match=r"\(10, 12, 3\).*\(10, 12, 2\)"):
        score_volume(gt, pred[:, :, :2], grader=grader)
    with pytest.raises(ShapeMismatch):
        score_volume(gt, pred.transpose(1, 0, 2), grader=grader)


def test_singleton_dims_differ_only_for_the_validation_scorer():
    gt, pred = _images(4, (10, 12, 3))
    assert score_volume(gt[:, :, None, :], pred, grader=Grader.TEST) == score_volume(gt, pred, grader=Grader.TEST)
    with pytest.raises(ShapeMismatch, match=r"does not squeeze.*\(10, 12, 1, 3\).*\(10, 12, 3\)"):
        score_volume(gt[:, :, None, :], pred, grader=Grader.VALIDATION)


@pytest.mark.parametrize("grader", list(Grader))
def test_non_finite_prediction_and_tiny_images_are_errors(grader):
    gt, pred = _images(5, (10, 12, 2))
    pred[2, 3, 0] = np.nan
    pred[4, 4, 1] = np.inf
    with pytest.raises(ScoreError, match="prediction holds 2 non-finite"):
        score_volume(gt, pred, grader=grader)
    with pytest.raises(ScoreError, match="smaller than SSIM's 7x7 window"):
        score_volume(gt[:6], gt[:6], grader=grader)
    with pytest.raises(ScoreError, match="5-D"):
        score_volume(np.ones((8, 8, 2, 2, 2)), np.ones((8, 8, 2, 2, 2)), grader=grader)
