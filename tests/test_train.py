"""Training: the loss falls, a resumed run repeats the next step exactly, the weights serve `genre predict`, DDP runs."""

from __future__ import annotations

import csv
import json
import logging
import os
import pickle
import shutil
import socket
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.multiprocessing as mp
from safetensors.torch import load_file
from torch.utils.data import default_collate

from genre.cli import main
from genre.data.matio import MatArray
from genre.data.synthetic import SynthConfig, make_tree
from genre.recon.base import SeriesInfo
from genre.recon.network import GenreReconstructor
from genre.series import adjacent_positions
from genre.evaluation.metrics import image_scores, normalize_percentile
from genre.train import training_state
from genre.train.config import TrainConfig
from genre.train.distributed import DistContext
from genre.train.objective import rss_image
from genre.train.run import build_datasets, run_training
from genre.train.trainer import Trainer

# Two domains (SDA needs another domain in the bank), two patients each (P002 is validation).
SYNTH = SynthConfig(layout="train", domains=2, cases=2, size=(32, 32), coils=4, frames=4, slices=1,
                    stems=("cine_lax_4ch",), patterns=("Uniform", "ktGaussian"), accelerations=(8,), acs=8)
CONFIG = TrainConfig(preset="tiny", epochs=1, steps_per_epoch=3, num_workers=0, val_max_samples=2,
                     curriculum=((0.0, (8,)),), ckpt_every=2)
CPU = DistContext(0, 1, torch.device("cpu"))


@pytest.fixture(scope="module")
def data(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("train_data")
    make_tree(root, SYNTH)
    return root


@pytest.fixture(scope="module")
def run_a(data, tmp_path_factory) -> Path:
    """A 3-step run with a checkpoint after step 2 and one after the epoch (step 3)."""
    out = tmp_path_factory.mktemp("run") / "a"
    run_training(CONFIG, data, out, device="cpu")
    return out


def _rows(path: Path) -> list[dict[str, str]]:
    with open(path, newline="") as handle:
        return list(csv.DictReader(handle))


@pytest.mark.slow
def test_loss_falls_with_every_loss_on(data, tmp_path):
    """20 steps on two fixed samples, one per domain, with fidelity, EAR, SDA and the GAN."""
    train_set, _ = build_datasets(CONFIG, data, CPU)
    trainer = Trainer(CONFIG, tmp_path, train_set, {}, CPU)
    assert trainer.objective.names == ("fid", "ear", "sda") and trainer.discriminator is not None
    first = [i for i, d in enumerate(train_set.domains) if d != train_set.domains[0]][0]
    batches = [default_collate([train_set[0]]), default_collate([train_set[first]])]
    rows = [trainer.train_step(batches[i % 2]) for i in range(20)]
    for row in rows:
        assert all(np.isfinite(row[k]) for k in ("loss", "fid", "ear", "sda", "adv", "disc", "grad_norm"))
        assert sum(row[f"w_{n}"] for n in ("fid", "ear", "sda")) == pytest.approx(1.0)
    assert rows[0]["sda"] == 0 and rows[0]["w_sda"] == 0  # nothing of another domain in the bank yet
    loss = [r["loss"] for r in rows]
    assert np.mean(loss[-4:]) < 0.5 * np.mean(loss[1:5])
    assert np.mean([r["sda"] for r in rows[-4:]]) < 0.5 * np.mean([r["sda"] for r in rows[1:5]])


@pytest.mark.slow
def test_reconstruction_loss_falls_without_sda_and_gan(data, tmp_path):
    """The ablation switches, and the generator learns the reconstruction itself: fidelity and EAR fall."""
    config = replace(CONFIG, sda=False, gan=False, residual=False)
    train_set, _ = build_datasets(config, data, CPU)
    trainer = Trainer(config, tmp_path, train_set, {}, CPU)
    assert trainer.objective.names == ("fid", "ear") and trainer.discriminator is None
    assert not trainer.gen_module.config.residual
    batch = default_collate([train_set[0]])
    rows = [trainer.train_step(batch) for _ in range(12)]
    assert rows[-1]["fid"] < 0.9 * rows[0]["fid"]
    assert rows[-1]["ear"] < rows[0]["ear"]


def test_run_writes_weights_logs_and_plots(run_a):
    assert [r["step"] for r in _rows(run_a / "log.csv")] == ["1", "2", "3"]
    val = _rows(run_a / "val.csv")
    assert [r["group"] for r in val] == ["seen"] and val[0]["samples"] == "2"
    assert 0 < float(val[0]["ssim"]) <= 1 and float(val[0]["zf_ssim"]) > 0
    for name in ("losses.png", "cov_weights.png", "val_epoch001.png"):
        assert (run_a / "plots" / name).stat().st_size > 1000
    assert [p.name for p in training_state.list_states(run_a)] == ["step_00000002.pt", "step_00000003.pt"]
    sidecar = json.loads((run_a / "last.json").read_text())
    assert sidecar["summary"]["step"] == 3 and sidecar["summary"]["train_config"]["preset"] == "tiny"
    assert sidecar["summary"]["validation"]["seen"]["samples"] == 2
    assert (run_a / "best.safetensors").is_file()
    assert json.loads((run_a / "config.json").read_text())["train"]["epochs"] == 1


def test_resumed_run_repeats_the_next_step_exactly(run_a, data, tmp_path, caplog):
    out = tmp_path / "b"
    shutil.copytree(run_a, out)
    # As if the run had stopped after step 2: step 3's state truncated (a full disk, a bad copy),
    # and the temporaries of a kill while saving.
    latest = out / "checkpoints" / "step_00000003.pt"
    latest.write_bytes(latest.read_bytes()[:1000])
    orphans = [out / "checkpoints" / "step_00000004.pt.tmp", out / "last.safetensors.tmp", out / "last.json.tmp"]
    for path in orphans:
        path.write_bytes(b"half")
    with caplog.at_level(logging.INFO):
        run_training(CONFIG, data, out, resume=True, device="cpu")
    assert not any(p.exists() for p in orphans) and f"removed {orphans[0]}" in caplog.text
    assert f"{latest}: unreadable, truncated" in caplog.text and "resuming " + str(out / "checkpoints" / "step_00000002.pt") in caplog.text
    rows_a, rows_b = _rows(run_a / "log.csv"), _rows(out / "log.csv")
    assert [r["step"] for r in rows_b] == ["1", "2", "3"]  # step 3 was redone, not appended twice
    assert _rows(out / "val.csv") == _rows(run_a / "val.csv")
    for key in ("loss", "fid", "ear", "sda", "adv", "disc", "w_fid", "w_ear", "w_sda", "grad_norm", "domain", "pattern"):
        assert rows_b[2][key] == rows_a[2][key], key
    weights_a, weights_b = load_file(run_a / "last.safetensors"), load_file(out / "last.safetensors")
    assert weights_a.keys() == weights_b.keys()
    for name in weights_a:
        torch.testing.assert_close(weights_b[name], weights_a[name], rtol=0, atol=1e-6)
    state_a = training_state.load_state(run_a / "checkpoints" / "step_00000003.pt")
    state_b = training_state.load_state(out / "checkpoints" / "step_00000003.pt")
    torch.testing.assert_close(state_b["objective"], state_a["objective"], rtol=0, atol=0)
    torch.testing.assert_close(state_b["discriminator"], state_a["discriminator"], rtol=0, atol=1e-6)


def test_a_run_stopped_by_its_time_limit_resumes_to_the_same_weights(run_a, data, tmp_path, caplog):
    """--stop-after: at the first step past the limit the state and weights are saved; --resume finishes the run exactly."""
    out = tmp_path / "stopped"
    with caplog.at_level(logging.INFO):
        summary = run_training(replace(CONFIG, stop_after=1e-9), data, out, device="cpu")
    assert summary["stopped"] and summary["step"] == 1 and "continue with --resume" in caplog.text
    assert [p.name for p in training_state.list_states(out)] == ["step_00000001.pt"]
    assert [r["step"] for r in _rows(out / "log.csv")] == ["1"] and _rows(out / "val.csv") == []
    sidecar = json.loads((out / "last.json").read_text())["summary"]
    assert sidecar["step"] == 1 and sidecar["validation"] == {}  # weights of a step, not of a validated epoch
    assert not (out / "best.safetensors").exists()
    summary = run_training(CONFIG, data, out, resume=True, device="cpu")  # no limit this time: a runtime setting
    assert not summary["stopped"] and summary["step"] == 3
    assert _rows(out / "val.csv") == _rows(run_a / "val.csv")
    weights_a, weights_b = load_file(run_a / "last.safetensors"), load_file(out / "last.safetensors")
    for name in weights_a:
        torch.testing.assert_close(weights_b[name], weights_a[name], rtol=0, atol=1e-6)


def test_stop_after_must_be_positive():
    with pytest.raises(ValueError, match="stop_after"):
        replace(CONFIG, stop_after=0)


def test_trained_weights_serve_genre_predict(run_a, mini_tree, tmp_path):
    out = tmp_path / "pred"
    code = main(["predict", "--input", str(mini_tree), "--output", str(out), "--method", "genre",
                 "--checkpoint", str(run_a / "last.safetensors"), "--device", "cpu"])
    assert code == 0
    outputs = sorted(out.rglob("*.mat"))
    assert len(outputs) == len(list(mini_tree.rglob("*_kus_*.mat"))) == 3
    for path in outputs:
        with MatArray(path) as result:
            assert np.isfinite(result.float32()).all()


def test_validation_scores_what_predict_writes(data, tmp_path):
    """The trainer's validation and `genre predict`'s reconstructor take one forward path: same images, same scores."""
    config = replace(CONFIG, val_max_samples=None)
    train_set, val_sets = build_datasets(config, data, CPU)
    trainer = Trainer(config, tmp_path, train_set, val_sets, CPU)
    validation = trainer.validate()["seen"]
    dataset = val_sets["seen"]
    reconstructor = GenreReconstructor(trainer.gen_module, device="cpu")
    adjacent = trainer.gen_module.config.adjacent
    scores = []
    for index in range(len(dataset)):
        item = dataset[index]
        with MatArray(Path(item["path"]), ["kspace"]) as source:
            stored = source.complex64(())
        full = torch.from_numpy(stored.reshape(stored.shape[0], 1, *stored.shape[-3:]))  # (frames, slices=1, coils, ky, kx)
        info = SeriesInfo(item["stem"], full.shape[0])
        series_mask = torch.empty(full.shape[0], *full.shape[-2:])
        for (frame, _), frame_mask in zip(adjacent_positions(full.shape[0], 1, item["frame"], 0, adjacent, info.neighbours), item["mask"]):
            series_mask[frame] = frame_mask
        image = reconstructor.reconstruct(full * series_mask[:, None, None], series_mask, info)[item["frame"], 0]
        reference = normalize_percentile(item["target"].numpy())
        scores.append(image_scores(reference, normalize_percentile(image.numpy())))
    psnr, ssim, nmse = np.mean(scores, axis=0)
    assert validation["samples"] == len(scores)
    assert validation["ssim"] == pytest.approx(ssim, abs=1e-6)
    assert validation["psnr"] == pytest.approx(psnr, abs=1e-4)
    assert validation["nmse"] == pytest.approx(nmse, rel=1e-5)


def test_command_refuses_bad_input(data, tmp_path, caplog):
    empty = tmp_path / "empty"
    empty.mkdir()
    assert main(["train", "--data", str(empty), "--out", str(tmp_path / "x"), "--preset", "tiny"]) == 2
    assert "no training files" in caplog.text
    run = tmp_path / "run"
    training_state.save_state(training_state.state_path(run, 5), {})
    assert main(["train", "--data", str(data), "--out", str(run), "--preset", "tiny"]) == 2
    assert "--resume" in caplog.text
    assert main(["train", "--data", str(data), "--out", str(tmp_path / "y"), "--holdout-domains", "Center9/X"]) == 2
    assert main(["train", "--data", str(data), "--out", str(tmp_path / "z"), "--batch-size", "2"]) == 2
    assert "one matrix size" in caplog.text


def _checkpoint_file(path: Path, kind: str) -> None:
    if kind == "text":
        path.write_text("not a checkpoint at all")
    elif kind == "empty":
        path.write_bytes(b"")
    elif kind == "pickle":
        path.write_bytes(pickle.dumps(Path("x"), protocol=2))
    elif kind == "list":
        torch.save([1, 2], path)
    elif kind == "dict":
        torch.save({"step": 3, "weights": torch.zeros(2)}, path)


@pytest.mark.parametrize("kind,problem", [
    ("text", "not a training state (not tensors and plain data"),
    ("empty", "unreadable, truncated or not written by torch.save (EOFError"),
    ("pickle", "not a training state (not tensors and plain data"),
    ("list", "not a training state (holds a list, not a dict)"),
    ("dict", "not a training state (no 'config', 'epoch'"),
])
def test_a_file_that_is_no_training_state_is_refused_in_one_line(data, tmp_path, caplog, kind, problem):
    path = training_state.state_path(tmp_path, 7)
    path.parent.mkdir()
    _checkpoint_file(path, kind)
    with pytest.raises(training_state.CheckpointError) as raised:
        training_state.load_state(path)
    assert str(raised.value).startswith(f"{path}: {problem}") and "\n" not in str(raised.value)
    with caplog.at_level(logging.ERROR):
        assert main(["train", "--data", str(data), "--out", str(tmp_path), "--preset", "tiny", "--resume"]) == 2
    [error] = [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR]
    assert error == f"no usable training checkpoint in {path.parent}: {raised.value}"


def test_a_state_of_other_networks_is_refused_in_one_line(run_a, data, tmp_path, caplog):
    state = training_state.load_state(run_a / "checkpoints" / "step_00000002.pt")
    state["generator"] = {"conv.weight": torch.zeros(1)}
    training_state.save_state(training_state.state_path(tmp_path, 2), state)
    with caplog.at_level(logging.ERROR):
        assert main(["train", "--data", str(data), "--out", str(tmp_path), "--preset", "tiny", "--resume",
                     "--num-workers", "0"]) == 2
    [error] = [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR]
    assert error.startswith(f"{training_state.state_path(tmp_path, 2)}: not a state of this run's networks (RuntimeError: ")
    assert "\n" not in error


def test_config_round_trips_through_json():
    config = replace(CONFIG, holdout_domains=("Center001/Siemens_30T_Vida",), sda=False)
    assert TrainConfig.from_dict(json.loads(json.dumps(config.to_dict()))) == config
    assert TrainConfig().lr == 0.002 and TrainConfig().sda_config.window == 4
    with pytest.raises(ValueError, match="unknown"):
        TrainConfig.from_dict({"learning_rate": 1})
    with pytest.raises(ValueError, match="preset"):
        TrainConfig(preset="huge")


def test_rss_image_has_finite_gradients_where_every_coil_is_zero():
    kspace = torch.zeros(1, 3, 8, 8, dtype=torch.complex64, requires_grad=True)
    rss_image(kspace).sum().backward()
    assert torch.isfinite(torch.view_as_real(kspace.grad)).all()


def _ddp_worker(rank: int, port: int, data: str, out: str) -> None:
    os.environ.update(RANK=str(rank), LOCAL_RANK=str(rank), WORLD_SIZE="2", MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
    torch.set_num_threads(1)
    run_training(replace(CONFIG, steps_per_epoch=2), Path(data), Path(out), device="cpu")


@pytest.mark.slow
def test_ddp_two_processes(data, tmp_path):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    out = tmp_path / "ddp"
    mp.spawn(_ddp_worker, args=(port, str(data), str(out)), nprocs=2, join=True)
    assert [r["step"] for r in _rows(out / "log.csv")] == ["1", "2"]
    state = training_state.load_state(training_state.latest_state(out))
    assert len(state["ranks"]) == 2 and state["step"] == 2
    # Each process keeps its own SDA bank: the two shards saw different samples.
    banks = [r["sda"]["cascades"][0] for r in state["ranks"]]
    assert all(len(bank) == 2 for bank in banks)
    assert not torch.equal(banks[0][0]["mean"], banks[1][0]["mean"])
    assert (out / "last.safetensors").is_file()


@pytest.mark.gpu
def test_loss_falls_on_cuda_with_bf16(data, tmp_path):
    """The CUDA training step (bf16 autocast for the CNNs and the discriminator) learns as the CPU one does."""
    cuda = DistContext(0, 1, torch.device("cuda"))
    assert CONFIG.bf16
    train_set, _ = build_datasets(CONFIG, data, cuda)
    trainer = Trainer(CONFIG, tmp_path, train_set, {}, cuda)
    first = [i for i, d in enumerate(train_set.domains) if d != train_set.domains[0]][0]
    batches = [default_collate([train_set[0]]), default_collate([train_set[first]])]
    rows = [trainer.train_step(batches[i % 2]) for i in range(20)]
    for row in rows:
        assert all(np.isfinite(row[k]) for k in ("loss", "fid", "ear", "sda", "adv", "disc", "grad_norm"))
    loss = [r["loss"] for r in rows]
    assert np.mean(loss[-4:]) < 0.5 * np.mean(loss[1:5])


@pytest.mark.gpu
def test_run_on_cuda_writes_weights_that_predict_on_cuda(data, mini_tree, tmp_path):
    out = tmp_path / "run"
    run_training(CONFIG, data, out, device="cuda")
    assert [r["step"] for r in _rows(out / "log.csv")] == ["1", "2", "3"]
    assert all(np.isfinite(float(r["loss"])) for r in _rows(out / "log.csv"))
    status = main(["predict", "--input", str(mini_tree), "--output", str(tmp_path / "pred"), "--device", "cuda",
                   "--checkpoint", str(out / "last.safetensors")])
    assert status == 0
    assert len(list((tmp_path / "pred").rglob("*.mat"))) == 3


def test_a_nan_in_a_training_file_read_by_a_worker_process_is_one_line(data, tmp_path, caplog):
    """A DataLoader worker's error comes back wrapped with its traceback; the user gets the one line."""
    import h5py

    root = tmp_path / "data"
    shutil.copytree(data, root)
    for path in sorted(root.rglob("FullSample/**/*.mat")):
        with h5py.File(path, "r+") as f:
            name = next(n for n in f if not n.startswith("#"))
            values = f[name][()]
            first = values.dtype.names[0] if values.dtype.names else None
            if first:
                values[first][...] = np.nan
            else:
                values[...] = np.nan
            f[name][...] = values
    caplog.set_level(logging.ERROR)
    status = main(["train", "--data", str(root), "--out", str(tmp_path / "run"), "--preset", "tiny", "--epochs", "1",
                   "--steps-per-epoch", "2", "--num-workers", "1", "--curriculum", "0:8", "--no-gan", "--no-sda"])
    assert status == 1
    [line] = [r.getMessage() for r in caplog.records if r.getMessage().startswith("FAILED")]
    assert "k-space holds NaN or Inf values" in line and str(root) in line
    assert "Traceback" not in caplog.text and "\n" not in line
