"""The process's host memory allocator: keep freed memory for reuse instead of returning it.

With glibc's default settings every block above the mmap threshold (at most 32 MiB after its
dynamic adjustment) is a fresh ``mmap``, page-faulted and zeroed on first touch and unmapped
on ``free``. A 10-coil slice of k-space, a batch's activations on the CPU, every slice read
from a .mat file are all larger, so each one pays for page faults again; on the CPU this made
GENRE-CMR 2.3× slower and larger batches slower per frame than batch 1 (docs/benchmarks.md).
Raising the mmap and trim thresholds serves those blocks from the heap and keeps freed memory
for the next one. The price is resident memory that is not handed back to the system between
cases (bounded by the largest working set), which a batch job does not mind.

Only the entry points call :func:`keep_freed_memory` (the ``genre`` command, ``predict.py``,
the speed benchmark): a library does not change its host process's allocator.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import logging
import os
import platform

log = logging.getLogger(__name__)

# mallopt() parameters, from glibc's <malloc.h>.
M_TRIM_THRESHOLD = -1
M_MMAP_THRESHOLD = -3
#: mallopt() takes an int: the largest threshold it can set (2 GiB).
THRESHOLD_BYTES = 2**31 - 1
#: glibc's own variables for the same settings; when the user has set either, theirs stand.
USER_SETTINGS = ("MALLOC_MMAP_THRESHOLD_", "MALLOC_TRIM_THRESHOLD_", "GLIBC_TUNABLES")


def keep_freed_memory() -> bool:
    """Raise glibc's mmap and trim thresholds to 2 GiB for this process; whether it was done.

    Nothing is done on a C library other than glibc, or when the environment already sets
    glibc's allocator variables (``MALLOC_MMAP_THRESHOLD_``, ``MALLOC_TRIM_THRESHOLD_``,
    ``GLIBC_TUNABLES``), so ``MALLOC_MMAP_THRESHOLD_=131072`` restores the default behaviour.
    """
    if any(name in os.environ for name in USER_SETTINGS):
        return False
    if platform.system() != "Linux" or platform.libc_ver()[0] != "glibc":
        return False
    libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
    done = all(libc.mallopt(ctypes.c_int(param), ctypes.c_int(THRESHOLD_BYTES)) == 1
               for param in (M_MMAP_THRESHOLD, M_TRIM_THRESHOLD))
    if not done:
        log.debug("glibc refused the allocator thresholds; keeping its defaults")
    return done
