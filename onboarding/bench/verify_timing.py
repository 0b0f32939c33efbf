"""``benchmark verify``'s timed runs: verifies of the six required steps through ``onboarding.runs.run_now`` with
the time spent storing the results measured apart from the checks, the product's CPU time and the round-trip
levels the client observed (``timed_repeats``); the same verifies in a fresh worker-like process
(``worker_side``); a profile of one verify (``profile_verify``)."""

from __future__ import annotations

import cProfile
import json
import os
import pstats
import statistics
import subprocess
import sys
import time
from contextlib import contextmanager

from django.conf import settings

from connectwise.checks.registry import READINESS_KEYS

from .. import runs
from ..models import CheckRun, Tenant
from . import database_url
from .measure import load_average

# The measured verifies run the six steps that decide readiness, by name (existing_billing is measured apart).
SIX_STEPS = list(READINESS_KEYS)
OLD_LEVELS = (
    4  # before the read hints: companyinfo -> system/info -> /count, page 1, small tables -> pages 2..n
)


def worker_side(tenant: Tenant, url: str, in_flight: int, repeat: int, *, deployed: bool = True) -> dict:
    """``repeat`` verifies of ``tenant`` in a fresh worker-like process (``onboarding.bench.verify_worker``) on the
    same database and sandbox; returns its figures (resident set loaded and at peak, wall and CPU per verify).
    ``deployed``: the process imports only what the deployed image installs (``onboarding.bench.deployed``), not
    the test extras of this virtualenv."""
    env = {
        **os.environ,
        "VERIFY_WORKER_AS_DEPLOYED": "1" if deployed else "0",
        "DATABASE_URL": database_url(),
        "CONNECTWISE_SANDBOX_URL": url,
        "CONNECTWISE_MAX_IN_FLIGHT": str(in_flight),
        "ONBOARDING_VAR_DIR": str(settings.VAR_DIR),  # the same encryption key for the stored private key
    }
    done = subprocess.run(
        [sys.executable, "-m", "onboarding.bench.verify_worker", str(tenant.pk), str(max(1, repeat))],
        cwd=settings.BASE_DIR,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    if done.returncode != 0:
        raise RuntimeError(f"the worker-side verify failed: {done.stderr[-1500:]}")
    figures = json.loads(done.stdout.strip().splitlines()[-1])
    figures["wall_median_s"] = statistics.median(figures["wall_s"])
    figures["cpu_median_s"] = statistics.median(figures["cpu_s"])
    return figures


@contextmanager
def _timed_phase(store: dict, name: str):
    started = time.perf_counter()
    try:
        yield
    finally:
        store[name] = store.get(name, 0.0) + (time.perf_counter() - started)


def _instrumented_verify(tenant: Tenant) -> tuple[CheckRun, dict]:
    """run_now, with the time spent storing the results (runs.finish) measured apart from the checks, the
    process's CPU time, and the round-trip levels the client observed (``CallStats.levels``)."""
    phases: dict[str, float] = {}
    real_finish, real_client_for = runs.finish, runs.client_for
    clients = []

    def finish(*args, **kwargs):
        with _timed_phase(phases, "store_s"):
            return real_finish(*args, **kwargs)

    def client_for(*args, **kwargs):
        clients.append(real_client_for(*args, **kwargs))
        return clients[-1]

    runs.finish, runs.client_for = finish, client_for
    try:
        tenant = Tenant.objects.select_related("connection").get(pk=tenant.pk)  # the stored hints, fresh
        cpu = time.process_time()
        started = time.perf_counter()
        run = runs.run_now(tenant, trigger=CheckRun.Trigger.CLI, steps=SIX_STEPS)
        phases["wall_s"] = time.perf_counter() - started
        phases["cpu_s"] = time.process_time() - cpu
    finally:
        runs.finish, runs.client_for = real_finish, real_client_for
    phases["checks_s"] = phases["wall_s"] - phases.get("store_s", 0.0)
    phases["levels"] = clients[-1].stats.levels() if clients else 0
    return run, phases


def timed_repeats(tenant: Tenant, sandbox, repeat: int, latency_ms: int) -> dict:
    """``repeat`` verifies of ``tenant`` against ``sandbox`` (a ``SandboxProcess`` or ``SandboxApp``) answering
    after ``latency_ms``; medians (seconds) of wall, checks, storing, product CPU; levels seen; sandbox CPU apart."""
    samples, run = [], None
    sandbox_cpu = getattr(sandbox, "cpu_seconds", None)
    sandbox_before = sandbox_cpu() if sandbox_cpu else None
    load_before = load_average()
    for _ in range(max(1, repeat)):
        sandbox.clear_requests()
        run, phases = _instrumented_verify(tenant)
        samples.append(phases)
    sandbox_s = (sandbox_cpu() - sandbox_before) / len(samples) if sandbox_cpu else None
    wall = statistics.median(s["wall_s"] for s in samples)
    rt = latency_ms / 1000.0
    return {
        "run": run,
        "wall_s": round(wall, 3),
        "checks_s": round(statistics.median(s["checks_s"] for s in samples), 3),
        "store_s": round(statistics.median(s.get("store_s", 0.0) for s in samples), 3),
        "cpu_s": round(statistics.median(s["cpu_s"] for s in samples), 3),
        "levels": max(s["levels"] for s in samples),
        "levels_samples": [s["levels"] for s in samples],
        "wall_samples_s": [round(s["wall_s"], 3) for s in samples],
        "cpu_samples_s": [round(s["cpu_s"], 3) for s in samples],
        "sandbox_cpu_s": round(sandbox_s, 3) if sandbox_s is not None else None,
        "round_trips": round(wall / rt, 2) if rt else None,
        "ratio_old_bound": round(wall / (OLD_LEVELS * rt), 2) if rt else None,
        "load_before": load_before,
        "load_after": load_average(),
    }


def profile_verify(tenant: Tenant, top: int = 15) -> list[dict]:
    """cProfile of one verify (latency on): the functions with the most own time, for the notes."""
    profiler = cProfile.Profile()
    profiler.enable()
    try:
        runs.run_now(
            Tenant.objects.select_related("connection").get(pk=tenant.pk),
            trigger=CheckRun.Trigger.CLI,
            steps=SIX_STEPS,
        )
    finally:
        profiler.disable()
    stats = pstats.Stats(profiler)
    rows = []
    for (filename, line, name), (_cc, calls, own, cumulative, _callers) in stats.stats.items():  # type: ignore[attr-defined]
        rows.append(
            {
                "function": f"{os.path.relpath(filename, settings.BASE_DIR) if filename.startswith(str(settings.BASE_DIR)) else os.path.basename(filename)}:{line}({name})",
                "calls": calls,
                "own_s": round(own, 4),
                "cumulative_s": round(cumulative, 4),
            }
        )
    rows.sort(key=lambda r: r["own_s"], reverse=True)
    return rows[:top]
