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
  the product as a Celery worker does and nothing else, its resident set sampled from /proc every 5 ms (the target
  applies to this). The benchmark process's own peak is printed too (it also migrated the scratch database and
  created the tenant), with tracemalloc's peak of new allocations of one verify (a separate run, since tracing
  slows Python down). Every measured verify runs the six required steps by name; existing_billing (a read per
  agreement) is run last and reported apart.
- Verifications per second for a small tenant with no latency.

By default the sandbox runs as its own process (``manage.py cw_sandbox``), as ConnectWise is a remote service: its
filtering and page encoding then do not share this process's GIL. ``--sandbox thread`` serves it from a thread of
this process instead, which makes the figures an upper bound of what the product itself costs.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import resource
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import tracemalloc
import urllib.request
from contextlib import contextmanager
from urllib.parse import urlsplit

from django.conf import settings
from django.db import connection
from django.test.utils import override_settings

from connectwise.checks.context import PAGE_SIZE, RESOURCES
from connectwise.checks.registry import READINESS_KEYS, STEP_KEYS, step_module
from connectwise.checks.runner import ChosenCompany, TenantChoices
from connectwise.sandbox import SandboxApp, generate_scenario, parse_scenario, serve_in_thread

from .. import runs
from ..models import CheckRun, CompanyChoice, Connection, Tenant
from . import database_url, scratch_database

COMPANY_ID = "bigco"
SMALL_COMPANY_ID = "smallco"
TARGET_LEVELS = 2
TARGET_CPU_S = 0.2
TARGET_ROUND_TRIPS = 2.5
TARGET_NOISY_ROUND_TRIPS = 4.0
TARGET_PEAK_MB = 150
# The measured verifies run the six steps that decide readiness, by name (existing_billing is measured apart).
SIX_STEPS = list(READINESS_KEYS)


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


class SandboxProcess:
    """The sandbox served by ``manage.py cw_sandbox`` in its own process, controlled over its HTTP endpoints
    (the same calls as SandboxApp's methods that the benchmark uses)."""

    def __init__(
        self, scenario: dict | None = None, *, generate: list[str] | None = None, prerender: bool = False
    ):
        """``scenario``: a scenario to serve; or ``generate``: arguments of ``connectwise.sandbox.generate``, run
        in a child process so that this process never holds the generated records. ``prerender``: the sandbox
        serves each GET answer as first rendered (``cw_sandbox --prerender``)."""
        self._file = tempfile.NamedTemporaryFile("w", suffix=".json", delete=False)  # noqa: SIM115
        if scenario is not None:
            json.dump(scenario, self._file)
        self._file.close()
        if generate is not None:
            subprocess.run(
                [sys.executable, "-m", "connectwise.sandbox.generate", *generate, "-o", self._file.name],
                check=True,
                cwd=settings.BASE_DIR,
            )
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        self.url = f"http://127.0.0.1:{port}"
        manage = os.path.join(settings.BASE_DIR, "manage.py")
        self.proc = subprocess.Popen(
            [sys.executable, manage, "cw_sandbox", "--port", str(port), "--scenario", self._file.name]
            + (["--prerender"] if prerender else []),
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 60
        while True:
            try:
                self._call("GET", "/_sandbox/")
                break
            except OSError:
                if self.proc.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError("the sandbox process did not start") from None
                time.sleep(0.2)

    def _call(self, method: str, path: str, body: dict | None = None):
        data = json.dumps(body).encode() if body is not None else None
        request = urllib.request.Request(self.url + path, data=data, method=method)
        request.add_header("Content-Type", "application/json")
        with urllib.request.urlopen(request, timeout=30) as response:
            text = response.read()
        return json.loads(text) if text else None

    def set_faults(self, faults: dict, company: str | None = None) -> None:
        self._call("POST", "/_sandbox/faults", {**faults, **({"company": company} if company else {})})

    def clear_requests(self, company: str | None = None) -> None:
        self._call("DELETE", "/_sandbox/requests")

    def request_counts(self, company: str | None = None) -> dict:
        data = self._call("GET", "/_sandbox/requests")
        counts = data.get("requests", data) if isinstance(data, dict) else {}
        return {k: v for k, v in counts.items() if company is None or k.casefold() == company.casefold()}

    def record_counts(self, company: str) -> dict[str, int]:
        for c in self._call("GET", "/_sandbox/")["companies"]:
            if c["id"].casefold() == company.casefold():
                return c["records"]
        raise KeyError(company)

    def cpu_seconds(self) -> float:
        """CPU time (user + system) the sandbox process has used so far, from /proc (Linux)."""
        return process_cpu_seconds(self.proc.pid)

    def close(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
        os.unlink(self._file.name)


class RssSampler:
    """The process's resident set sampled every 5 ms from /proc (Linux): its peak during the verifies, whatever
    the process held before (``ru_maxrss`` is a high-water mark since the process started)."""

    def __init__(self) -> None:
        self.peak_mb = self.start_mb = rss_now_mb()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.wait(0.005):
            self.peak_mb = max(self.peak_mb, rss_now_mb())

    def __enter__(self) -> RssSampler:
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()


def process_cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of another process, from ``/proc/PID/stat`` (Linux; 0.0 elsewhere)."""
    try:
        with open(f"/proc/{pid}/stat") as fh:
            fields = fh.read().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    except (OSError, ValueError, IndexError):
        return 0.0


class NoisyNeighbour:
    """A CPU-burning process (a busy loop) beside the benchmark, like another tenant's job on the same cores."""

    def __enter__(self) -> NoisyNeighbour:
        self.proc = subprocess.Popen([sys.executable, "-c", "while True:\n    pass"])
        return self

    def __exit__(self, *exc) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


def load_average() -> float | None:
    """The 1-minute load average (how busy the shared cores were), or None where unavailable."""
    try:
        return round(os.getloadavg()[0], 2)
    except OSError:
        return None


def rss_now_mb() -> float:
    """This process's resident set now, in MB (from /proc; the high-water mark where /proc is not there)."""
    try:
        with open("/proc/self/statm") as fh:
            pages = int(fh.read().split()[1])
        return pages * os.sysconf("SC_PAGE_SIZE") / (1024 * 1024)
    except (OSError, ValueError, IndexError):
        return _maxrss_mb()


def _maxrss_mb() -> float:
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return rss / (1024 * 1024) if sys.platform == "darwin" else rss / 1024  # bytes on macOS, KiB on Linux


def _tenant(slug: str, url: str, company_id: str, company_ids: list[int]) -> Tenant:
    tenant = Tenant.objects.create(slug=slug, name=slug)
    conn = Connection(
        tenant=tenant,
        site=urlsplit(url).netloc,
        company_id=company_id,
        public_key=f"{company_id}pub",
    )
    conn.set_private_key(f"{company_id}priv-0123456789")
    conn.save()
    CompanyChoice.objects.bulk_create(
        [CompanyChoice(tenant=tenant, cw_company_id=i, motion="monthly") for i in company_ids],
        batch_size=2000,
    )
    return Tenant.objects.select_related("connection").get(pk=tenant.pk)


def worker_side(tenant: Tenant, url: str, in_flight: int, repeat: int) -> dict:
    """``repeat`` verifies of ``tenant`` in a fresh worker-like process (``onboarding.bench.verify_worker``) on the
    same database and sandbox; returns its figures (resident set loaded and at peak, wall and CPU per verify)."""
    env = {
        **os.environ,
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


def needed_calls(counts: dict[str, int], choices: TenantChoices) -> dict:
    """The minimum calls a full verify needs for this data (``counts``: records per API path), and what makes
    up the constant."""
    keys: set[str] = set()
    for key in STEP_KEYS[1:]:
        module = step_module(key)
        keys |= set(module.needs(choices))
        if hasattr(module, "plan_operations"):
            keys.add("my_security")  # runner._needs: read to offer only the repairs the role allows
    pages, paged, small = 0, {}, []
    for key in sorted(keys):
        res = RESOURCES[key]
        if res.large:
            rows = counts.get(res.path, 0)
            n = max(1, math.ceil(rows / PAGE_SIZE))
            paged[res.path] = {"records": rows, "pages": n}
            pages += n
        else:
            small.append(res.path)
    constant = (
        2 + len(paged) + len(small)
    )  # companyinfo + system/info, a /count per paged resource, small GETs
    return {
        "pages": pages,
        "constant": constant,
        "needed": pages + constant,
        "paged": paged,
        "small": small,
        "constant_is": "companyinfo + system/info + one /count per paged resource + one GET per small table",
    }


OLD_LEVELS = (
    4  # before the read hints: companyinfo -> system/info -> /count, page 1, small tables -> pages 2..n
)


def chain_levels(needed: dict, in_flight: int) -> dict:
    """Round-trip levels a verify needs when nothing changed since the last one (see the module docstring): one
    wave of every call, split into as many levels as the in-flight bound makes of it."""
    waves = max(1, math.ceil(needed["needed"] / max(1, in_flight)))
    chain = "companyinfo ‖ system/info ‖ /count ‖ predicted pages ‖ small tables"
    if waves > 1:
        chain += f" ({needed['needed']} calls, {in_flight} in flight: {waves} levels)"
    return {"levels": waves, "chain": chain}


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


def _timed_repeats(tenant: Tenant, sandbox, repeat: int, latency_ms: int) -> dict:
    """``repeat`` verifies; medians of wall, checks, storing, product CPU; levels seen; sandbox CPU apart."""
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


def _large(options: dict) -> dict:
    companies, agreements, latency = options["companies"], options["agreements"], options["latency_ms"]
    t0 = time.perf_counter()
    in_flight = options.get("max_in_flight") or settings.CONNECTWISE_MAX_IN_FLIGHT
    mode = options.get("sandbox") or "process"
    with contextlib.ExitStack() as stack:
        if mode == "process":
            # Generated and served by child processes: this process holds only what a worker would.
            sandbox = stack.enter_context(
                contextlib.closing(
                    SandboxProcess(
                        prerender=True,
                        generate=[
                            "--companies",
                            str(companies),
                            "--agreements",
                            str(agreements),
                            "--company-id",
                            COMPANY_ID,
                        ],
                    )
                )
            )
            url, counts = sandbox.url, sandbox.record_counts(COMPANY_ID)
        else:
            app = SandboxApp(
                [parse_scenario(generate_scenario(companies, agreements, company_id=COMPANY_ID))],
                prerender=True,
            )
            url = stack.enter_context(serve_in_thread(app))
            sandbox = app
            counts = {path: len(t.rows) for path, t in app.tenant(COMPANY_ID).tables.items()}
        generate_s = time.perf_counter() - t0
        stack.enter_context(
            override_settings(CONNECTWISE_SANDBOX_URL=url, CONNECTWISE_MAX_IN_FLIGHT=in_flight)
        )
        tenant = _tenant("bench-large", url, COMPANY_ID, list(range(1, companies + 1)))
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
        rss_before = _maxrss_mb()
        with RssSampler() as rss:
            quiet = _timed_repeats(tenant, sandbox, options["repeat"], latency)
        rss_after = _maxrss_mb()
        noisy = None
        if options.get("noisy"):
            with NoisyNeighbour():
                noisy = _timed_repeats(tenant, sandbox, options["repeat"], latency)
                noisy.pop("run")
        run = quiet.pop("run")
        served = sum(sandbox.request_counts(COMPANY_ID)[COMPANY_ID].values())
        by_endpoint = sandbox.request_counts(COMPANY_ID)[COMPANY_ID]
        # The memory target is a worker's: the same verifies in a fresh process that loads only what a worker does
        # (after the request counts above, which are the last verify's).
        worker = worker_side(tenant, url, in_flight, options["repeat"])

        profile = _profile(tenant) if options.get("profile") else None
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


def _profile(tenant: Tenant, top: int = 15) -> list[dict]:
    """cProfile of one verify (latency on): the functions with the most own time, for the notes."""
    import cProfile  # noqa: PLC0415
    import pstats  # noqa: PLC0415

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


def _small(options: dict) -> dict:
    n_companies, n_runs = options["small_companies"], max(1, options["small_runs"])
    scenario = parse_scenario(generate_scenario(n_companies, 2 * n_companies, company_id=SMALL_COMPANY_ID))
    app = SandboxApp([scenario])
    with serve_in_thread(app) as url, override_settings(CONNECTWISE_SANDBOX_URL=url):
        tenant = _tenant("bench-small", url, SMALL_COMPANY_ID, list(range(1, n_companies + 1)))
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
    if options["companies"] < 1 or options["agreements"] < 0 or options["latency_ms"] < 0:
        raise ValueError("--companies must be at least 1, --agreements and --latency-ms at least 0")
    if options["repeat"] < 1:
        raise ValueError("--repeat must be at least 1")
    started = time.perf_counter()
    from ..memory import limit_malloc_arenas  # noqa: PLC0415

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


def print_table(result: dict, write=print) -> None:
    large, small = result["large"], result["small"]
    yes = {True: "yes", False: "NO", None: "not measured"}
    met = result["met"]
    write(
        f"Verify benchmark on {result['database']}: {large['companies']:,} companies, {large['agreements']:,} "
        f"agreements, {large['latency_ms']} ms latency, max {large['max_in_flight']} calls in flight "
        f"(total {result['total_seconds']} s)"
    )
    write(f"Run: {large['run_status']}, ready={large['ready']}")
    write("")

    def timing(figures: dict, label: str, target: float, ok) -> list[tuple[str, str]]:
        return [
            (
                f"wall time, median ({label})",
                f"{figures['wall_s']:.3f} s (checks {figures['checks_s']:.3f} s + storing results "
                f"{figures['store_s']:.3f} s); samples {figures['wall_samples_s']}; load "
                f"{figures['load_before']} -> {figures['load_after']}",
            ),
            (
                "  round trips (wall / latency)",
                f"{figures['round_trips']}; target <= {target}: {yes[ok]}; ratio to the old four-level bound "
                f"{figures['ratio_old_bound']}",
            ),
            (
                "  product CPU per verify",
                f"{figures['cpu_s']:.3f} s (samples {figures['cpu_samples_s']}); sandbox CPU per verify "
                f"{figures['sandbox_cpu_s'] if figures['sandbox_cpu_s'] is not None else 'n/a (same process)'} s",
            ),
            ("  levels observed", f"{figures['levels']} (samples {figures['levels_samples']})"),
        ]

    rows = [
        ("API calls", f"{large['api_calls']} (sandbox served {large['served_requests']})"),
        (
            "  minimum the data needs",
            f"{large['needed_calls']} = {large['needed_pages']} pages of 1000 + constant {large['call_constant']} "
            f"({large['call_constant_is']})",
        ),
        ("  within the minimum", yes[met["calls"]]),
        (
            "existing_billing, apart",
            f"{large['existing_billing_calls']} calls (one read per agreement; runs weekly, on request and after "
            "choices change, never in the figures above)",
        ),
        (
            "levels observed",
            f"{large['levels']} (target <= {TARGET_LEVELS}: {yes[met['levels']]}); before the read hints: "
            f"{large['old_levels']}",
        ),
        ("chain of dependent calls", f"{large['chain_levels']} levels: {large['chain']}"),
        ("  bound (levels x latency)", f"{large['chain_bound_s']:.3f} s"),
        (
            "  ratio wall / bound",
            f"{large['ratio']} (checks only {large['checks_ratio']})",
        ),
        *timing(
            {**large, "levels_samples": large["levels_samples"]},
            "quiet",
            TARGET_ROUND_TRIPS,
            met["round_trips"],
        ),
        (
            "  product CPU target",
            f"<= {TARGET_CPU_S} s: {yes[met['cpu_s']]}",
        ),
    ]
    if large.get("noisy"):
        rows += timing(large["noisy"], "noisy neighbour", TARGET_NOISY_ROUND_TRIPS, met["noisy_round_trips"])
    worker = large.get("worker")
    if worker:
        rows.append(
            (
                "peak memory (worker)",
                f"resident set peak {worker['rss_peak_mb']} MB in a fresh worker-like process during "
                f"{len(worker['wall_s'])} verifies ({worker['rss_loaded_mb']} MB with Django and the product loaded, "
                f"before the first); its wall {worker['wall_median_s']} s and CPU {worker['cpu_median_s']} s per "
                f"verify (median); target < {large['target_peak_mb']} MB: {yes[met['peak_mb']]}",
            )
        )
    rows += [
        (
            "  benchmark process",
            f"resident set peak {large['rss_peak_mb']} MB during the verifies (from "
            f"{large['rss_start_mb']} MB before them, {large.get('rss_loaded_mb')} MB before the first verify, "
            f"after migrating the scratch database and creating the tenant; tracemalloc peak of one verify "
            f"{large['tracemalloc_peak_mb']} MB; sandbox {large['sandbox']})",
        ),
        (
            "small tenant rate",
            f"{small['verifications_per_s']} verifications/s ({small['ms_per_verification']} ms each; "
            f"{small['runs']} runs of {small['companies']} companies, no latency)",
        ),
    ]
    width = max(len(r[0]) for r in rows)
    for name, value in rows:
        write(f"{name:<{width}}  {value}")
    for row in large.get("profile") or []:
        write(
            f"  profile  {row['own_s']:.4f} s own  {row['cumulative_s']:.4f} s cum  {row['calls']:>7}  {row['function']}"
        )
