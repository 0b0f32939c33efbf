"""The worker side of ``benchmark verify``: a fresh process that verifies the benchmark's tenant as a Celery worker
would, so that its resident set is what a worker holds, not what the benchmark process gathered generating data
and migrating the scratch database.

Started by ``onboarding.bench.verify_timing.worker_side`` as ``python -m onboarding.bench.verify_worker TENANT_ID REPEAT``
with ``DATABASE_URL`` (the scratch database), ``CONNECTWISE_SANDBOX_URL`` and ``CONNECTWISE_MAX_IN_FLIGHT`` in its
environment (and ``VERIFY_WORKER_AS_DEPLOYED=1`` to import only what the deployed image installs:
``onboarding.bench.deployed``). It loads Django and the product's task modules (as ``celery worker`` does), runs
``REPEAT`` verifies of the six required steps through ``runs.run_now`` while sampling its resident set every 5 ms,
and prints one JSON object: ``rss_loaded_mb`` (before the first verify), ``rss_peak_mb``, ``wall_s`` and ``cpu_s`` per verify (lists),
``statuses``, ``api_calls`` and ``hidden_modules`` (how many top-level modules were hidden, 0 when none).
"""

from __future__ import annotations

import json
import os
import sys
import time

import django


def main(argv: list[str]) -> dict:
    """Verify tenant ``argv[0]`` ``argv[1]`` times; returns the figures (see the module docstring)."""
    hidden = 0
    if os.environ.get("VERIFY_WORKER_AS_DEPLOYED") == "1":
        from onboarding.bench.deployed import hide_undeployed  # noqa: PLC0415

        hidden = len(hide_undeployed())
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "onboarding.settings")
    django.setup()
    # After django.setup(): models cannot be imported before the app registry is ready.
    from onboarding import tasks  # noqa: F401, PLC0415 - loaded as a worker loads it
    from onboarding.bench.measure import RssSampler, rss_now_mb  # noqa: PLC0415
    from onboarding.bench.verify_timing import SIX_STEPS  # noqa: PLC0415
    from onboarding.models import CheckRun, Tenant  # noqa: PLC0415
    from onboarding.runs import run_now  # noqa: PLC0415

    tenant_id, repeat = int(argv[0]), max(1, int(argv[1]))
    loaded = rss_now_mb()
    walls, cpus, statuses, calls = [], [], [], []
    with RssSampler() as rss:
        for _ in range(repeat):
            tenant = Tenant.objects.select_related("connection").get(pk=tenant_id)
            cpu, started = time.process_time(), time.perf_counter()
            run = run_now(tenant, trigger=CheckRun.Trigger.CLI, steps=SIX_STEPS)
            walls.append(round(time.perf_counter() - started, 3))
            cpus.append(round(time.process_time() - cpu, 3))
            statuses.append(run.status)
            calls.append(run.api_calls)
    return {
        "hidden_modules": hidden,
        "rss_loaded_mb": round(loaded, 1),
        "rss_peak_mb": round(rss.peak_mb, 1),
        "wall_s": walls,
        "cpu_s": cpus,
        "statuses": statuses,
        "api_calls": calls,
    }


if __name__ == "__main__":
    print(json.dumps(main(sys.argv[1:])))
