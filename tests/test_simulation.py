"""Samples simulated on the fly: layout, determinism, neighbour rules, coil normalisation, and training on them."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from genre.cli import main
from genre.data.simulation import (
    COIL_MODELS,
    TRAINING_SOURCES,
    SimulatedDataset,
    SimulationConfig,
    coil_maps,
    source_series,
)
from genre.kspace import rss_from_kspace
from genre.series import Neighbours, neighbours

SMALL = SimulationConfig(ny=(40, 48), nx=(36, 52), coils=(2, 5))


@pytest.fixture(scope="module")
def dataset() -> SimulatedDataset:
    return SimulatedDataset(12, adjacent=5, accelerations=(4, 8), seed=3, config=SMALL)


def test_items_have_the_training_layout(dataset):
    sources = set()
    for index in range(len(dataset)):
        item = dataset[index]
        adj, coils, ny, nx = item["kspace"].shape
        assert adj == 5 and SMALL.coils[0] <= coils <= SMALL.coils[1]
        assert SMALL.ny[0] <= ny <= SMALL.ny[1] and SMALL.nx[0] <= nx <= SMALL.nx[1]
        assert item["kspace"].dtype == torch.complex64 and torch.isfinite(item["kspace"]).all()
        assert item["mask"].shape == (5, ny, nx) and set(item["mask"].unique().tolist()) <= {0.0, 1.0}
        assert torch.allclose(item["target"], rss_from_kspace(item["kspace"][2]))
        assert item["acceleration"] in (4, 8) and item["domain"] == dataset.domains[index]
        sources.add(item["domain"])
    assert sources == set(TRAINING_SOURCES)


def test_items_are_pure_functions_of_seed_epoch_and_index(dataset):
    again = SimulatedDataset(12, adjacent=5, accelerations=(4, 8), seed=3, config=SMALL)
    assert torch.equal(dataset[5]["kspace"], again[5]["kspace"])
    again.set_epoch(1)
    assert not torch.equal(dataset[5]["kspace"], again[5]["kspace"])
    fixed = SimulatedDataset(12, adjacent=5, accelerations=(4, 8), seed=3, config=SMALL, fixed=True)
    before = fixed[5]["kspace"]
    fixed.set_epoch(4)
    assert torch.equal(before, fixed[5]["kspace"])


@pytest.mark.parametrize("source", ["photo", "texture"])
def test_every_neighbour_rule_is_simulated_with_distinct_inputs(source):
    """Cine-like, weighting-like and slice-stack series all occur, and adjacent inputs differ (motion, contrast)."""
    seen = set()
    for seed in range(40):
        images, stem = source_series(np.random.default_rng(seed), source, 40, 44)
        frames, slices = images.shape[:2]
        mode = neighbours(stem, frames)
        seen.add(mode)
        series = images.reshape(-1, 40, 44)
        assert (frames == 1) == (mode is Neighbours.SLICES) and len(series) >= 3
        assert np.abs(series[0] - series[1]).max() > 1e-3 * np.abs(series[0]).max()
    assert seen == set(Neighbours)


def test_slice_stacks_share_one_mask():
    """A single-frame series has one mask for every slice, as the challenge's files do."""
    config = SimulationConfig(ny=(40, 40), nx=(40, 40), coils=(2, 2), patterns=("ktGaussian",), sources=("texture",))
    data = SimulatedDataset(40, accelerations=(8,), config=config)
    stacks = [data[i] for i in range(40) if data[i]["stem"] == "T1w"]
    assert stacks
    for item in stacks:
        assert all(torch.equal(item["mask"][0], m) for m in item["mask"])


@pytest.mark.parametrize("model", COIL_MODELS)
def test_coil_maps_peak_at_unit_rss_and_vary(model):
    maps = coil_maps(np.random.default_rng(0), model, 6, 30, 34)
    rss = np.sqrt((np.abs(maps) ** 2).sum(0))
    assert maps.shape == (6, 30, 34) and rss.max() == pytest.approx(1.0, rel=1e-5)
    assert rss.min() > 0 and np.abs(maps[0] - maps[1]).max() > 0.05


def test_config_rejects_unknown_sources_and_bad_ranges():
    with pytest.raises(ValueError, match="sources"):
        SimulationConfig(sources=("biological",))
    with pytest.raises(ValueError, match="matrix"):
        SimulationConfig(ny=(20, 40))


def test_genre_train_on_simulated_samples_only(tmp_path):
    out = tmp_path / "run"
    args = ["train", "--simulated", "6", "--simulated-val", "2", "--out", str(out), "--preset", "tiny",
            "--epochs", "1", "--num-workers", "0", "--no-checkpointing", "--no-gan", "--curriculum", "0:4"]
    assert main(args) == 0
    sidecar = json.loads((out / "last.json").read_text())
    assert "simulated on the fly" in sidecar["summary"]["data"]
    assert sidecar["summary"]["validation"]["simulated"]["samples"] == 2
    assert sidecar["summary"]["train_config"]["curriculum"] == [[0.0, [4]]]
    assert sidecar["summary"]["commands"] == [" ".join(["genre", *args])]


def test_genre_train_draws_matrices_from_the_given_ranges(tmp_path, caplog):
    """--sim-ny/--sim-nx/--sim-coils reach the run's simulation (and its sidecar); a falling range is refused in one line."""
    out = tmp_path / "run"
    args = ["train", "--simulated", "2", "--simulated-val", "0", "--out", str(out), "--preset", "tiny", "--epochs", "1",
            "--num-workers", "0", "--no-checkpointing", "--no-gan", "--curriculum", "0:4", "--sim-ny", "150:160",
            "--sim-coils", "20:20", "--sim-nx", "32:36"]
    assert main(args) == 0
    simulation = json.loads((out / "last.json").read_text())["summary"]["train_config"]["simulation"]
    assert simulation["ny"] == [150, 160] and simulation["nx"] == [32, 36] and simulation["coils"] == [20, 20]
    item = SimulatedDataset(1, 3, (4,), 0, SimulationConfig(**simulation))[0]
    assert item["kspace"].shape[1] == 20 and 150 <= item["kspace"].shape[-2] <= 160 and 32 <= item["kspace"].shape[-1] <= 36
    assert main([*args[:-2], "--sim-nx", "64:40", "--out", str(tmp_path / "bad")]) == 2
    assert "matrix ranges must rise" in caplog.text


def test_genre_train_needs_some_data(tmp_path, caplog):
    assert main(["train", "--out", str(tmp_path / "run"), "--preset", "tiny"]) == 2
    assert "no training data" in caplog.text


def test_training_starts_from_given_weights_of_the_same_configuration(tmp_path, caplog):
    """--init-weights: the generator starts from the file; a file of another preset is refused in one line."""
    from dataclasses import replace

    from genre.models.config import preset
    from genre.models.generator import Generator
    from genre.train.config import TrainConfig
    from genre.train.run import TrainingSetupError, initial_weights
    from genre.weights_file import save_weights

    torch.manual_seed(5)
    saved = save_weights(tmp_path / "start.safetensors", Generator(preset("tiny")))
    state = initial_weights(TrainConfig(preset="tiny", init_weights=str(saved)))
    reference = Generator(preset("tiny")).state_dict()
    assert state.keys() == reference.keys()
    assert any(not torch.equal(state[k], reference[k]) for k in state)  # the file's, not a fresh draw
    assert initial_weights(TrainConfig(preset="tiny")) is None
    with pytest.raises(TrainingSetupError, match="another configuration"):
        initial_weights(replace(TrainConfig(preset="tiny", init_weights=str(saved)), residual=False))
    code = main(["train", "--simulated", "3", "--simulated-val", "0", "--out", str(tmp_path / "run"), "--preset",
                 "small", "--epochs", "1", "--num-workers", "0", "--no-gan", "--init-weights", str(saved)])
    assert code == 2 and "another configuration" in caplog.text


def test_training_grows_given_weights_by_cascades(tmp_path, caplog):
    """--cascades above the initial weights' count grows the network; below it is refused in one line."""
    from genre.models.config import preset
    from genre.models.generator import Generator
    from genre.train.config import TrainConfig
    from genre.train.run import TrainingSetupError, initial_weights
    from genre.weights_file import load_generator, save_weights

    saved = save_weights(tmp_path / "start.safetensors", Generator(preset("tiny")))
    assert TrainConfig(preset="tiny", cascades=3).generator_config().cascades == 3
    assert TrainConfig(preset="tiny").generator_config().cascades == preset("tiny").cascades
    with pytest.raises(ValueError, match="cascades"):
        TrainConfig(preset="tiny", cascades=0)
    with pytest.raises(TrainingSetupError, match="more than this run's 1"):
        initial_weights(TrainConfig(preset="tiny", cascades=1, init_weights=str(saved)))
    argv = ["train", "--simulated", "2", "--steps-per-epoch", "2", "--simulated-val", "0", "--out", str(tmp_path / "run"),
            "--preset", "tiny", "--cascades", "3", "--epochs", "1", "--num-workers", "0", "--no-gan", "--no-sda",
            "--init-weights", str(saved)]
    caplog.set_level("INFO")
    assert main(argv) == 0
    assert "from 2 to 3 cascades" in caplog.text
    grown = load_generator(tmp_path / "run" / "last.safetensors")
    assert grown.config.cascades == 3
    # Two steps move the kept cascades only a little from the file's weights.
    start = load_generator(saved).state_dict()
    key = "cascades.0.apu.feat_extract.weight"
    assert torch.allclose(grown.state_dict()[key], start[key], atol=0.05)


def test_a_fine_tuning_records_the_commands_that_made_its_initial_weights(tmp_path):
    """The shipped weights' sidecar must hold every command of their lineage, not only the last run's."""
    from genre.models.config import preset
    from genre.models.generator import Generator
    from genre.weights_file import read_sidecar, save_weights

    saved = save_weights(tmp_path / "start.safetensors", Generator(preset("tiny")),
                         {"commands": ["genre train --simulated 8 --out first"]})
    argv = ["train", "--simulated", "2", "--steps-per-epoch", "2", "--simulated-val", "0", "--out", str(tmp_path / "run"),
            "--preset", "tiny", "--epochs", "1", "--num-workers", "0", "--no-gan", "--no-sda", "--init-weights", str(saved)]
    assert main(argv) == 0
    commands = read_sidecar(tmp_path / "run" / "last.safetensors")["summary"]["commands"]
    assert commands[0] == "genre train --simulated 8 --out first"
    assert len(commands) == 2 and "--init-weights" in commands[1]
