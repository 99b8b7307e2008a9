"""The entry points' allocator setting: large blocks come from the heap and stay there for reuse."""

import platform
import subprocess
import sys

import pytest

from genre import allocator

glibc = pytest.mark.skipif(platform.libc_ver()[0] != "glibc", reason="the setting is glibc's")

# Bytes glibc holds in mmap-ed blocks while a 64 MiB array is alive (mallinfo2().hblkhd).
PROBE = """
import ctypes, sys
import numpy as np
from genre.allocator import keep_freed_memory

class MallInfo2(ctypes.Structure):
    _fields_ = [(name, ctypes.c_size_t) for name in
                ("arena", "ordblks", "smblks", "hblks", "hblkhd", "usmblks", "fsmblks", "uordblks", "fordblks", "keepcost")]

libc = ctypes.CDLL("libc.so.6")
libc.mallinfo2.restype = MallInfo2
applied = keep_freed_memory() if sys.argv[1] == "keep" else False
block = np.ones(64 << 20, np.uint8)
print(int(applied), libc.mallinfo2().hblkhd)
"""


def _probe(how: str, **env) -> tuple[bool, int]:
    out = subprocess.run([sys.executable, "-c", PROBE, how], capture_output=True, text=True, check=True,
                         env={"PATH": "", **env}).stdout.split()
    return bool(int(out[0])), int(out[1])


@glibc
def test_large_blocks_come_from_the_heap_once_set():
    applied, mapped = _probe("keep")
    assert applied and mapped < 64 << 20
    applied, mapped = _probe("default")
    assert not applied and mapped >= 64 << 20  # what the setting is for: glibc's default maps it


@glibc
def test_the_users_own_malloc_variables_stand():
    applied, mapped = _probe("keep", MALLOC_MMAP_THRESHOLD_="131072")
    assert not applied and mapped >= 64 << 20


def test_nothing_is_done_when_the_environment_sets_it(monkeypatch):
    monkeypatch.setenv("GLIBC_TUNABLES", "glibc.malloc.mmap_threshold=131072")
    assert allocator.keep_freed_memory() is False
