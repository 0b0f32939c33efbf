"""Keep a worker's resident memory close to what it uses.

A verify fans out over a few dozen threads (the client's pages, the run's reads). glibc's malloc gives threads
their own arenas (up to eight per core), and memory freed in one arena is not reused by another, so a worker's
resident set grows well past what Python holds: ``benchmark verify`` measured a peak of 175 MB with the default
and 145 MB with two arenas, for a tracemalloc peak of 38 MB. ``limit_malloc_arenas`` asks glibc for at most two
arenas, as the ``MALLOC_ARENA_MAX=2`` environment variable would, unless the operator set that variable.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import os
import sys

M_ARENA_MAX = -8  # glibc's mallopt parameter number (malloc.h)
DEFAULT_ARENAS = 2


def limit_malloc_arenas(arenas: int = DEFAULT_ARENAS) -> bool:
    """Call glibc's ``mallopt(M_ARENA_MAX, arenas)`` early in a process (before it starts threads). Returns True
    when applied; False on other platforms or C libraries, or when ``MALLOC_ARENA_MAX`` is set (glibc applies
    the operator's value itself). Never raises."""
    if not sys.platform.startswith("linux") or os.environ.get("MALLOC_ARENA_MAX"):
        return False
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        mallopt = libc.mallopt
    except (OSError, AttributeError):
        return False  # not glibc (musl has no per-thread arenas to limit)
    mallopt.argtypes = [ctypes.c_int, ctypes.c_int]
    mallopt.restype = ctypes.c_int
    return mallopt(M_ARENA_MAX, max(1, int(arenas))) == 1
