"""scripts/: ensure_chromium.py and ensure_caddy.py share one helper (scripts/debian_package.py) and keep their
messages and exit codes: present -> 0; missing as root -> apt-get install; missing under CI -> 1."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

SCRIPTS = Path(__file__).resolve().parents[1] / "scripts"
sys.path.insert(0, str(SCRIPTS))

import debian_package  # noqa: E402


def _ensure(**kw):
    return debian_package.ensure(
        "chromium", kw.pop("present"), missing="Chromium not found at /x", purpose="the browser tests",
        skipped="Browser tests", **kw,
    )  # fmt: skip


def test_present_is_ok_and_installs_nothing(monkeypatch):
    monkeypatch.setattr(subprocess, "run", lambda *a, **k: pytest.fail("apt-get ran"))
    assert _ensure(present=lambda: True) == 0


@pytest.mark.parametrize(("ci", "code", "level"), [("true", 1, "ERROR"), ("", 0, "WARNING")])
def test_missing_without_root_fails_under_ci_and_warns_elsewhere(monkeypatch, capsys, ci, code, level):
    monkeypatch.setenv("CI", ci)
    monkeypatch.setattr(debian_package.os, "geteuid", lambda: 1000)
    monkeypatch.setattr(subprocess, "run", lambda *a, **k: pytest.fail("apt-get ran"))
    assert _ensure(present=lambda: False) == code
    err = capsys.readouterr().err
    assert err.startswith(
        f"{level}: Chromium not found at /x: install it with `sudo apt-get install -y chromium`."
    )


def test_missing_as_root_is_installed_with_apt_get(monkeypatch):
    calls, installed = [], []
    monkeypatch.setattr(debian_package.os, "geteuid", lambda: 0)
    monkeypatch.setattr(debian_package.shutil, "which", lambda name: "/usr/bin/apt-get")

    def run(argv, **kwargs):
        calls.append(argv)
        if "install" in argv:
            installed.append(argv[-1])
        return subprocess.CompletedProcess(argv, 0)

    monkeypatch.setattr(subprocess, "run", run)
    assert _ensure(present=lambda: bool(installed)) == 0
    assert calls == [["apt-get", "update", "-qq"], ["apt-get", "install", "-y", "-qq", "chromium"]]


@pytest.mark.parametrize("script", ["ensure_caddy.py", "ensure_chromium.py"])
def test_both_scripts_run_as_make_runs_them(script):
    done = subprocess.run(
        [sys.executable, str(SCRIPTS / script)], capture_output=True, text=True, timeout=600
    )
    assert done.returncode == 0, done.stderr
