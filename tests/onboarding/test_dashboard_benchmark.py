"""``manage.py benchmark dashboard``: runs in its own scratch database and reports query counts and times; the
dispatcher names benchmarks that are not part of the build."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from django.core.management import CommandError, call_command

from onboarding.management.commands import benchmark

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.slow
def test_the_dashboard_benchmark_reports_bounded_queries_without_touching_the_main_database(tmp_path):
    env = {**os.environ, "ONBOARDING_VAR_DIR": str(tmp_path)}
    env.pop("DATABASE_URL", None)
    command = [
        sys.executable,
        "manage.py",
        "benchmark",
        "dashboard",
        "--tenants",
        "40",
        "--runs-per-tenant",
        "2",
        "--retention-tenants",
        "3",
        "--retention-days",
        "150",
    ]
    done = subprocess.run(
        [*command, "--repeat", "2", "--json"], cwd=ROOT, env=env, capture_output=True, text=True
    )
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout)
    assert result["benchmark"] == "dashboard" and result["tenants"] == 40
    assert result["rows"]["tenants"] == 40 and result["rows"]["step_results"] == 6 * result["rows"]["runs"]
    pages = {p["page"]: p for p in result["pages"]}
    assert set(pages) >= {"dashboard list", "filtered list", "tenant page", "csv export (all)"}
    assert all(0 < p["queries"] <= 10 and p["median_ms"] > 0 for p in pages.values())
    # A simulated history of 150 daily runs for 3 tenants, pruned to 90 days: the window and the changes stay.
    history = result["retention"]
    assert history["before"] == {"runs": 450, "step_results": 2700}
    assert 3 * 90 <= history["after"]["runs"] < 450 and history["deleted"]["runs"] > 0
    assert history["after"]["runs"] + history["deleted"]["runs"] == 450
    assert history["after"]["step_results"] == 6 * history["after"]["runs"]
    # The scratch database is gone, and the main one (var/onboarding.sqlite3 here) was never created.
    assert (
        not (tmp_path / "onboarding.sqlite3").exists()
        or (tmp_path / "onboarding.sqlite3").stat().st_size == 0
    )
    # Without --json: a table for people.
    table = subprocess.run([*command, "--repeat", "1"], cwd=ROOT, env=env, capture_output=True, text=True)
    assert table.returncode == 0, table.stderr
    assert "dashboard list" in table.stdout and "queries" in table.stdout


def test_a_missing_benchmark_is_named_clearly(monkeypatch):
    real = benchmark._load
    monkeypatch.setattr(benchmark, "_load", lambda name: None if name == "soak" else real(name))
    with pytest.raises(CommandError, match=r"'soak' benchmark is not available .*onboarding/bench/soak.py"):
        call_command("benchmark", "soak")


def test_the_dispatcher_runs_a_plugged_in_benchmark(monkeypatch, capsys):
    class Fake:
        """A fake benchmark."""

        @staticmethod
        def add_arguments(parser):
            parser.add_argument("--size", type=int, default=1)

        @staticmethod
        def run(options):
            return {"benchmark": "soak", "size": options["size"]}

        @staticmethod
        def print_table(result):
            print(f"size {result['size']}")

    real = benchmark._load
    monkeypatch.setattr(benchmark, "_load", lambda name: Fake if name == "soak" else real(name))
    call_command("benchmark", "soak", "--size", "3", "--json")
    assert json.loads(capsys.readouterr().out) == {"benchmark": "soak", "size": 3}
    call_command("benchmark", "soak", "--size", "4")
    assert capsys.readouterr().out.strip() == "size 4"
