"""scripts/gpu_session.sh's training step, run on the CPU: no GPU is lent to check it where it is meant to run."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_generalize_step_stops_on_time_and_resumes_in_the_next_call(tmp_path):
    env = {**os.environ, "PYTHON": sys.executable, "DEVICE": "cpu", "WORKERS": "0", "MINUTES": "0.001",
           "RUN": str(tmp_path / "run"), "OMP_NUM_THREADS": "1"}
    for call in (1, 2):
        env["OUT"] = str(tmp_path / f"out{call}")  # the device tool gives every call an empty folder
        result = subprocess.run(["bash", "scripts/gpu_session.sh", "generalize"], cwd=ROOT, env=env,
                                capture_output=True, text=True, timeout=600)
        assert result.returncode == 0, result.stderr[-2000:]
        log = (tmp_path / f"out{call}" / "generalize.log").read_text()
        assert f"stopped by the 0.001-minute limit at step {call}," in log
        assert ("resuming" in log) == (call == 2)
        back = tmp_path / f"out{call}" / "sim-gpu"
        assert (back / "last.safetensors").is_file() and (back / "checkpoints" / f"step_{call:08d}.pt").is_file()
        assert "%|" not in log  # progress bars stay out of the log that comes back
