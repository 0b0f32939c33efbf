"""python manage.py cw_sandbox: a bad scenario exits non-zero with the JSON path of the first problem."""

from __future__ import annotations

import json

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError


def test_a_bad_scenario_is_refused_with_its_json_path(tmp_path):
    path = tmp_path / "bad.json"
    path.write_text(
        json.dumps({"company": {"id": "x", "name": "X"}, "records": {"finance/agreements": [{}]}})
    )
    with pytest.raises(CommandError, match=r'\$\.records\["finance/agreements"\]\[0\]\.id: required'):
        call_command("cw_sandbox", "--port", "0", "--scenario", str(path))


def test_the_same_company_twice_is_refused(tmp_path):
    from .conftest import SCENARIOS

    healthy = str(SCENARIOS / "healthy.json")
    with pytest.raises(CommandError, match="served twice"):
        call_command("cw_sandbox", "--port", "0", "--scenario", healthy, "--scenario", healthy)


@pytest.mark.slow
def test_it_serves_prints_the_companies_and_stops_cleanly_on_ctrl_c():
    import signal
    import subprocess
    import sys
    from pathlib import Path

    import httpx

    from .conftest import SCENARIOS

    root = Path(__file__).resolve().parents[3]
    process = subprocess.Popen(
        [
            sys.executable,
            "manage.py",
            "cw_sandbox",
            "--port",
            "0",
            "--scenario",
            str(SCENARIOS / "healthy.json"),
        ],
        cwd=root,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        first = process.stdout.readline()
        assert first.startswith("ConnectWise sandbox at http://127.0.0.1:")
        url = first.split()[3].rstrip("/")
        assert "acme" in process.stdout.readline()
        assert httpx.get(f"{url}/_sandbox/").json()["companies"][0]["id"] == "acme"
    finally:
        process.send_signal(signal.SIGINT)
        out, err = process.communicate(timeout=10)
    assert process.returncode == 0, err
    assert "Sandbox stopped." in out
