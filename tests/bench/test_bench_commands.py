"""``manage.py benchmark verify`` and ``benchmark soak`` at tiny sizes: they run in a scratch database, print
one JSON object with --json (a table without), and the figures that do not depend on the machine hold."""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def benchmark(tmp_path, *args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "ONBOARDING_VAR_DIR": str(tmp_path)}
    env.pop("DATABASE_URL", None)  # a temporary SQLite file; the benchmarks never touch the main database
    return subprocess.run(
        [sys.executable, "manage.py", "benchmark", *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )


@pytest.mark.slow
def test_verify_makes_the_calls_its_data_needs_and_no_more(tmp_path):
    done = benchmark(
        tmp_path,
        "verify",
        *("--companies", "1100", "--agreements", "2200", "--latency-ms", "100", "--repeat", "2"),
        *("--small-companies", "5", "--small-runs", "3", "--json"),
    )
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout)
    large = result["large"]
    assert large["run_status"] == "done" and large["ready"] is True
    # Pages of 1000 records: 2 of companies, 3 of agreements (two per company, so every company is mapped); the constant is discovery, system/info, a /count
    # per paged resource and one GET per small table (ten of them).
    assert large["paged_resources"] == {
        "company/companies": {"records": 1100, "pages": math.ceil(1100 / 1000)},
        "finance/agreements": {"records": 2200, "pages": math.ceil(2200 / 1000)},
    }
    assert large["needed_pages"] == 5 and large["call_constant"] == 2 + 2 + len(large["small_resources"])
    assert large["needed_calls"] == large["needed_pages"] + large["call_constant"]
    assert large["api_calls"] == large["served_requests"] <= large["needed_calls"]
    assert large["api_retries"] == 0 and result["met"]["calls"] is True
    # existing_billing's own read, reported apart: one call per (active, top-level) agreement of a chosen company
    assert 0 < large["existing_billing_calls"] <= 2200
    # One wave of every call once the codebase and the counts are known; 19 calls, 32 in flight: one level.
    assert large["max_in_flight"] == 32
    assert large["chain_levels"] == 1 and large["chain_bound_s"] == pytest.approx(0.1)
    assert large["wall_s"] >= large["chain_bound_s"] and large["ratio"] >= 1
    # Observed levels: a verify held up for a whole round trip by a busy machine would show 2, never fewer than 1.
    assert min(large["levels_samples"]) == 1 and large["old_levels"] == 4
    assert large["round_trips"] >= 1 and large["ratio_old_bound"] > 0
    assert 0 < large["cpu_s"] and large["sandbox_cpu_s"] is not None and large["noisy"] is None
    assert 0 < large["tracemalloc_peak_mb"] < 200
    # The worker's memory as deployed (the test extras hidden), and as this virtualenv would load it.
    worker = large["worker"]
    assert worker["hidden_modules"] > 0 and worker["statuses"] == ["done", "done"]
    assert worker["dev_venv"]["hidden_modules"] == 0 and worker["dev_venv"]["statuses"] == ["done", "done"]
    assert worker["rss_loaded_mb"] < worker["dev_venv"]["rss_loaded_mb"]
    small = result["small"]
    assert small["runs"] == 3 and small["statuses"] == ["done"] and small["verifications_per_s"] > 0

    table = benchmark(
        tmp_path,
        "verify",
        *("--companies", "10", "--agreements", "10", "--latency-ms", "0", "--repeat", "1"),
        *("--small-companies", "3", "--small-runs", "1", "--max-in-flight", "8"),
    )
    assert table.returncode == 0, table.stderr
    # 16 calls (one page each), 8 in flight: the wave takes two levels.
    assert "(16 calls, 8 in flight: 2 levels)" in table.stdout
    assert "minimum the data needs" in table.stdout and "ratio wall / bound" in table.stdout
    assert "levels observed" in table.stdout and "product CPU per verify" in table.stdout


@pytest.mark.slow
def test_soak_ends_every_run_and_plan_and_creates_nothing_twice(tmp_path):
    done = benchmark(tmp_path, "soak", "--runs", "2", "--fault-rate", "0.3", "--seed", "7", "--json")
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout)
    assert result["verifications"] == 6 and result["faults_injected"] > 0  # 3 tenants, 2 cycles
    assert result["runs_not_final"] == 0 and set(result["runs_by_status"]) <= {"done", "error"}
    assert result["outcomes"]["wrong"] == 0 and result["crashed"] == 0, result["wrong_runs"]
    assert result["outcomes"]["same"] + result["outcomes"]["error"] == 6
    # Under 30% faults a plan may still end failed after its re-applies (with a clear error): what must hold is
    # that every plan ends final, most are applied, and nothing is ever created twice.
    assert result["plans"] > 0 and result["plans_not_final"] == 0
    assert result["plans_applied"] + result["plans_failed"] == result["plans"]
    assert result["plans_applied"] >= result["plans"] // 2
    assert result["creates"] > 0 and result["duplicates_found"] == 0, result["duplicates"]
    # Issue 18: the onboarding tenant's combined plan (200 creates per cycle) never gives a company two agreements.
    assert result["onboard_companies"] == 200 and result["agreement_duplicates"] == 0
    assert 0 < result["onboard_agreements_created"] <= 2 * 200


def test_the_benchmarks_refuse_nonsense_sizes(tmp_path):
    done = benchmark(tmp_path, "soak", "--runs", "0")
    assert done.returncode != 0 and "--runs must be at least 1" in done.stderr


def _fleet(tmp_path, workers: int) -> dict:
    env_redis = os.environ["REDIS_URL"]
    done = subprocess.run(
        [sys.executable, "manage.py", "benchmark", "fleet", "--json"]
        + ["--tenants", "24", "--workers", str(workers), "--concurrency", "1", "--latency-ms", "100"]
        + ["--max-per-host", "6", "--max-in-flight", "4"],
        cwd=ROOT,
        env={
            **{k: v for k, v in os.environ.items() if k != "DATABASE_URL"},  # a temporary SQLite file
            "ONBOARDING_VAR_DIR": str(tmp_path),
            "REDIS_URL": env_redis,
        },
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(done.stdout)


@pytest.mark.slow
@pytest.mark.skipif(
    not os.environ.get("REDIS_URL"), reason="real Celery workers need REDIS_URL (a real Redis)"
)
def test_a_fleet_of_workers_shares_the_per_host_cap_and_verifies_faster(tmp_path):
    """Each tenant may have 4 calls in flight; two workers would send 8 at once, the shared cap allows 6."""
    one, two = _fleet(tmp_path, 1), _fleet(tmp_path, 2)
    for result in (one, two):
        assert result["statuses"] == {"done": 24} and result["worker_log_errors"] == 0
        assert result["peak_calls_per_host"] <= 6 and result["met"]["cap"] is True
    assert one["peak_calls_per_host"] <= 4  # one worker, one task at a time: the tenant's own bound
    assert two["peak_calls_per_host"] > 4  # two tenants at once did run together, and stopped at the cap
    assert two["verifications_per_minute"] > 1.3 * one["verifications_per_minute"]
