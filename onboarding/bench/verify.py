"""``manage.py benchmark verify``: API cost, latency, memory and throughput of a full verification.

Generates a healthy tenant (``connectwise.sandbox.generate_scenario``), serves it on a real port from a thread
(``serve_in_thread``, one thread per connection) with the requested latency on every answer, creates a scratch
tenant whose connection points at it with every company chosen (monthly), and runs full verifications through
``onboarding.runs.run_now``: the code path of the background job (start_run, claim, execute_run, finish).

Reported against the targets of PRODUCT.md:

- API calls vs the minimum the data needs: one call per page of 1,000 records of each paged resource, plus a
  constant (discovery, system/info, one ``/count`` per paged resource, one GET per small table).
- Wall time vs the longest chain of dependent calls times the latency. The chain is counted from the runner's
  structure: ``companyinfo`` -> ``system/info`` (the connection step) -> one concurrent wave of ``/count`` and
  page 1 of every paged resource together with the single GET of every small table -> the remaining pages of the
  paged resources, concurrently. Four levels when some resource spans more than one page.
- Peak memory of a worker: the same verifies repeated in a fresh process (``verify_worker``) that loads Django and
  the product as a Celery worker does and nothing else, importing only what the deployed image installs
  (``deployed``: this virtualenv's test extras are hidden), its resident set sampled from /proc every 5 ms (the
  target applies to this; the same process with the test extras importable is printed too). The benchmark
  process's own peak is printed too (it also migrated the scratch database and created the tenant), with tracemalloc's peak of new allocations of one verify (a separate run, since tracing
  slows Python down). Every measured verify runs the six required steps by name; existing_billing (a read per
  agreement) is run last and reported apart.
- Verifications per second for a small tenant with no latency.

By default the sandbox runs as its own process (``manage.py cw_sandbox``), as ConnectWise is a remote service: its
filtering and page encoding then do not share this process's GIL. ``--sandbox thread`` serves it from a thread of
this process instead, which makes the figures an upper bound of what the product itself costs.

The work is split by job: ``verify_setup`` (the sandbox and the scratch tenant, the calls and levels the data
needs), ``verify_timing`` (the timed and profiled runs, the worker side), ``measure`` (resident set, CPU, load) and
``verify_report`` (the table and the targets); this module holds the options and puts the figures together.
"""

from __future__ import annotations

import contextlib
import time
import tracemalloc

from django.conf import settings
from django.db import connection
from django.test.utils import override_settings

from connectwise.checks.runner import ChosenCompany, TenantChoices
from connectwise.sandbox import SandboxApp, generate_scenario, parse_scenario, serve_in_thread

from .. import runs
from ..memory import limit_malloc_arenas
from ..models import CheckRun
from . import scratch_database
from .measure import NoisyNeighbour, RssSampler, maxrss_mb, rss_now_mb
from .verify_report import (
    TARGET_CPU_S,
    TARGET_LEVELS,
    TARGET_NOISY_ROUND_TRIPS,
    TARGET_PEAK_MB,
    TARGET_ROUND_TRIPS,
)
from .verify_report import print_table as print_table
from .verify_setup import (
    COMPANY_ID,
    SMALL_COMPANY_ID,
    bench_tenant,
    chain_levels,
    needed_calls,
    serve_large,
)
from .verify_timing import OLD_LEVELS, SIX_STEPS, profile_verify, timed_repeats, worker_side


def add_arguments(parser) -> None:
    parser.add_argument("--companies", type=int, default=5000, help="Companies in the large tenant (5000).")
    parser.add_argument(
        "--agreements", type=int, default=10000, help="Agreements in the large tenant (10000)."
    )
    parser.add_argument("--latency-ms", type=int, default=100, help="Sandbox latency per answer (100 ms).")
    parser.add_argument(
        "--max-in-flight",
        type=int,
        default=None,
        help="Calls in flight per tenant (default: the CONNECTWISE_MAX_IN_FLIGHT setting).",
    )
    parser.add_argument("--repeat", type=int, default=3, help="Timed large verifies; the median is reported.")
    parser.add_argument(
        "--sandbox",
        choices=("process", "thread"),
        default="process",
        help="Serve the sandbox from its own process (default, like a remote ConnectWise) or from a thread.",
    )
    parser.add_argument(
        "--noisy",
        action="store_true",
        help="Repeat the timed verifies with a CPU-burning neighbour process and report them too.",
    )
    parser.add_argument(
        "--profile", action="store_true", help="Profile one verify (cProfile) and list the top functions."
    )
    parser.add_argument(
        "--small-companies", type=int, default=20, help="Companies of the small tenant for the rate (20)."
    )
    parser.add_argument(
        "--small-runs", type=int, default=30, help="Small verifies to time for the rate (30)."
    )


def _large(options: dict) -> dict:
    companies, agreements, latency = options["companies"], options["agreements"], options["latency_ms"]
    t0 = time.perf_counter()
    in_flight = options.get("max_in_flight") or settings.CONNECTWISE_MAX_IN_FLIGHT
    mode = options.get("sandbox") or "process"
    with contextlib.ExitStack() as stack:
        sandbox, url, counts = serve_large(stack, mode, companies, agreements)
        generate_s = time.perf_counter() - t0
        stack.enter_context(
            override_settings(CONNECTWISE_SANDBOX_URL=url, CONNECTWISE_MAX_IN_FLIGHT=in_flight)
        )
        tenant = bench_tenant("bench-large", url, COMPANY_ID, list(range(1, companies + 1)))
        choices = TenantChoices(companies=[ChosenCompany(i) for i in range(1, companies + 1)])
        need = needed_calls(counts, choices)
        chain = chain_levels(need, in_flight)

        # Warm-up without latency: the sandbox caches each record's encoding, the ORM its queries, and the
        # connection keeps the codebase and the counts (its read hints), as after any earlier verify. Every verify
        # here runs the six required steps by name: existing_billing (a read per agreement, weekly) is measured
        # apart at the end, after the memory figures, so that its 10,000 reads are not in this process's peak.
        rss_loaded = rss_now_mb()
        sandbox.clear_requests()
        runs.run_now(tenant, trigger=CheckRun.Trigger.CLI, steps=SIX_STEPS)
        sandbox.set_faults({"latencyMs": latency})
        rss_before = maxrss_mb()
        with RssSampler() as rss:
            quiet = timed_repeats(tenant, sandbox, options["repeat"], latency)
        rss_after = maxrss_mb()
        noisy = None
        if options.get("noisy"):
            with NoisyNeighbour():
                noisy = timed_repeats(tenant, sandbox, options["repeat"], latency)
                noisy.pop("run")
        run = quiet.pop("run")
        served = sum(sandbox.request_counts(COMPANY_ID)[COMPANY_ID].values())
        by_endpoint = sandbox.request_counts(COMPANY_ID)[COMPANY_ID]
        # The memory target is a worker's: the same verifies in a fresh process that loads only what a worker does
        # (after the request counts above, which are the last verify's), as deployed (without this virtualenv's
        # test extras), and, for comparison, with everything this virtualenv has.
        worker = worker_side(tenant, url, in_flight, options["repeat"])
        worker["dev_venv"] = worker_side(tenant, url, in_flight, options["repeat"], deployed=False)

        profile = profile_verify(tenant) if options.get("profile") else None
        tracemalloc.start()
        try:
            tracemalloc.reset_peak()
            traced_run = runs.run_now(tenant, trigger=CheckRun.Trigger.CLI, steps=SIX_STEPS)
            _, peak = tracemalloc.get_traced_memory()
        finally:
            tracemalloc.stop()

        # existing_billing, apart and last (no latency): its calls, one read of additions per agreement.
        sandbox.set_faults({"latencyMs": 0})
        sandbox.clear_requests()
        runs.run_now(tenant, trigger=CheckRun.Trigger.CLI, steps=["existing_billing"])
        existing_billing_calls = sum(
            n for k, n in sandbox.request_counts(COMPANY_ID)[COMPANY_ID].items() if k.endswith("/additions")
        )

    statuses = {r.key: r.status for r in run.results.all()}
    bound = chain["levels"] * latency / 1000.0
    return {
        "companies": companies,
        "agreements": agreements,
        "latency_ms": latency,
        "max_in_flight": in_flight,
        "sandbox": mode,
        "generate_s": round(generate_s, 2),
        "run_status": run.status,
        "ready": bool(run.ready),
        "step_statuses": statuses,
        "traced_run_status": traced_run.status,
        "api_calls": run.api_calls,
        "api_retries": run.api_retries,
        "served_requests": served,
        "requests_by_endpoint": by_endpoint,
        "needed_calls": need["needed"],
        "needed_pages": need["pages"],
        "call_constant": need["constant"],
        "call_constant_is": need["constant_is"],
        "paged_resources": need["paged"],
        "small_resources": need["small"],
        "calls_over_needed": run.api_calls - need["needed"],
        "existing_billing_calls": existing_billing_calls,  # its own (weekly) read, not part of api_calls
        "chain_levels": chain["levels"],
        "chain": chain["chain"],
        "chain_bound_s": round(bound, 3),
        "levels": quiet["levels"],
        "levels_samples": quiet["levels_samples"],
        "old_levels": OLD_LEVELS,
        "wall_s": quiet["wall_s"],
        "checks_s": quiet["checks_s"],
        "store_s": quiet["store_s"],
        "wall_samples_s": quiet["wall_samples_s"],
        "cpu_s": quiet["cpu_s"],
        "cpu_samples_s": quiet["cpu_samples_s"],
        "sandbox_cpu_s": quiet["sandbox_cpu_s"],
        "round_trips": quiet["round_trips"],
        "ratio": round(quiet["wall_s"] / bound, 2) if bound else None,
        "checks_ratio": round(quiet["checks_s"] / bound, 2) if bound else None,
        "ratio_old_bound": quiet["ratio_old_bound"],
        "load_before": quiet["load_before"],
        "load_after": quiet["load_after"],
        "noisy": noisy,
        "profile": profile,
        "tracemalloc_peak_mb": round(peak / (1024 * 1024), 1),
        "maxrss_mb": round(rss_after, 1),
        "rss_start_mb": round(rss.start_mb, 1),
        "rss_loaded_mb": round(rss_loaded, 1),
        "worker": worker,
        "rss_peak_mb": round(rss.peak_mb, 1),
        "maxrss_delta_mb": round(rss_after - rss_before, 1),
        "target_peak_mb": TARGET_PEAK_MB,
    }


def _small(options: dict) -> dict:
    n_companies, n_runs = options["small_companies"], max(1, options["small_runs"])
    scenario = parse_scenario(generate_scenario(n_companies, 2 * n_companies, company_id=SMALL_COMPANY_ID))
    app = SandboxApp([scenario])
    with serve_in_thread(app) as url, override_settings(CONNECTWISE_SANDBOX_URL=url):
        tenant = bench_tenant("bench-small", url, SMALL_COMPANY_ID, list(range(1, n_companies + 1)))
        runs.run_now(tenant, trigger=CheckRun.Trigger.CLI)  # warm-up
        started = time.perf_counter()
        statuses = set()
        for _ in range(n_runs):
            statuses.add(runs.run_now(tenant, trigger=CheckRun.Trigger.CLI).status)
        elapsed = time.perf_counter() - started
    return {
        "companies": n_companies,
        "agreements": 2 * n_companies,
        "runs": n_runs,
        "statuses": sorted(statuses),
        "seconds": round(elapsed, 2),
        "verifications_per_s": round(n_runs / elapsed, 1),
        "ms_per_verification": round(1000 * elapsed / n_runs, 1),
    }


def run(options: dict) -> dict:
    """The figures of a large and a small tenant's verifies (see the module docstring); ``ValueError`` for
    nonsense sizes."""
    if options["companies"] < 1 or options["agreements"] < 0 or options["latency_ms"] < 0:
        raise ValueError("--companies must be at least 1, --agreements and --latency-ms at least 0")
    if options["repeat"] < 1:
        raise ValueError("--repeat must be at least 1")
    started = time.perf_counter()
    arenas_limited = limit_malloc_arenas()  # as in a worker process (onboarding/celery.py)
    with scratch_database():
        vendor = connection.vendor
        large = _large(options)
        small = _small(options)
    noisy = large["noisy"]
    return {
        "benchmark": "verify",
        "database": vendor,
        "malloc_arenas_limited": arenas_limited,
        "large": large,
        "small": small,
        "targets": {
            "calls": "api_calls <= needed_calls (pages of 1000 + constant)",
            "levels": f"<= {TARGET_LEVELS} round-trip levels when nothing changed",
            "cpu_s": f"product CPU <= {TARGET_CPU_S} s per large verify",
            "round_trips": f"wall <= {TARGET_ROUND_TRIPS} x latency quiet, <= {TARGET_NOISY_ROUND_TRIPS} with --noisy",
            "peak_mb": f"< {TARGET_PEAK_MB}",
        },
        "met": {
            "calls": large["api_calls"] <= large["needed_calls"],
            "levels": large["levels"] <= TARGET_LEVELS,
            "cpu_s": large["cpu_s"] <= TARGET_CPU_S,
            "round_trips": large["round_trips"] is not None and large["round_trips"] <= TARGET_ROUND_TRIPS,
            "noisy_round_trips": (
                None
                if noisy is None or noisy["round_trips"] is None
                else noisy["round_trips"] <= TARGET_NOISY_ROUND_TRIPS
            ),
            "peak_mb": (large.get("worker") or {}).get("rss_peak_mb", large["rss_peak_mb"]) < TARGET_PEAK_MB,
        },
        "total_seconds": round(time.perf_counter() - started, 1),
    }
