"""onboarding.memory: at most two malloc arenas in worker processes, unless the operator chose a number."""

from __future__ import annotations

import subprocess
import sys

import pytest

from onboarding import memory


def test_an_operator_setting_is_left_to_glibc(monkeypatch):
    monkeypatch.setenv("MALLOC_ARENA_MAX", "4")
    assert memory.limit_malloc_arenas() is False


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc's mallopt")
def test_glibc_takes_the_limit_in_a_process_that_loaded_the_celery_app():
    code = "import onboarding.celery, onboarding.memory as m; print(m.limit_malloc_arenas())"
    env = {k: v for k, v in __import__("os").environ.items() if k != "MALLOC_ARENA_MAX"}
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=60)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "True"


def test_an_operator_mmap_threshold_is_left_to_glibc(monkeypatch):
    monkeypatch.setenv("MALLOC_MMAP_THRESHOLD_", "262144")
    assert memory.fix_malloc_thresholds() is False


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc's mallopt")
def test_glibc_takes_fixed_thresholds_in_a_process_that_loaded_the_celery_app():
    code = "import onboarding.celery, onboarding.memory as m; print(m.fix_malloc_thresholds())"
    env = {
        k: v
        for k, v in __import__("os").environ.items()
        if k not in ("MALLOC_MMAP_THRESHOLD_", "MALLOC_TRIM_THRESHOLD_")
    }
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=60)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "True"


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc's malloc")
def test_large_blocks_freed_between_live_ones_go_back_to_the_system():
    # Pages of about 290 KB (1,000 records): after a first verify freed its pages, glibc's dynamic threshold
    # would serve the next ones from the heap, where the freed ones between live ones stay resident.
    code = (
        "import ctypes, ctypes.util, onboarding.memory as m\n"
        "m.fix_malloc_thresholds()\n"
        "libc = ctypes.CDLL(ctypes.util.find_library('c'))\n"
        "libc.malloc.restype = ctypes.c_void_p; libc.free.argtypes = [ctypes.c_void_p]\n"
        "def rss(): return int(open('/proc/self/statm').read().split()[1]) * 4096 // 1024\n"
        "def pages(size):\n"
        "    blocks = [libc.malloc(size) for _ in range(64)]\n"
        "    for b in blocks: ctypes.memset(b, 1, size)\n"
        "    for b in blocks[::2]: libc.free(b)\n"
        "    return blocks[1::2]\n"
        "before = rss()\n"
        "for b in pages(300_000): libc.free(b)\n"
        "live = pages(290_000)\n"
        "print(rss() - before - 32 * 290_000 // 1024)\n"
    )
    env = {
        k: v
        for k, v in __import__("os").environ.items()
        if k not in ("MALLOC_MMAP_THRESHOLD_", "MALLOC_TRIM_THRESHOLD_")
    }
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=60)
    assert done.returncode == 0, done.stderr
    assert int(done.stdout.strip()) < 2_000  # KB resident beyond the live blocks
