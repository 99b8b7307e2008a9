"""Training state: everything a resumed run needs to continue exactly, saved as ``checkpoints/step_*.pt``.

A state is a dict saved with :func:`torch.save` under ``<out>/checkpoints/step_<8 digits>.pt``:
``config`` (the :class:`~genre.train.config.TrainConfig` as a dict), ``step``, ``epoch`` and
``step_in_epoch`` (the sampler position), the ``generator`` and ``discriminator`` weights,
their ``optimizers`` and ``schedulers``, the ``objective`` (CoV statistics), ``best`` (the best
score so far) and ``ranks``: per process, its SDA bank and RNG states (both differ between DDP
processes). Everything in it is plain data and tensors, so it loads with ``weights_only=True``.

The generator weights for inference are written separately with
:func:`genre.weights_file.save_weights` (``best.safetensors`` / ``last.safetensors``).

A run killed while saving leaves ``step_*.pt.tmp`` (and ``*.safetensors.tmp`` / ``*.json.tmp``
from the weights); :func:`remove_temporaries` clears them. A state that cannot be read, or is
not a training state, raises :class:`CheckpointError` with one line naming the file.
"""

from __future__ import annotations

import os
import pickle
import re
from pathlib import Path
from typing import Any

import torch

STATE_DIR = "checkpoints"
_NAME = re.compile(r"^step_(\d{8,})\.pt$")
#: What a state holds whichever losses are on (the discriminator's entries only with the GAN).
_KEYS = ("config", "step", "epoch", "step_in_epoch", "best", "epoch_losses", "generator", "optimizers",
         "schedulers", "objective", "ranks")


class CheckpointError(Exception):
    """A training state that cannot be resumed from; ``str()`` is one line naming the file and the problem."""


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
    """Write ``state`` atomically (``<path>.tmp``, then rename)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    torch.save(state, tmp)
    os.replace(tmp, path)


def load_state(path: Path) -> dict[str, Any]:
    """A state written by :func:`save_state`, on the CPU; :class:`CheckpointError` if it is unreadable or no state."""
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError:
        # torch's own message advises weights_only=False, which would run whatever the file holds.
        raise CheckpointError(f"{path}: not a training state (not tensors and plain data as torch.save writes them)") from None
    except Exception as exc:  # noqa: BLE001 - torch.load raises anything (KeyError, EOFError, RuntimeError) on garbage
        lines = str(exc).strip().splitlines()
        detail = f"{type(exc).__name__}: {lines[0][:120]}" if lines else type(exc).__name__
        raise CheckpointError(f"{path}: unreadable, truncated or not written by torch.save ({detail})") from None
    if not isinstance(state, dict):
        raise CheckpointError(f"{path}: not a training state (holds a {type(state).__name__}, not a dict)")
    missing = [key for key in _KEYS if key not in state]
    if missing:
        raise CheckpointError(f"{path}: not a training state (no {', '.join(map(repr, missing))})")
    return state


def remove_temporaries(out: Path) -> list[Path]:
    """Delete what :func:`save_state` and the weights' writer leave when killed mid-write in run folder ``out``; returns them.

    Only the trainer writes into its run folder, so any such temporary is an orphan.
    """
    out = Path(out)
    found = [p for p in (out / STATE_DIR).glob("step_*.pt.tmp") if _NAME.match(p.name[: -len(".tmp")])]
    found += [*out.glob("*.safetensors.tmp"), *out.glob("*.json.tmp")]
    for path in found:
        path.unlink(missing_ok=True)
    return sorted(found)


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
