"""Generator configuration and presets (genre.models.config)."""

from __future__ import annotations

import json

import pytest

from genre.models.config import GeneratorConfig, preset


@pytest.mark.parametrize("name", ["paper", "small", "tiny"])
def test_config_json_round_trip(name):
    config = preset(name)
    assert GeneratorConfig.from_dict(json.loads(json.dumps(config.to_dict()))) == config


def test_config_rejects_unknown_keys_and_presets():
    data = preset("tiny").to_dict()
    data["unet"]["widht"] = 3
    with pytest.raises(ValueError, match="widht"):
        GeneratorConfig.from_dict(data)
    with pytest.raises(ValueError, match="paper"):
        preset("huge")
    with pytest.raises(ValueError, match="update"):
        GeneratorConfig(update="other")
