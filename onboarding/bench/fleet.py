"""``manage.py benchmark fleet``: real Celery worker processes on Redis verify a fleet of sandbox tenants, sharing
the per-host and per-clientId limits on concurrent ConnectWise calls.

What it does: generates ``--tenants`` small healthy ConnectWise companies (``generate_scenario``) and serves them
all from one sandbox process (one ConnectWise host, latency on every answer, answers pre-rendered so that the
sandbox's CPU stays small); creates the tenants in a scratch database (PostgreSQL when ``DATABASE_URL`` points at
it: SQLite serialises the workers' writes); starts ``--workers`` real ``celery worker`` processes (``--concurrency``
each, on their own queue of the ``REDIS_URL`` broker, ``DEBUG`` off as deployed) with ``CONNECTWISE_MAX_PER_HOST``
set to ``--max-per-host``;
enqueues a verification of every tenant at once and waits for all of them.

Reported: verifications per minute (tenants / time from the first enqueue to the last run finished), the p50 and
p95 run time (each run's own ``duration_ms``, claim to finish), the peak number of calls the sandbox answered at
once (its ``/_sandbox/concurrency``, the proof that the cap held across processes), the runs' statuses, and the CPU
spent from the first enqueue to the last run finished per verification, by part (``_CpuMeter``).
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
import uuid
from pathlib import Path

import redis
from django.conf import settings
from django.db import connection

from connectwise.sandbox import generate_scenario

from .. import runs
from ..models import CheckRun, CompanyChoice, Connection, Tenant
from . import scratch_database
from .measure import process_cpu_seconds, process_group_cpu_seconds
from .workers import Worker, stop, worker_env

QUEUE_PREFIX = "bench-fleet"


def add_arguments(parser) -> None:
    parser.add_argument("--tenants", type=int, default=1000, help="Tenants to verify (1000).")
    parser.add_argument("--workers", type=int, default=1, help="Celery worker processes (1).")
    parser.add_argument(
        "--concurrency", type=int, default=2, help="Tasks each worker runs at once (prefork children, 2)."
    )
    parser.add_argument(
        "--companies", type=int, default=20, help="Companies per tenant (20; 2 agreements each)."
    )
    parser.add_argument("--latency-ms", type=int, default=50, help="Sandbox latency per answer (50 ms).")
    parser.add_argument(
        "--max-per-host",
        type=int,
        default=None,
        help="CONNECTWISE_MAX_PER_HOST for the workers (default: this process's setting).",
    )
    parser.add_argument(
        "--max-in-flight",
        type=int,
        default=None,
        help="CONNECTWISE_MAX_IN_FLIGHT per tenant for the workers (default: this process's setting).",
    )
    parser.add_argument(
        "--timeout", type=int, default=1800, help="Give up when the fleet is not verified after this (s)."
    )


def run(options: dict) -> dict:
    tenants, workers = options["tenants"], options["workers"]
    if tenants < 1 or workers < 1 or options["concurrency"] < 1 or options["companies"] < 1:
        raise ValueError("--tenants, --workers, --concurrency and --companies must be at least 1")
    if options["latency_ms"] < 0 or options["timeout"] < 1:
        raise ValueError("--latency-ms must be at least 0 and --timeout at least 1")
    if not settings.REDIS_URL:
        raise ValueError(
            "benchmark fleet needs REDIS_URL (the broker of the workers and the store of the shared call limits), "
            "e.g. REDIS_URL=redis://127.0.0.1:6379/9"
        )
    cap = options.get("max_per_host") or settings.CONNECTWISE_MAX_PER_HOST
    in_flight = options.get("max_in_flight") or settings.CONNECTWISE_MAX_IN_FLIGHT
    if cap < 1 or in_flight < 1:
        raise ValueError("--max-per-host and --max-in-flight must be at least 1")
    started = time.perf_counter()
    with contextlib.ExitStack() as stack:
        workdir = Path(tempfile.mkdtemp(prefix="bench-fleet-"))
        stack.callback(shutil.rmtree, workdir, ignore_errors=True)
        sandbox = stack.enter_context(
            _FleetSandbox(workdir, tenants, options["companies"], options["latency_ms"])
        )
        stack.enter_context(scratch_database())
        vendor = connection.vendor
        ids = _create_tenants(sandbox.url, tenants, options["companies"])
        queue = f"{QUEUE_PREFIX}-{uuid.uuid4().hex[:8]}"
        env = worker_env(
            sandbox.url,
            REDIS_URL=settings.REDIS_URL,
            # As deployed (DEBUG is off in production): with DEBUG on, Django keeps and formats every query.
            DEBUG="false",
            CONNECTWISE_MAX_PER_HOST=str(cap),
            CONNECTWISE_MAX_IN_FLIGHT=str(in_flight),
        )
        pool = stack.enter_context(_Workers(env, workdir, workers, options["concurrency"], queue))
        sandbox.reset_concurrency()
        meter = _CpuMeter(sandbox, pool)
        figures = _verify_fleet(ids, queue, options["timeout"], meter)
        figures["peak_concurrency"] = sandbox.concurrency()
        figures["sandbox_cpu_s"] = round(sandbox.cpu_seconds(), 2)
        figures["cpu_ms_per_verification"] = {k: round(v * 1000 / tenants, 1) for k, v in meter.spent.items()}
        figures["worker_log_errors"] = pool.errors()
    peak = figures["peak_concurrency"]
    return {
        "benchmark": "fleet",
        "database": vendor,
        "tenants": tenants,
        "workers": workers,
        "concurrency": options["concurrency"],
        "companies_per_tenant": options["companies"],
        "latency_ms": options["latency_ms"],
        "max_per_host": cap,
        "max_in_flight": in_flight,
        **figures,
        "peak_calls_per_host": peak["peak"],
        "met": {"cap": peak["peak"] <= cap, "all_done": figures["statuses"] == {"done": tenants}},
        "load": _load(),
        "total_seconds": round(time.perf_counter() - started, 1),
    }


def print_table(result: dict, write=print) -> None:
    yes = {True: "yes", False: "NO"}
    write(
        f"Fleet benchmark on {result['database']}: {result['tenants']:,} tenants of {result['companies_per_tenant']} "
        f"companies, {result['workers']} worker(s) x {result['concurrency']}, {result['latency_ms']} ms latency, "
        f"cap {result['max_per_host']} calls per host, {result['max_in_flight']} per tenant "
        f"(total {result['total_seconds']} s, load {result['load']})"
    )
    rows = [
        ("verifications per minute", f"{result['verifications_per_minute']:,}"),
        ("run time p50 / p95", f"{result['run_ms_p50']} ms / {result['run_ms_p95']} ms"),
        ("wall time of the fleet", f"{result['fleet_seconds']} s"),
        (
            "peak calls per host (sandbox)",
            f"{result['peak_calls_per_host']} (cap {result['max_per_host']}: within {yes[result['met']['cap']]})",
        ),
        ("runs by status", ", ".join(f"{k} {v}" for k, v in sorted(result["statuses"].items()))),
        ("API calls per run (median)", str(result["api_calls_p50"])),
        ("sandbox CPU (its whole life)", f"{result['sandbox_cpu_s']} s"),
        (
            "CPU per verification (ms)",
            ", ".join(f"{k} {v}" for k, v in result["cpu_ms_per_verification"].items()),
        ),
    ]
    width = max(len(r[0]) for r in rows)
    for name, value in rows:
        write(f"{name:<{width}}  {value}")


# -- parts -----------------------------------------------------------------------------------------------------


def _load() -> float | None:
    try:
        return round(os.getloadavg()[0], 2)
    except OSError:
        return None


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _company_id(i: int) -> str:
    return f"fleet{i:05d}"


class _FleetSandbox:
    """Every tenant's ConnectWise company served by one ``cw_sandbox`` process (one host), answers pre-rendered."""

    def __init__(self, workdir: Path, tenants: int, companies: int, latency_ms: int):
        self.workdir, self.tenants, self.companies, self.latency_ms = workdir, tenants, companies, latency_ms

    def __enter__(self) -> _FleetSandbox:
        files = []
        for i in range(1, self.tenants + 1):
            path = self.workdir / f"{_company_id(i)}.json"
            scenario = generate_scenario(
                self.companies, 2 * self.companies, company_id=_company_id(i), seed=i
            )
            path.write_text(json.dumps(scenario))
            files.append(str(path))
        port = _free_port()
        self.url = f"http://127.0.0.1:{port}"
        cmd = [
            sys.executable,
            os.path.join(settings.BASE_DIR, "manage.py"),
            "cw_sandbox",
            "--port",
            str(port),
        ]
        cmd += ["--prerender", "--latency-ms", str(self.latency_ms)]
        for f in files:
            cmd += ["--scenario", f]
        self.log = open(self.workdir / "sandbox.log", "w")  # noqa: SIM115
        self.proc = subprocess.Popen(cmd, stdout=self.log, stderr=subprocess.STDOUT, start_new_session=True)
        deadline = time.monotonic() + 120
        while True:
            try:
                self._call("GET", "/_sandbox/concurrency")
                return self
            except OSError:
                if self.proc.poll() is not None or time.monotonic() > deadline:
                    self.__exit__()
                    raise RuntimeError("the sandbox process did not start") from None
                time.sleep(0.3)

    def _call(self, method: str, path: str):
        request = urllib.request.Request(self.url + path, method=method)
        with urllib.request.urlopen(request, timeout=30) as response:
            text = response.read()
        return json.loads(text) if text else None

    def reset_concurrency(self) -> None:
        self._call("DELETE", "/_sandbox/concurrency")

    def concurrency(self) -> dict:
        return self._call("GET", "/_sandbox/concurrency")

    def cpu_seconds(self) -> float:
        return process_cpu_seconds(self.proc.pid)

    def __exit__(self, *exc) -> None:
        stop(self.proc)
        self.log.close()


def _create_tenants(url: str, tenants: int, companies: int) -> list[int]:
    site = url.split("://", 1)[1]
    created = Tenant.objects.bulk_create(
        [Tenant(slug=f"fleet-{i:05d}", name=f"Fleet {i}") for i in range(1, tenants + 1)], batch_size=1000
    )
    ids = (
        [t.pk for t in created]
        if all(t.pk for t in created)
        else list(
            Tenant.objects.filter(slug__startswith="fleet-").order_by("slug").values_list("pk", flat=True)
        )
    )
    conns = []
    for i, pk in enumerate(ids, start=1):
        conn = Connection(
            tenant_id=pk, site=site, company_id=_company_id(i), public_key=f"{_company_id(i)}pub"
        )
        conn.set_private_key(f"{_company_id(i)}priv-0123456789")
        conns.append(conn)
    Connection.objects.bulk_create(conns, batch_size=1000)
    CompanyChoice.objects.bulk_create(
        [
            CompanyChoice(tenant_id=pk, cw_company_id=c, motion="monthly")
            for pk in ids
            for c in range(1, companies + 1)
        ],
        batch_size=5000,
    )
    return ids


class _Workers:
    """``count`` real worker processes (``workers.Worker``) on one queue, started together; stopped on exit."""

    def __init__(self, env: dict, workdir: Path, count: int, concurrency: int, queue: str):
        self.pool = [
            Worker(env, workdir / f"worker{n}.log", queue, concurrency=concurrency, name=f"fleet{n}@%h")
            for n in range(count)
        ]

    def __enter__(self) -> _Workers:
        try:
            for worker in self.pool:
                worker.launch()
            for worker in self.pool:
                worker.wait_ready(120)
        except BaseException:
            self.__exit__()
            raise
        return self

    def cpu_seconds(self) -> float:
        """CPU seconds of every living process of the workers (each worker and its prefork children)."""
        return sum(process_group_cpu_seconds(w.proc.pid) for w in self.pool if w.proc)

    def errors(self) -> int:
        return sum(worker.log().count("ERROR/") for worker in self.pool)

    def __exit__(self, *exc) -> None:
        for worker in self.pool:
            worker.stop()


class _CpuMeter:
    """CPU seconds each part spends between ``start()`` and ``stop()`` (then in ``spent``): ``workers`` (every
    process of their groups), ``sandbox`` (its process), ``postgres`` (the backends of the scratch database, when
    PostgreSQL runs on this machine; backends that come and go in between are missed, the workers keep theirs:
    ``CONN_MAX_AGE``), ``redis`` (the whole server: other users of it count too) and ``bench`` (this process:
    enqueuing and waiting)."""

    def __init__(self, sandbox: _FleetSandbox, pool: _Workers):
        self.sandbox, self.pool = sandbox, pool
        self.spent: dict[str, float] = {}

    def _snapshot(self) -> dict:
        return {
            "workers": self.pool.cpu_seconds(),
            "sandbox": self.sandbox.cpu_seconds(),
            "postgres": self._backends(),
            "redis": self._redis(),
            "bench": time.process_time(),
        }

    def _backends(self) -> dict[int, float]:
        if connection.vendor != "postgresql" or (connection.settings_dict.get("HOST") or "127.0.0.1") not in {
            "127.0.0.1",
            "localhost",
            "::1",
        }:
            return {}
        with connection.cursor() as cursor:
            cursor.execute("SELECT pid FROM pg_stat_activity WHERE datname = current_database()")
            return {pid: process_cpu_seconds(pid) for (pid,) in cursor.fetchall()}

    @staticmethod
    def _redis() -> float:
        info = redis.Redis.from_url(settings.REDIS_URL).info("cpu")
        return float(info["used_cpu_sys"]) + float(info["used_cpu_user"])

    def start(self) -> None:
        self._start = self._snapshot()

    def stop(self) -> None:
        end, start = self._snapshot(), self._start
        self.spent = {k: end[k] - start[k] for k in ("workers", "sandbox", "redis", "bench")}
        if end["postgres"]:
            self.spent["postgres"] = sum(
                cpu - start["postgres"].get(pid, 0.0) for pid, cpu in end["postgres"].items()
            )
        self.spent = {k: round(v, 2) for k, v in self.spent.items()}


def _verify_fleet(tenant_ids: list[int], queue: str, timeout: int, meter: _CpuMeter) -> dict:
    from ..tasks import run_checks  # noqa: PLC0415

    run_ids = []
    for tenant in Tenant.objects.filter(pk__in=tenant_ids).order_by("pk"):
        run, _ = runs.start_run(tenant, trigger=CheckRun.Trigger.SCHEDULE, enqueue=False)
        run_ids.append(run.pk)
    meter.start()
    first = time.perf_counter()
    for run_id in run_ids:
        run_checks.apply_async((run_id,), queue=queue)
    deadline = time.monotonic() + timeout
    active = CheckRun.objects.filter(pk__in=run_ids, status__in=CheckRun.ACTIVE)
    while active.exists():
        if time.monotonic() > deadline:
            raise RuntimeError(f"the fleet was not verified within {timeout} s ({active.count()} runs left)")
        time.sleep(0.25)
    elapsed = time.perf_counter() - first
    meter.stop()
    done = CheckRun.objects.filter(pk__in=run_ids)
    durations = sorted(d for d in done.values_list("duration_ms", flat=True) if d is not None)
    calls = sorted(c for c in done.values_list("api_calls", flat=True) if c is not None)
    statuses: dict[str, int] = {}
    for status in done.values_list("status", flat=True):
        statuses[status] = statuses.get(status, 0) + 1
    return {
        "fleet_seconds": round(elapsed, 2),
        "verifications_per_minute": round(len(run_ids) * 60 / elapsed),
        "run_ms_p50": round(statistics.median(durations)) if durations else None,
        "run_ms_p95": _percentile(durations, 95),
        "api_calls_p50": statistics.median(calls) if calls else None,
        "statuses": statuses,
    }


def _percentile(values: list[int], pct: int) -> int | None:
    if not values:
        return None
    return (
        round(statistics.quantiles(values, n=100, method="inclusive")[pct - 1])
        if len(values) > 1
        else values[0]
    )
