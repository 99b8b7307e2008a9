"""``genre model-info`` (genre.commands.model_info)."""

from __future__ import annotations

from genre.models.config import preset
from genre.models.flops import count_flops
from genre.models.generator import Generator


def test_model_info_command(capsys):
    from genre.cli import main

    args = ["model-info", "--preset", "tiny", "--height", "37", "--width", "51", "--coils", "3"]
    assert main(args) == 0
    out = capsys.readouterr().out
    params = sum(p.numel() for p in Generator(preset("tiny")).parameters())
    assert f"parameters   {params:,}" in out
    assert f"FLOPs        {count_flops(preset('tiny'), 3, 37, 51) / 1e6:.2f} MFLOP per slice-frame" in out
