"""Checkpoints: bit-exact round trip, and one clear line for every unusable file."""

from __future__ import annotations

import json
from dataclasses import replace

import pytest
import torch

import genre
from genre import weights_file
from genre.weights_file import WeightsFileError, load_generator, read_sidecar, save_weights, sidecar_path
from genre.models.config import preset
from genre.models.generator import Generator


@pytest.fixture
def saved(tmp_path):
    torch.manual_seed(0)
    model = Generator(preset("tiny"))
    with torch.no_grad():
        model.cascades[1].eta.fill_(0.37)  # not the initial value: the load must not re-initialise
    path = save_weights(tmp_path / "weights" / "tiny.safetensors", model, summary={"epoch": 3, "ssim": 0.91})
    return path, model


def _one_line_error(path, match: str) -> str:
    with pytest.raises(WeightsFileError, match=match) as info:
        load_generator(path)
    message = str(info.value)
    assert "\n" not in message
    return message


def test_round_trip_is_bit_exact(saved):
    path, model = saved
    loaded = load_generator(path)
    assert loaded.config == model.config
    assert not loaded.training
    expected = model.state_dict()
    got = loaded.state_dict()
    assert expected.keys() == got.keys()
    for name in expected:
        assert got[name].dtype == expected[name].dtype, name
        assert torch.equal(got[name], expected[name]), name
    for (name, a), (_, b) in zip(model.named_parameters(), loaded.named_parameters()):
        assert a.requires_grad == b.requires_grad, name


def test_sidecar_holds_config_and_provenance(saved):
    path, model = saved
    assert sidecar_path(path) == path.with_name("tiny.json")
    meta = read_sidecar(path)
    assert meta["config"] == json.loads(json.dumps(model.config.to_dict()))
    assert meta["version"] == genre.__version__
    assert "git_commit" in meta
    assert meta["summary"] == {"epoch": 3, "ssim": 0.91}
    assert not list(path.parent.glob("*.tmp"))


def test_cascade_count_mismatch_is_named(saved):
    path, _ = saved
    meta = read_sidecar(path)
    meta["config"]["cascades"] = 4
    sidecar_path(path).write_text(json.dumps(meta))
    message = _one_line_error(path, "config says 4 cascades but weights hold 2")
    assert message.startswith(str(path))


def test_shape_mismatch_is_named(saved):
    path, _ = saved
    meta = read_sidecar(path)
    meta["config"]["unet"]["n_feat0"] = 5
    sidecar_path(path).write_text(json.dumps(meta))
    _one_line_error(path, r"config and weights disagree: .*of other shape \(first cascades\.0\.")


def test_missing_weights_are_named(tmp_path):
    torch.manual_seed(0)
    path = save_weights(tmp_path / "x.safetensors", Generator(preset("tiny")))
    meta = read_sidecar(path)
    meta["config"]["unet"]["n_skip_cab"] = [1, 1]  # one more skip block than the weights hold
    sidecar_path(path).write_text(json.dumps(meta))
    _one_line_error(path, r"weights missing \(first cascades\.0\.apu\.skips\.1\.")


def test_missing_sidecar(saved):
    path, _ = saved
    sidecar_path(path).unlink()
    _one_line_error(path, r"tiny\.json.*missing")


def test_unusable_sidecar(saved):
    path, _ = saved
    sidecar_path(path).write_text("{not json")
    _one_line_error(path, "not valid JSON")
    sidecar_path(path).write_text(json.dumps({"config": {"cascades": 2, "depth_of_field": 1}}))
    _one_line_error(path, "unusable config.*depth_of_field")


def test_unreadable_weights(saved, tmp_path):
    path, _ = saved
    path.write_bytes(b"\x00\x01 not a safetensors file")
    _one_line_error(path, "not a readable safetensors file")
    _one_line_error(tmp_path / "absent.safetensors", "no such checkpoint file")


def test_save_refuses_other_suffixes(tmp_path):
    with pytest.raises(ValueError, match="safetensors"):
        save_weights(tmp_path / "x.pt", Generator(replace(preset("tiny"), cascades=1)))


def test_a_sidecar_claiming_absurd_cascades_is_refused_before_anything_is_built(saved, monkeypatch):
    # 10^7 cascades once took minutes and gigabytes of module objects before the refusal.
    path, _ = saved
    meta = read_sidecar(path)
    meta["config"]["cascades"] = 10**7
    sidecar_path(path).write_text(json.dumps(meta))

    def never(config):
        raise AssertionError("a generator was built")

    monkeypatch.setattr(weights_file, "Generator", never)
    _one_line_error(path, "config says 10000000 cascades but weights hold 2")


def test_a_config_far_larger_than_its_weights_stops_building_at_the_files_size(saved):
    path, _ = saved
    meta = read_sidecar(path)
    meta["config"]["unet"]["n_enc_cab"] = [2000, 1]  # thousands of blocks the file does not hold
    sidecar_path(path).write_text(json.dumps(meta))
    message = _one_line_error(path, r"tiny\.json: its config builds more than \d+ tensors where tiny\.safetensors holds \d+")
    assert message.startswith(str(sidecar_path(path)))
