"""The submission Dockerfile: hadolint-clean, and what the CMRxRecon harness relies on is in it."""

import re
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

from packaging.requirements import Requirement

ROOT = Path(__file__).resolve().parents[1]
DOCKERFILE = ROOT / "Dockerfile"


def _instructions() -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) pairs, continuation lines joined, comments dropped."""
    text = re.sub(r"\\\n", " ", DOCKERFILE.read_text())
    pairs = []
    for line in text.splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            keyword, _, rest = line.partition(" ")
            pairs.append((keyword.upper(), " ".join(rest.split())))
    return pairs


def _hadolint() -> str:
    # The virtual environment's bin folder is not on PATH when pytest is run as .venv/bin/pytest.
    found = shutil.which("hadolint") or shutil.which("hadolint", path=str(Path(sys.executable).parent))
    assert found, "hadolint not found on PATH or beside the Python running the tests; install the test extra (pip install -e '.[test]')"
    return found


def test_hadolint_finds_no_error():
    result = subprocess.run([_hadolint(), "--failure-threshold", "error", str(DOCKERFILE)], capture_output=True, text=True)
    assert result.returncode == 0, f"hadolint: {result.stdout}{result.stderr}"


def test_base_image_is_pinned_and_fits_driver_550():
    (base,) = [args for keyword, args in _instructions() if keyword == "FROM"]
    match = re.fullmatch(r"pytorch/pytorch:[\d.]+-cuda(\d+)\.(\d+)-cudnn\d+-runtime", base)
    assert match, f"base image {base!r} is not a pinned pytorch/pytorch CUDA runtime tag"
    assert (int(match[1]), int(match[2])) <= (12, 4), f"{base}: CUDA newer than 12.4 does not run on driver 550"


def test_harness_conventions():
    instructions = _instructions()
    assert ("WORKDIR", "/app") in instructions
    assert ("ENTRYPOINT", '["python", "/app/predict.py"]') in instructions
    env = " ".join(args for keyword, args in instructions if keyword == "ENV")
    for setting in ("PYTHONUNBUFFERED=1", "GENRE_METHOD=genre", "GENRE_OUTPUT_MODE=full"):
        assert setting in env
    assert not any(keyword in ("CMD", "USER") for keyword, _ in instructions), "the harness passes no arguments and runs as root"
    assert not re.search(r"index-url|trusted-host", DOCKERFILE.read_text()), "no package index may be baked into the image"


def test_dependency_pins_satisfy_pyproject():
    """Every dependency but torch (the base image's) is pinned, inside pyproject's range."""
    declared = {Requirement(r).name: Requirement(r) for r in tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["dependencies"]}
    runs = " ".join(args for keyword, args in _instructions() if keyword == "RUN")
    pinned = dict(re.findall(r"\b([A-Za-z0-9_.-]+)==([\w.]+)", runs))
    assert "torch" not in pinned, "the image keeps the base image's torch"
    assert set(pinned) == set(declared) - {"torch"}
    for name, version in pinned.items():
        assert declared[name].specifier.contains(version), f"Dockerfile pins {name}=={version}, pyproject asks {declared[name]}"
    assert "pip install --no-deps ." in runs


def test_train_and_evaluation_install_inside_the_genre_package():
    """Top-level train/ and evaluation/ are reached through genre/'s links; no top-level package of theirs is installed."""
    from setuptools import find_packages

    include = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["packages"]["find"]["include"]
    packages = set(find_packages(str(ROOT), include=include))
    assert {"genre", "genre.train", "genre.evaluation"} <= packages
    assert {p.split(".")[0] for p in packages} == {"genre"}
    for name in ("train", "evaluation"):
        assert (ROOT / "genre" / name).is_symlink() and (ROOT / "genre" / name).resolve() == ROOT / name
        # The image copies both the link (inside genre/) and the folder it points at.
        assert ("COPY", f"{name} ./{name}") in _instructions() and ("COPY", "genre ./genre") in _instructions()
        assert f"!{name}/" in (ROOT / ".dockerignore").read_text().split()
