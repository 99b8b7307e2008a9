"""benchmarks.memory: the live-tensor peak is what was alive at once, and the tool runs."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import torch

from benchmarks.memory import peak_tensor_bytes, reconstruction_footprint
from genre.models import prompt_unet

ROOT = Path(__file__).resolve().parents[1]


def test_peak_counts_storages_alive_at_once_and_not_views_or_in_place_results():
    kept = torch.ones(4096)  # made before and excluded: not counted, nor is a view of it

    def work() -> None:
        a = torch.ones(1000)  # 4,000 bytes
        b = torch.ones(2000)  # 8,000: 12,000 alive
        b.add_(1)  # the same storage
        _ = b[:10], kept[:10]  # views: no new storage
        del a  # 8,000
        c = torch.ones(500)  # 10,000
        del b, c

    assert peak_tensor_bytes(work, exclude=[kept]) == 12_000
    assert peak_tensor_bytes(work) == 12_000 + 16_384  # the view made its storage count


@pytest.mark.slow
def test_footprint_grows_with_the_batch_and_the_bf16_emulation_is_applied_then_undone():
    small = reconstruction_footprint("tiny", (32, 48), 1, 4, 4, emulate_bf16=False)
    large = reconstruction_footprint("tiny", (32, 48), 4, 4, 4, emulate_bf16=False)
    assert 0 < small.peak_bytes < large.peak_bytes
    # At this size the bf16 copies of a paper U-Net's weights (autocast keeps them for the
    # duration of the U-Net) outweigh the activations they halve: bf16 comes out larger.
    bf16 = reconstruction_footprint("paper", (32, 48), 4, 1, 4, emulate_bf16=True)
    fp32 = reconstruction_footprint("paper", (32, 48), 4, 1, 4, emulate_bf16=False)
    assert bf16.peak_bytes > fp32.peak_bytes
    assert prompt_unet.BF16_DEVICE_TYPES == ("cuda",)


@pytest.mark.slow
def test_command_prints_one_row_per_batch():
    command = [sys.executable, "-m", "benchmarks.memory", "--preset", "tiny", "--size", "32x48", "--batch", "1,2",
               "--coils", "4", "--frames", "4"]
    result = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=120, check=False)
    assert result.returncode == 0, result.stderr
    rows = [line for line in result.stdout.splitlines() if line.startswith("| tiny |")]
    assert [row.split("|")[3].strip() for row in rows] == ["1", "2"]
