"""Generator weights files (what ``--checkpoint`` names): weights in ``<name>.safetensors``, config and
provenance in ``<name>.json`` beside it. The training loop's resumable state is :mod:`genre.train.training_state`.

The sidecar holds ``config`` (:meth:`GeneratorConfig.to_dict`), ``version`` (the package's),
``git_commit`` (``None`` outside a git checkout) and ``summary`` (free-form, from training).
Every problem a user can cause (a missing sidecar, weights of another configuration, a
truncated file) raises :class:`WeightsFileError` with one line naming the file.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file

from genre import __version__
from genre.models.config import GeneratorConfig
from genre.models.generator import Generator


class WeightsFileError(Exception):
    """A weights file that cannot be used; the message is one line naming the file and the problem."""


def sidecar_path(path: str | os.PathLike) -> Path:
    """The JSON sidecar of a weights file: ``x.safetensors`` -> ``x.json``."""
    return Path(path).with_suffix(".json")


def save_weights(path: str | os.PathLike, model: Generator, summary: Mapping[str, Any] | None = None) -> Path:
    """Write ``model``'s weights to ``path`` (``.safetensors``) and its sidecar; returns ``path``.

    Both files are written to temporaries and renamed, so a crash never leaves half a weights file
    under the final name. ``summary`` must be JSON-serialisable (checked before anything is written).
    """
    path = Path(path)
    if path.suffix != ".safetensors":
        raise ValueError(f"{path}: weights must be a .safetensors file")
    sidecar = sidecar_path(path)
    text = json.dumps(
        {
            "config": model.config.to_dict(),
            "version": __version__,
            "git_commit": _git_commit(),
            "summary": dict(summary or {}),
        },
        indent=2,
    )
    state = {name: tensor.detach().to("cpu").contiguous() for name, tensor in model.state_dict().items()}
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp_weights = path.with_name(path.name + ".tmp")
    tmp_sidecar = sidecar.with_name(sidecar.name + ".tmp")
    save_file(state, str(tmp_weights), metadata={"format": "pt", "genre_version": __version__})
    tmp_sidecar.write_text(text + "\n")
    os.replace(tmp_weights, path)
    os.replace(tmp_sidecar, sidecar)
    return path


def read_sidecar(path: str | os.PathLike) -> dict[str, Any]:
    """The sidecar of weights file ``path`` as a dict; :class:`WeightsFileError` if absent or unreadable."""
    sidecar = sidecar_path(path)
    if not sidecar.is_file():
        raise WeightsFileError(f"{path}: its sidecar {sidecar.name} (the model config) is missing")
    try:
        data = json.loads(sidecar.read_text())
    except json.JSONDecodeError as err:
        raise WeightsFileError(f"{sidecar}: not valid JSON ({err.msg} at line {err.lineno})") from None
    except OSError as err:
        raise WeightsFileError(f"{sidecar}: cannot be read ({err.strerror})") from None
    if not isinstance(data, dict) or "config" not in data:
        raise WeightsFileError(f"{sidecar}: no 'config' entry")
    return data


def load_generator(path: str | os.PathLike, device: str | torch.device = "cpu") -> Generator:
    """The :class:`Generator` saved at ``path``, on ``device``, in eval mode."""
    path = Path(path)
    if not path.is_file():
        raise WeightsFileError(f"{path}: no such checkpoint file")
    sidecar = read_sidecar(path)
    try:
        config = GeneratorConfig.from_dict(sidecar["config"])
    except (TypeError, ValueError) as err:
        raise WeightsFileError(f"{sidecar_path(path)}: unusable config ({err})") from None
    try:
        weights = load_file(str(path))
    except (SafetensorError, OSError, ValueError) as err:
        raise WeightsFileError(f"{path}: not a readable safetensors file ({err})") from None

    # Built on the meta device: no time spent on a random initialisation that is overwritten.
    with torch.device("meta"):
        model = Generator(config)
    problem = _mismatch(config, model.state_dict(), weights)
    if problem:
        raise WeightsFileError(f"{path}: {problem}")
    weights = {name: tensor.float() if tensor.is_floating_point() else tensor for name, tensor in weights.items()}
    model.load_state_dict(weights, assign=True)
    return model.to(device).eval()


def _mismatch(config: GeneratorConfig, expected: Mapping[str, torch.Tensor], weights: Mapping[str, torch.Tensor]) -> str:
    """What is wrong between the weights a config builds and those in a file; empty when they match."""
    indices = (re.match(r"cascades\.(\d+)\.", name) for name in weights)
    held = 1 + max((int(m.group(1)) for m in indices if m), default=-1)
    if held != config.cascades:
        return f"config says {config.cascades} cascades but weights hold {held}"
    missing = sorted(set(expected) - set(weights))
    unexpected = sorted(set(weights) - set(expected))
    reshaped = [name for name in expected if name in weights and weights[name].shape != expected[name].shape]
    problems = []
    if missing:
        problems.append(f"{len(missing)} weights missing (first {missing[0]})")
    if unexpected:
        problems.append(f"{len(unexpected)} unexpected weights (first {unexpected[0]})")
    if reshaped:
        name = reshaped[0]
        problems.append(
            f"{len(reshaped)} of other shape (first {name}: config {tuple(expected[name].shape)}, "
            f"weights {tuple(weights[name].shape)})"
        )
    return "config and weights disagree: " + "; ".join(problems) if problems else ""


def _git_commit() -> str | None:
    """The commit of the checkout this package runs from, or ``None`` (not a checkout, no git)."""
    try:
        result = subprocess.run(
            ["git", "rev-parse", "HEAD"],
            cwd=Path(__file__).resolve().parent,
            capture_output=True,
            text=True,
            timeout=5,
            check=False,
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return result.stdout.strip() if result.returncode == 0 else None
