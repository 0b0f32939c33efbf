"""Keep a worker's resident memory close to what it uses.

A verify fans out over a few dozen threads (the client's pages, the run's reads). glibc's malloc gives threads
their own arenas (up to eight per core), and memory freed in one arena is not reused by another, so a worker's
resident set grows well past what Python holds: ``benchmark verify`` measured a peak of 175 MB with the default
and 145 MB with two arenas, for a tracemalloc peak of 38 MB. ``limit_malloc_arenas`` asks glibc for at most two
arenas, as the ``MALLOC_ARENA_MAX=2`` environment variable would, unless the operator set that variable.

A large block (over 128 KiB: a page of 1,000 records is about 290 KB as text) is mapped on its own and unmapped
when freed, but glibc raises that threshold to the size of each such block freed (mallopt(3), "M_MMAP_THRESHOLD":
the dynamic threshold). After one verify, the next one's pages and lists come from the heap, where a freed block
between live ones stays resident: the worker grew by about 5 MB over five verifies. ``fix_malloc_thresholds``
fixes the threshold (and the trim threshold) at glibc's initial 128 KiB, which turns the dynamic raise off.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import os
import sys

M_TRIM_THRESHOLD = -1  # glibc's mallopt parameter numbers (malloc.h)
M_MMAP_THRESHOLD = -3
M_ARENA_MAX = -8
DEFAULT_ARENAS = 2
DEFAULT_THRESHOLD = 128 * 1024  # bytes: glibc's initial M_MMAP_THRESHOLD and M_TRIM_THRESHOLD


def limit_malloc_arenas(arenas: int = DEFAULT_ARENAS) -> bool:
    """Call glibc's ``mallopt(M_ARENA_MAX, arenas)`` early in a process (before it starts threads). Returns True
    when applied; False on other platforms or C libraries, or when ``MALLOC_ARENA_MAX`` is set (glibc applies
    the operator's value itself). Never raises."""
    if os.environ.get("MALLOC_ARENA_MAX"):
        return False
    mallopt = _mallopt()
    return mallopt is not None and mallopt(M_ARENA_MAX, max(1, int(arenas))) == 1


def fix_malloc_thresholds(threshold: int = DEFAULT_THRESHOLD) -> bool:
    """Call glibc's ``mallopt`` for ``M_MMAP_THRESHOLD`` and ``M_TRIM_THRESHOLD`` (``threshold`` bytes each),
    which stops glibc from raising them as large blocks are freed. Returns True when both were applied; False on
    other platforms or C libraries, or when ``MALLOC_MMAP_THRESHOLD_`` or ``MALLOC_TRIM_THRESHOLD_`` is set
    (glibc applies the operator's values itself). Never raises."""
    if os.environ.get("MALLOC_MMAP_THRESHOLD_") or os.environ.get("MALLOC_TRIM_THRESHOLD_"):
        return False
    mallopt = _mallopt()
    if mallopt is None:
        return False
    size = max(0, int(threshold))
    return mallopt(M_MMAP_THRESHOLD, size) == 1 and mallopt(M_TRIM_THRESHOLD, size) == 1


def _mallopt():
    """glibc's ``mallopt`` with its C signature, or None (not Linux, or not glibc)."""
    if not sys.platform.startswith("linux"):
        return None
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        mallopt = libc.mallopt
    except (OSError, AttributeError):
        return None  # not glibc (musl has no per-thread arenas or dynamic thresholds to fix)
    mallopt.argtypes = [ctypes.c_int, ctypes.c_int]
    mallopt.restype = ctypes.c_int
    return mallopt
