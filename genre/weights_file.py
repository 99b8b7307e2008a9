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
from safetensors import SafetensorError, safe_open
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
    """The :class:`Generator` saved at ``path``, on ``device``, in eval mode.

    The sidecar's config is checked against the tensor names and shapes of the weights file's
    header before the generator is built (a sidecar claiming 10^7 cascades is refused at once,
    not after minutes of building), and the build itself stops once the config has asked for
    more tensors than :data:`TENSOR_MARGIN` times what the file holds; only then are the
    weights read.
    """
    path = Path(path)
    if not path.is_file():
        raise WeightsFileError(f"{path}: no such checkpoint file")
    sidecar = read_sidecar(path)
    try:
        config = GeneratorConfig.from_dict(sidecar["config"])
    except (TypeError, ValueError) as err:
        raise WeightsFileError(f"{sidecar_path(path)}: unusable config ({err})") from None
    shapes = _header(path)
    indices = (re.match(r"cascades\.(\d+)\.", name) for name in shapes)
    held = 1 + max((int(m.group(1)) for m in indices if m), default=-1)
    if held != config.cascades:
        raise WeightsFileError(f"{path}: config says {config.cascades} cascades but weights hold {held}")
    model = _build(config, len(shapes), path)
    problem = _mismatch(model.state_dict(), shapes)
    if problem:
        raise WeightsFileError(f"{path}: {problem}")
    try:
        weights = load_file(str(path))
    except (SafetensorError, OSError, ValueError) as err:
        raise WeightsFileError(f"{path}: not a readable safetensors file ({err})") from None
    weights = {name: tensor.float() if tensor.is_floating_point() else tensor for name, tensor in weights.items()}
    model.load_state_dict(weights, assign=True)
    return model.to(device).eval()


#: A config may ask for up to this many times the tensors its weights file holds before its build
#: is stopped: a near miss is still built and reported name by name, a far one costs no more than
#: building what the file holds.
TENSOR_MARGIN = 2


class _TooManyTensors(Exception):
    pass


def _header(path: Path) -> dict[str, tuple[int, ...]]:
    """The shape of every tensor of a safetensors file, from its header (no tensor is read)."""
    try:
        with safe_open(str(path), framework="pt") as handle:
            return {name: tuple(handle.get_slice(name).get_shape()) for name in handle.keys()}
    except (SafetensorError, OSError, ValueError) as err:
        raise WeightsFileError(f"{path}: not a readable safetensors file ({err})") from None


def _build(config: GeneratorConfig, tensors: int, path: Path) -> Generator:
    """The generator of ``config`` on the meta device (no memory, no random initialisation), unless it needs
    more than :data:`TENSOR_MARGIN` times the ``tensors`` of the weights file ``path``."""
    limit = TENSOR_MARGIN * tensors
    registered = 0

    def count(module: torch.nn.Module, name: str, value: torch.Tensor | None) -> None:
        nonlocal registered
        registered += value is not None
        if registered > limit:
            raise _TooManyTensors

    hooks = [
        torch.nn.modules.module.register_module_parameter_registration_hook(count),
        torch.nn.modules.module.register_module_buffer_registration_hook(count),
    ]
    try:
        with torch.device("meta"):
            return Generator(config)
    except _TooManyTensors:
        raise WeightsFileError(
            f"{sidecar_path(path)}: its config builds more than {limit} tensors where {path.name} holds {tensors}"
        ) from None
    finally:
        for hook in hooks:
            hook.remove()


def _mismatch(expected: Mapping[str, torch.Tensor], shapes: Mapping[str, tuple[int, ...]]) -> str:
    """What is wrong between the weights a config builds and the tensor shapes of a file; empty when they match."""
    missing = sorted(set(expected) - set(shapes))
    unexpected = sorted(set(shapes) - set(expected))
    reshaped = [name for name in expected if name in shapes and tuple(expected[name].shape) != shapes[name]]
    problems = []
    if missing:
        problems.append(f"{len(missing)} weights missing (first {missing[0]})")
    if unexpected:
        problems.append(f"{len(unexpected)} unexpected weights (first {unexpected[0]})")
    if reshaped:
        name = reshaped[0]
        problems.append(
            f"{len(reshaped)} of other shape (first {name}: config {tuple(expected[name].shape)}, "
            f"weights {shapes[name]})"
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
