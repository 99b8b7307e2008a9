"""The newcomer path: scripts/readme_examples.sh runs every command example of README.md, in order."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.slow
def test_every_readme_command_runs_in_order(tmp_path):
    blocks = re.findall(r"^```\n(.*?)^```", (ROOT / "README.md").read_text(encoding="utf-8"), flags=re.S | re.M)
    commands = [line for block in blocks for line in block.splitlines() if re.match(r"(genre|torchrun|python predict\.py) ", line)]
    assert len(commands) >= 15, "the README's examples were not found"
    env = {**os.environ, "PYTHON": sys.executable, "README_WORK": str(tmp_path)}
    result = subprocess.run(["bash", str(ROOT / "scripts" / "readme_examples.sh")], env=env, capture_output=True, text=True,
                            timeout=900, check=False)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    assert f"all {len(commands)} commands of README.md ran" in result.stdout
