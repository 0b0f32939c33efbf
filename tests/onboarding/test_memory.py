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
