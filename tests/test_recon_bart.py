"""BART pics as a method: its grid, registration and errors (no bart needed), and reconstructions (bart needed)."""

import logging
import shutil

import numpy as np
import pytest
import scipy.io
import torch

from genre.evaluation.reference import reference_image
from genre.cli import main
from genre.data.cmrx import find_cases
from genre.data.contract import OutputMode
from genre.kspace import center_crop, rss_from_kspace
from genre.recon import ALL_METHODS, FALLBACKS, METHODS, make_reconstructor
from genre.recon.base import MethodUnavailable
from genre.recon.bart import (
    BartConfig,
    BartPics,
    calibration_frame,
    embed,
    intensity_scale,
    padded_shape,
    pics_arguments,
)
from genre.recon.base import SeriesInfo
from genre.recon.zero_filled import ZeroFilled
from conftest import phantom_kspace, uniform_mask

needs_bart = pytest.mark.skipif(shutil.which("bart") is None, reason="needs the bart binary (apt-get install bart; .ci/run installs it)")

MISSING = "bart not found on PATH: install it (apt-get install bart) or choose another --method"


def test_padding_to_multiples_of_four_keeps_the_kspace_centre():
    assert padded_shape((33, 40)) == (36, 40) and padded_shape((162, 448)) == (164, 448) and padded_shape((1, 4)) == (4, 4)
    for ny, nx in [(33, 41), (34, 40), (5, 6)]:
        x = torch.randn(2, ny, nx, dtype=torch.complex64)
        grid = padded_shape((ny, nx))
        padded = embed(x, grid)
        assert padded[..., grid[0] // 2, grid[1] // 2].equal(x[..., ny // 2, nx // 2])
        assert center_crop(padded, (ny, nx)).equal(x) and padded.abs().sum() == pytest.approx(x.abs().sum().item())


def test_calibration_frame_is_the_strongest_and_the_scale_follows_the_data():
    k = torch.from_numpy(phantom_kspace(3, 1, 2, 16, 16))[:, 0]
    k[1] *= -3  # an inversion-recovery frame: sign flipped and brighter
    k[2] *= 0.1
    block = (slice(6, 10), slice(0, 16))
    assert calibration_frame(k, block) == 1
    assert intensity_scale(1000 * k, block) == pytest.approx(1000 * intensity_scale(k, block), rel=1e-5)
    assert intensity_scale(torch.zeros_like(k), block) == 1.0


def test_pics_gets_temporal_tv_only_for_periodic_series():
    config = BartConfig(iterations=7, spatial_weight=0.25, temporal_weight=0.5)
    cine = pics_arguments(config, 2.5, periodic=True)
    other = pics_arguments(config, 2.5, periodic=False)
    assert cine == ["-i", "7", "-w", "2.5", "-S", "-R", "W:3:0:0.25", "-R", "T:1024:0:0.5"]
    assert other == cine[:-2]


def test_bart_is_a_peer_outside_the_submission_chain():
    assert "bart" in ALL_METHODS and "bart" not in METHODS
    assert set(FALLBACKS) == set(ALL_METHODS)
    assert FALLBACKS["bart"] == ("sense", "zero-filled") and FALLBACKS["genre"] == ("sense", "zero-filled")
    assert all(set(chain) <= set(METHODS) for chain in FALLBACKS.values())


def test_missing_bart_says_how_to_get_it(monkeypatch, tmp_path, mini_tree, caplog):
    monkeypatch.setenv("PATH", str(tmp_path / "empty"))
    with pytest.raises(MethodUnavailable) as err:
        make_reconstructor("bart", torch.device("cpu"))
    assert str(err.value) == MISSING
    with caplog.at_level(logging.ERROR):
        assert main(["predict", "--input", str(mini_tree), "--output", str(tmp_path / "out"), "--method", "bart"]) == 2
    assert MISSING in caplog.text and not (tmp_path / "out").exists()


def test_a_failing_bart_step_is_one_line_naming_it(monkeypatch, tmp_path):
    fake = tmp_path / "bin" / "bart"
    fake.parent.mkdir()
    fake.write_text("#!/bin/sh\necho 'ESPIRiT: starting' >&2\necho 'Error: calibration region too small' >&2\nexit 1\n")
    fake.chmod(0o755)
    monkeypatch.setenv("PATH", str(fake.parent))
    k = torch.from_numpy(phantom_kspace(2, 1, 2, 16, 16))
    mask = torch.from_numpy(uniform_mask(2, 16, 16, 4).astype(np.float32))
    with pytest.raises(ValueError) as err:
        BartPics().reconstruct(k * mask[:, None, None], mask, SeriesInfo("cine_sax", 2))
    assert str(err.value) == "bart ecalib failed: Error: calibration region too small"


def _errors(stem, frames, ny, nx, step=4):
    """Relative errors of BART and zero-filled against the fully sampled RSS of a phantom slice pair."""
    k = torch.from_numpy(phantom_kspace(frames, 2, 4, ny, nx))
    mask = torch.from_numpy(uniform_mask(frames, ny, nx, step).astype(np.float32))
    kus = k * mask[:, None, None]
    gt = rss_from_kspace(k)
    info = SeriesInfo(stem, frames)
    got = BartPics().reconstruct(kus, mask, info)
    assert got.dtype == torch.float32 and got.shape == gt.shape and torch.isfinite(got).all()
    zero_filled = ZeroFilled().reconstruct(kus, mask, info)
    return float((got - gt).norm() / gt.norm()), float((zero_filled - gt).norm() / gt.norm())


@needs_bart
@pytest.mark.parametrize("ny,nx", [(32, 40), (33, 40), (34, 40)])  # pics's odd and 2-mod-4 sides are padded away
def test_cine_is_closer_to_the_fully_sampled_image_than_zero_filled(ny, nx):
    bart, zero_filled = _errors("cine_sax", 6, ny, nx)
    assert bart < 0.8 * zero_filled, (bart, zero_filled)


@needs_bart
@pytest.mark.parametrize("stem,frames", [("T1map", 4), ("lge_sax", 1)])
def test_weightings_and_single_frames_are_solved_frame_by_frame(stem, frames):
    bart, zero_filled = _errors(stem, frames, 33, 40)
    assert bart < 0.8 * zero_filled, (bart, zero_filled)


@needs_bart
def test_the_result_scales_with_the_data():
    k = torch.from_numpy(phantom_kspace(4, 1, 3, 24, 24))
    mask = torch.from_numpy(uniform_mask(4, 24, 24, 4).astype(np.float32))
    kus = k * mask[:, None, None]
    method = BartPics(BartConfig(iterations=20))
    small = method.reconstruct(kus, mask, SeriesInfo("cine_sax", 4))
    large = method.reconstruct(1e4 * kus, mask, SeriesInfo("cine_sax", 4))
    torch.testing.assert_close(large, 1e4 * small, rtol=1e-3, atol=1e-3 * float(large.max()))


@needs_bart
def test_predict_with_bart_writes_valid_outputs(mini_tree, tmp_path):
    out = tmp_path / "out"
    assert main(["predict", "--input", str(mini_tree), "--output", str(out), "--method", "bart"]) == 0
    for case in find_cases(mini_tree):
        got = scipy.io.loadmat(case.output_path(out))["img4ranking"]
        expected = reference_image(case, mini_tree, OutputMode.FULL)
        assert got.dtype == np.float32 and got.shape == expected.shape and np.isfinite(got).all()
        assert np.linalg.norm(got - expected) / np.linalg.norm(expected) < 0.6, case.stem
