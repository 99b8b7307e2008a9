"""Timing of one callable on one device: warm-ups, then the median of repeats, and the peak memory."""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass

import torch


@dataclass(frozen=True)
class Timing:
    """Seconds per call over ``repeats`` timed calls; ``peak_bytes`` is CUDA's peak allocated memory
    during them (weights included), ``None`` on the CPU, whose allocator keeps no statistics."""

    median_s: float
    min_s: float
    repeats: int
    peak_bytes: int | None


def time_call(fn: Callable[[], object], device: torch.device, repeats: int, warmups: int = 1) -> Timing:
    """Call ``fn`` ``warmups`` times untimed, then ``repeats`` times timed.

    On CUDA each call is timed by events recorded around it on the current stream and waited
    for, so the time is the GPU's, queued work included; on the CPU by ``time.perf_counter``.
    The median is the figure to report; the minimum is kept because on a shared machine it is
    the least disturbed one.
    """
    if repeats < 1:
        raise ValueError(f"repeats must be >= 1, got {repeats}")
    for _ in range(warmups):
        fn()
    times = []
    if device.type == "cuda":
        torch.cuda.synchronize(device)
        torch.cuda.reset_peak_memory_stats(device)
        for _ in range(repeats):
            start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
            start.record()
            fn()
            end.record()
            end.synchronize()
            times.append(start.elapsed_time(end) / 1e3)
        peak = torch.cuda.max_memory_allocated(device)
    else:
        for _ in range(repeats):
            start_s = time.perf_counter()
            fn()
            times.append(time.perf_counter() - start_s)
        peak = None
    return Timing(statistics.median(times), min(times), repeats, peak)


def release(device: torch.device) -> None:
    """Return cached CUDA memory between measurements, so that one's peak does not include another's cache."""
    if device.type == "cuda":
        torch.cuda.synchronize(device)
        torch.cuda.empty_cache()
