"""MATLAB's ``round``, which the organizers' scripts use for line counts and crops (Python's ``round`` differs)."""

from __future__ import annotations

import math


def mround(x: float) -> int:
    """MATLAB's ``round``: halves go away from zero (Python's ``round`` goes to even)."""
    return int(math.floor(x + 0.5))
