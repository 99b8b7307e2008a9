"""The submission image, built with podman and run the way the harness runs it (opt-in: ``-m container``).

Runs scripts/container_smoke.sh: about 3 minutes on 2 cores the first time (debootstrap of the
stand-in base, pip downloads), under a minute once the stand-in and the image layers are cached.
Needs root and apt (docs/container.md).
"""

import os
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = ROOT / "scripts" / "container_smoke.sh"


@pytest.mark.container
def test_image_runs_like_the_harness_and_its_output_validates(tmp_path):
    assert os.geteuid() == 0, "the container smoke needs root (debootstrap and rootful podman)"
    env = {**os.environ, "SMOKE_WORK": str(tmp_path / "smoke")}
    result = subprocess.run(["bash", str(SCRIPT)], env=env, capture_output=True, text=True, timeout=3600)
    log = result.stdout + result.stderr
    assert result.returncode == 0, f"{SCRIPT.name} exited {result.returncode}; end of its log:\n{log[-6000:]}"
    assert "container smoke passed" in result.stdout
