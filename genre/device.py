"""Where to compute: the ``--device auto|cpu|cuda`` choice of every command, resolved once."""

from __future__ import annotations

import torch


class DeviceUnavailable(Exception):
    """The device asked for does not exist here; ``str()`` is one line saying so."""


def resolve_device(name: str) -> torch.device:
    """``auto`` picks CUDA when present; asking for ``cuda`` without one raises :class:`DeviceUnavailable`."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name == "cuda" and not torch.cuda.is_available():
        raise DeviceUnavailable("--device cuda was asked for but no CUDA device is available")
    return torch.device(name)
