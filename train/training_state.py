"""Training state: everything a resumed run needs to continue exactly, saved as ``checkpoints/step_*.pt``.

A state is a dict saved with :func:`torch.save` under ``<out>/checkpoints/step_<8 digits>.pt``:
``config`` (the :class:`~genre.train.config.TrainConfig` as a dict), ``step``, ``epoch`` and
``step_in_epoch`` (the sampler position), the ``generator`` and ``discriminator`` weights,
their ``optimizers`` and ``schedulers``, the ``objective`` (CoV statistics), ``best`` (the best
score so far) and ``ranks``: per process, its SDA bank and RNG states (both differ between DDP
processes). Everything in it is plain data and tensors, so it loads with ``weights_only=True``.

The generator weights for inference are written separately with
:func:`genre.weights_file.save_weights` (``best.safetensors`` / ``last.safetensors``).
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any

import torch

STATE_DIR = "checkpoints"
_NAME = re.compile(r"^step_(\d{8,})\.pt$")


def state_path(out: Path, step: int) -> Path:
    return Path(out) / STATE_DIR / f"step_{step:08d}.pt"


def list_states(out: Path) -> list[Path]:
    """The training states below ``out``, oldest (fewest steps) first."""
    folder = Path(out) / STATE_DIR
    if not folder.is_dir():
        return []
    found = [(int(m.group(1)), p) for p in folder.iterdir() if (m := _NAME.match(p.name))]
    return [p for _, p in sorted(found)]


def latest_state(out: Path) -> Path | None:
    found = list_states(out)
    return found[-1] if found else None


def save_state(path: Path, state: dict[str, Any]) -> None:
    """Write ``state`` atomically (temporary file, then rename)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    torch.save(state, tmp)
    os.replace(tmp, path)


def load_state(path: Path) -> dict[str, Any]:
    """A state written by :func:`save_state`, on the CPU."""
    return torch.load(path, map_location="cpu", weights_only=True)


def prune(out: Path, keep: int) -> None:
    """Delete all but the ``keep`` newest training states."""
    for path in list_states(out)[:-keep]:
        path.unlink(missing_ok=True)


def capture_rng() -> dict[str, Any]:
    """torch's CPU and CUDA generator states. Data randomness is keyed on (seed, epoch, index) and needs none."""
    state: dict[str, Any] = {"cpu": torch.get_rng_state()}
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def restore_rng(state: dict[str, Any]) -> None:
    torch.set_rng_state(state["cpu"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def to_cpu(obj: Any) -> Any:
    """``obj`` with every tensor in its dicts and lists moved to the CPU (for gathering and saving)."""
    if isinstance(obj, torch.Tensor):
        return obj.detach().cpu()
    if isinstance(obj, dict):
        return {k: to_cpu(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return type(obj)(to_cpu(v) for v in obj)
    return obj


def to_device(obj: Any, device: torch.device) -> Any:
    """Inverse of :func:`to_cpu`."""
    if isinstance(obj, torch.Tensor):
        return obj.to(device)
    if isinstance(obj, dict):
        return {k: to_device(v, device) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return type(obj)(to_device(v, device) for v in obj)
    return obj
