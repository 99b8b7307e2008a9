"""Reconstruction methods behind one interface (:class:`genre.recon.base.Reconstructor`)."""

from __future__ import annotations

from pathlib import Path

import torch

from genre.recon.base import MethodUnavailable

#: The methods of the submission, slowest first, and ``genre demo``'s default: nothing external here.
METHODS = ("genre", "sense", "zero-filled")
#: Peers for comparison that need something outside the package (``bart``: the BART binary).
EXTRA_METHODS = ("bart",)
ALL_METHODS = METHODS + EXTRA_METHODS
#: The faster methods, in order, that take over the files a method would not finish within
#: ``--time-budget-hours``. BART, a CPU binary slower than CG-SENSE, falls back like GENRE-CMR.
FALLBACKS = {
    "genre": ("sense", "zero-filled"),
    "sense": ("zero-filled",),
    "zero-filled": (),
    "bart": ("sense", "zero-filled"),
}


def make_reconstructor(name: str, device: torch.device, checkpoint: Path | None = None, max_batch: int | None = None):
    """Build the named method on ``device``; raises :class:`MethodUnavailable` with a one-line reason."""
    if name == "zero-filled":
        from genre.recon.zero_filled import ZeroFilled

        return ZeroFilled(device)
    if name == "sense":
        from genre.recon.sense import CGSense

        return CGSense(device)
    if name == "genre":
        from genre.recon.network import build_genre_reconstructor

        return build_genre_reconstructor(checkpoint, device, max_batch)
    if name == "bart":
        from genre.recon.bart import BartPics

        return BartPics()  # a CPU binary, whatever the device
    raise MethodUnavailable(f"unknown method {name!r}; choose one of {', '.join(ALL_METHODS)}")
