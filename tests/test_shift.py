"""The distribution-shift diagnosis: one factor changed per cell, acquired as training acquires, scored beside classical methods."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from benchmarks import shift, simulated
from genre.data.heldout import birdcage_maps
from genre.data.simulation import SimulationConfig, acquire, source_series
from genre.kspace import ifft2c, rss_from_kspace
from genre.models.config import preset
from genre.models.generator import Generator
from genre.weights_file import save_weights

SMALL = SimulationConfig(ny=(40, 44), nx=(36, 40), coils=(3, 4))


def test_acquire_uses_the_given_coil_maps():
    """With ``maps`` given, the noiseless k-space is the FFT of those maps times the image."""
    rng = np.random.default_rng(0)
    images, stem = source_series(rng, "texture", 40, 36)
    given = birdcage_maps(3, 40, 36, seed=1)
    config = SimulationConfig(ny=(40, 40), nx=(36, 36), coils=(3, 3), snr=(1e9, 1e9))
    item = acquire(np.random.default_rng(1), images, stem, (8,), 5, config, lambda c, y, x: birdcage_maps(c, y, x, seed=1))
    coil_images = ifft2c(item["kspace"][2]).numpy()
    centre = images[item["frame"], item["slice"]]
    # Coil images over the first coil's cancel the image (and the unknown gain), leaving the maps' ratio.
    region = np.abs(centre) * np.abs(given[0]) > 0.05 * np.abs(centre * given[0]).max()
    ratio = coil_images[1][region] / coil_images[0][region]
    np.testing.assert_allclose(ratio, (given[1] / given[0])[region], rtol=1e-3, atol=1e-4)
    assert torch.allclose(item["target"], rss_from_kspace(item["kspace"][2]))


@pytest.mark.parametrize(("images", "coils"), [("biological", "training"), ("training", "biological"), ("biological", "biological")])
def test_shift_cells_have_the_training_layout(images, coils):
    dataset = shift.ShiftDataset(3, 5, images, coils, seed=2, config=SMALL)
    for index in range(len(dataset)):
        item = dataset[index]
        adj, n_coils, ny, nx = item["kspace"].shape
        assert adj == 5 and SMALL.coils[0] <= n_coils <= SMALL.coils[1]
        assert SMALL.ny[0] <= ny <= SMALL.ny[1] and SMALL.nx[0] <= nx <= SMALL.nx[1]
        assert item["mask"].shape == (5, ny, nx) and torch.isfinite(item["kspace"]).all()
    # Same seed and index: the same matrix in every cell, so cells differ by their factor only.
    other = shift.ShiftDataset(3, 5, "training", "training", seed=2, config=SMALL)
    assert dataset[1]["kspace"].shape[-2:] == other[1]["kspace"].shape[-2:]


def test_shift_rejects_unknown_sources():
    with pytest.raises(ValueError, match="unknown source 'photos'"):
        shift.ShiftDataset(2, 5, "photos", "training", seed=0)
    assert shift.cells(["bart"]) == [("training", "training"), ("bart", "training"), ("training", "bart"), ("bart", "bart")]


def test_simulated_benchmark_scores_classical_methods_by_source(capsys):
    assert simulated.main(["--methods", "zero-filled,sense", "--samples", "3", "--ny", "40:44", "--nx", "36:40", "--coils", "3:4"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[1].startswith("zero-filled: SSIM") and lines[2].startswith("sense: SSIM")
    # One sample of each training source; the same samples for both methods, so different scores.
    assert all(source in lines[1] for source in ("cardiac", "photo", "texture"))
    psnr = [float(line.split("PSNR ")[1].split()[0]) for line in lines[1:3]]
    assert all(15 < p < 80 for p in psnr) and psnr[0] != psnr[1]
    with pytest.raises(SystemExit):
        simulated.main([])


def test_benchmarks_refuse_bad_arguments_in_one_line(capsys, tmp_path):
    missing = str(tmp_path / "none.safetensors")
    assert simulated.main([missing]) == 2
    assert capsys.readouterr().err.strip() == f"error: {missing}: no such checkpoint file"
    assert simulated.main(["--methods", "foo"]) == 2
    assert "unknown method 'foo'" in capsys.readouterr().err
    assert shift.main([missing]) == 2
    assert capsys.readouterr().err.strip() == f"error: {missing}: no such checkpoint file"
    with pytest.raises(SystemExit):
        shift.main([missing, "--families", "photos"])
    assert "unknown families photos" in capsys.readouterr().err


def test_simulated_benchmark_scores_weights_with_and_without_adaptation(capsys, tmp_path):
    torch.manual_seed(0)
    weights = str(save_weights(tmp_path / "tiny.safetensors", Generator(preset("tiny"))))
    small = ["--samples", "2", "--ny", "40:44", "--nx", "36:40", "--coils", "3:4"]
    assert simulated.main([weights, *small, "--adapt", "2", "--adapt-lr", "1e-3"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[1].startswith(f"{weights}: SSIM") and lines[2].startswith(f"{weights} genre (adapted, 2 steps): SSIM")
    psnr = [float(line.split("PSNR ")[1].split()[0]) for line in lines[1:3]]
    assert all(0 < p < 80 for p in psnr)
    assert simulated.main([weights, *small, "--adapt", "-1"]) == 2
    assert capsys.readouterr().err.startswith("error: --adapt -1: steps must be >= 0")
