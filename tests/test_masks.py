"""The CMRxRecon 2025 mask generators: organizer-defined acceleration, ACS, frame behaviour, determinism."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from genre.kspace import acs_block
from genre.masks import PATTERNS, acs_lines, kt_gaussian, kt_radial, make_mask, radial_spokes, uniform

REALISTIC = [(162, 448), (144, 384)]  # cine and T1map matrices (ky, kx)
ODD_AND_TINY = [(162, 448), (57, 64), (56, 64), (57, 65)]  # no pattern line lands right beside the ACS here


def _outside_acs_fraction(mask: np.ndarray) -> float:
    rows = np.ones(mask.shape[-2], bool)
    rows[acs_lines(mask.shape[-2])] = False
    return float(mask[:, rows].mean())


@pytest.mark.parametrize("ny, nx", REALISTIC)
@pytest.mark.parametrize("r", [8, 16, 24])
def test_uniform_samples_one_line_in_r_outside_the_acs(ny, nx, r):
    # The organizers' R does not count the ACS; the realised fraction counting it is in the module docstring.
    mask = uniform(4, ny, nx, r)
    assert _outside_acs_fraction(mask) == pytest.approx(1 / r, rel=0.25)
    assert mask.mean() > 1 / r


@pytest.mark.parametrize("ny, nx", REALISTIC + [(57, 64)])
@pytest.mark.parametrize("r", [8, 16, 24])
def test_kt_gaussian_draws_round_ny_over_r_lines_per_frame_and_adds_the_acs(ny, nx, r):
    bare = kt_gaussian(6, ny, nx, r, acs=0, rng=3)
    lines = bare[:, :, 0].sum(axis=1)
    assert (lines == int(np.floor(ny / r + 0.5))).all()
    assert (bare == bare[:, :, :1]).all()  # whole ky lines: kx fully sampled
    with_acs = kt_gaussian(6, ny, nx, r, acs=20, rng=3)
    expected = bare.copy()
    expected[:, acs_lines(ny, 20)] = 1
    np.testing.assert_array_equal(with_acs, expected)


@pytest.mark.parametrize("ny, nx", REALISTIC)
@pytest.mark.parametrize("r", [8, 16, 24])
def test_kt_radial_realises_about_one_over_r_counting_the_acs(ny, nx, r):
    mask = kt_radial(12, ny, nx, r)
    assert mask.mean() == pytest.approx(1 / r, rel=0.25)
    assert radial_spokes(r) == int(180 // (0.6 * r))


def test_kt_radial_undersamples_kx_too():
    mask = kt_radial(8, 162, 448, 8)
    acs = np.zeros(162, bool)
    acs[acs_lines(162)] = True
    full_rows = mask.all(axis=2)  # (frames, ky): rows sampled across the whole readout
    assert not full_rows[:, ~acs].any()
    assert mask[:, ~acs].mean() < 0.2


@pytest.mark.parametrize("ny, nx", ODD_AND_TINY)
@pytest.mark.parametrize("pattern", PATTERNS)
@pytest.mark.parametrize("r", [8, 16, 24])
def test_acs_block_finds_the_calibration_region(ny, nx, pattern, r):
    mask = make_mask(pattern, r, 8, ny, nx, acs=20, seed=0)
    ky, kx = acs_block(torch.from_numpy(mask))
    assert (ky.start, ky.stop) == (ny // 2 - 10, ny // 2 + 10)
    if pattern == "ktRadial":
        assert (kx.start, kx.stop) == (nx // 2 - 10, nx // 2 + 10)
    else:
        assert (kx.start, kx.stop) == (0, nx)


@pytest.mark.parametrize("ny, nx", [(57, 65), (21, 24)])
def test_odd_and_small_matrices(ny, nx):
    for pattern in PATTERNS:
        mask = make_mask(pattern, 8, 3, ny, nx, acs=20, seed=1)
        assert mask.shape == (3, ny, nx) and mask.dtype == np.float32
        assert set(np.unique(mask)) <= {0.0, 1.0}
        assert mask[:, ny // 2, nx // 2].all()  # the k-space centre is always acquired


def test_uniform_repeats_its_lines_and_kt_patterns_change_between_frames():
    assert (uniform(8, 162, 448, 8) == uniform(1, 162, 448, 8)).all()
    for pattern in ("ktGaussian", "ktRadial"):
        mask = make_mask(pattern, 8, 8, 162, 448, seed=0)
        assert all(not np.array_equal(mask[t], mask[t + 1]) for t in range(7)), pattern


def test_masks_are_deterministic_given_a_seed():
    for pattern in PATTERNS:
        a = make_mask(pattern, 16, 6, 101, 96, seed=7)
        b = make_mask(pattern, 16, 6, 101, 96, seed=7)
        np.testing.assert_array_equal(a, b)
    other = make_mask("ktGaussian", 16, 6, 101, 96, seed=8)
    assert not np.array_equal(other, make_mask("ktGaussian", 16, 6, 101, 96, seed=7))
    assert np.array_equal(make_mask("ktGaussian", 16, 6, 101, 96, seed=np.random.default_rng(7)),
                          make_mask("ktGaussian", 16, 6, 101, 96, seed=7))


def test_radial_first_angle_rotates_the_pattern():
    assert not np.array_equal(kt_radial(1, 96, 96, 8), kt_radial(1, 96, 96, 8, first_angle=2.0))


def test_bad_arguments_raise():
    with pytest.raises(ValueError):
        make_mask("ktSpiral", 8, 4, 64, 64)
    with pytest.raises(ValueError):
        make_mask("Uniform", 0, 4, 64, 64)
    with pytest.raises(ValueError):
        make_mask("Uniform", 8, 0, 64, 64)


def test_mask_from_samples_takes_whole_lines_of_cartesian_patterns():
    from genre.masks import mask_from_samples

    mask = kt_gaussian(4, 30, 40, 4, acs=6, rng=0)
    acquired = mask.astype(bool)
    acquired[:, :, :5] = False  # zero-padded readout ends: whole lines all the same
    acquired[1, 15, 20] = False  # an acquired sample that happens to be exactly 0
    derived, whole_lines = mask_from_samples(acquired)
    assert whole_lines
    np.testing.assert_array_equal(derived, mask)


def test_mask_from_samples_keeps_the_samples_of_radial_patterns():
    from genre.masks import mask_from_samples

    mask = kt_radial(3, 48, 52, 8, acs=8)
    derived, whole_lines = mask_from_samples(mask.astype(bool))
    assert not whole_lines
    np.testing.assert_array_equal(derived, mask)
    empty, whole_lines = mask_from_samples(np.zeros((2, 4, 5), bool))
    assert not whole_lines and not empty.any()
