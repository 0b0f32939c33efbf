"""``manage.py benchmark load``: the web tier under many users at once, measured with locust against gunicorn.

Builds the dashboard benchmark's data set (``--tenants`` tenants with their run history, ``dashboard_data.build``) in
a scratch database (PostgreSQL when ``DATABASE_URL`` points at it, which is what the targets are for), gives
``--partner-admins`` of those tenants a partner admin and a running check, logs in ``--support-users`` support
users and the partner admins (sessions made here, no password), starts gunicorn (``--gunicorn-workers``, sync or
``--gunicorn-threads`` gthread, DEBUG off) on a loopback port, and runs locust headless for ``--duration`` seconds with the users of
``onboarding/bench/locustfile.py``: support users on the dashboard, its filters and search, tenant pages, filtered
CSV exports and the JSON endpoint (``--support-wait`` 2 to 5 s between clicks); partner admins polling their
progress fragment one second after each answer, as the page does. Everything runs on this machine: locust
(FastHttpUser, its CPU seconds reported) and gunicorn share its cores.

Reported per page: requests, failures, requests per second, and the p50/p95/p99 response time (locust's
percentiles); targets: dashboard list p95 < 300 ms, progress fragment p95 < 50 ms.
"""

from __future__ import annotations

import contextlib
import csv
import json
import os
import resource
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

from django.conf import settings
from django.contrib.auth import get_user_model
from django.db import connection
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from ..models import CheckRun, Membership, Tenant
from . import database_url, scratch_database
from .dashboard_data import build

TARGETS_P95_MS = {"dashboard list": 300, "progress fragment": 50}
RAMP_UP_S = 5  # users start over this many seconds; not counted in the figures


def add_arguments(parser) -> None:
    parser.add_argument("--tenants", type=int, default=10_000, help="Tenants in the data set (10000).")
    parser.add_argument(
        "--runs-per-tenant",
        type=int,
        default=3,
        help="Finished runs per checked tenant (3), as benchmark dashboard.",
    )
    parser.add_argument("--support-users", type=int, default=20, help="Concurrent support users (20).")
    parser.add_argument(
        "--partner-admins", type=int, default=50, help="Concurrent partner admins polling (50)."
    )
    parser.add_argument("--duration", type=int, default=30, help="Seconds of load after ramp-up (30).")
    parser.add_argument("--gunicorn-workers", type=int, default=3, help="gunicorn workers (3, as deployed).")
    parser.add_argument(
        "--gunicorn-threads",
        type=int,
        default=4,
        help="Threads per gunicorn worker (4: gthread workers, as deployed; 1: sync workers).",
    )
    parser.add_argument(
        "--support-wait",
        default="2,5",
        help="Seconds a support user reads a page before the next click, 'min,max' (2,5).",
    )
    parser.add_argument("--seed", type=int, default=1, help="Random seed of the generated data.")


def run(options: dict) -> dict:
    n, support, partners = options["tenants"], options["support_users"], options["partner_admins"]
    if n < 1 or support < 0 or partners < 0 or support + partners < 1:
        raise ValueError("--tenants must be at least 1, and there must be at least one user")
    if partners > n:
        raise ValueError("--partner-admins cannot exceed --tenants")
    if options["duration"] < 1 or options["gunicorn_workers"] < 1 or options["gunicorn_threads"] < 1:
        raise ValueError("--duration, --gunicorn-workers and --gunicorn-threads must be at least 1")
    support_wait = _wait_range(options.get("support_wait") or "2,5")
    started = time.perf_counter()
    workdir = Path(tempfile.mkdtemp(prefix="bench-load-"))
    try:
        with scratch_database():
            vendor = connection.vendor
            t0 = time.perf_counter()
            built = build(n, max(0, options["runs_per_tenant"]), options["seed"])
            build_s = time.perf_counter() - t0
            sessions = _sessions(support, partners)
            sessions_file = workdir / "sessions.json"
            sessions_file.write_text(json.dumps(sessions))
            with _Gunicorn(workdir, options["gunicorn_workers"], options["gunicorn_threads"]) as web:
                _warm_up(web.url, sessions)
                load_before = _load()
                server_cpu_before = _tree_cpu_seconds(web.proc.pid)
                pages, totals, locust_cpu = _locust(
                    web.url, workdir, sessions_file, support, partners, options["duration"], support_wait
                )
                server_cpu = _tree_cpu_seconds(web.proc.pid) - server_cpu_before
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    met = {
        name: (row["p95_ms"] is not None and row["p95_ms"] < target)
        for name, target in TARGETS_P95_MS.items()
        for row in pages
        if row["page"] == name
    }
    return {
        "benchmark": "load",
        "database": vendor,
        "tenants": n,
        "rows": built["counts"],
        "build_seconds": round(build_s, 1),
        "support_users": support,
        "partner_admins": partners,
        "duration_s": options["duration"],
        "gunicorn_workers": options["gunicorn_workers"],
        "gunicorn_threads": options["gunicorn_threads"],
        "support_wait_s": list(support_wait),
        "partner_poll_s": 1,
        "locust_cpu_s": locust_cpu,
        "server_cpu_s": round(server_cpu, 1),
        "server_cpu_ms_per_request": round(1000 * server_cpu / totals["requests"], 1)
        if totals and totals["requests"]
        else None,
        "cpus": os.cpu_count(),
        "load_before": load_before,
        "pages": pages,
        "total": totals,
        "targets_p95_ms": TARGETS_P95_MS,
        "met": met,
        "load": _load(),
        "total_seconds": round(time.perf_counter() - started, 1),
    }


def print_table(result: dict, write=print) -> None:
    wait = result.get("support_wait_s") or ["?", "?"]
    write(
        f"Load benchmark on {result['database']}: {result['tenants']:,} tenants, {result['support_users']} support "
        f"users ({wait[0]}-{wait[1]} s between clicks) + {result['partner_admins']} partner admins (a poll "
        f"{result.get('partner_poll_s', 1)} s after each answer) for {result['duration_s']} s; gunicorn "
        f"{result['gunicorn_workers']} workers x {result['gunicorn_threads']} threads; locust (FastHttpUser) on the "
        f"same {result.get('cpus')} cores used {result.get('locust_cpu_s')} CPU s; load average "
        f"{result.get('load_before')} before, {result['load']} after; figures after a {RAMP_UP_S} s ramp-up; total "
        f"{result['total_seconds']} s"
    )
    if result.get("server_cpu_s") is not None:
        seconds = result["duration_s"] + RAMP_UP_S
        write(
            f"gunicorn used {result['server_cpu_s']} CPU s in {seconds} s ({result['server_cpu_s'] / seconds:.2f} of "
            f"a core; {result['server_cpu_ms_per_request']} ms per counted request), PostgreSQL apart"
        )
    header = ("page", "requests", "failures", "req/s", "p50 ms", "p95 ms", "p99 ms", "target p95")
    rows = [header]
    for row in [*result["pages"], {**result["total"], "page": "all"}]:
        target = TARGETS_P95_MS.get(row["page"])
        ok = result["met"].get(row["page"])
        rows.append(
            (
                row["page"],
                str(row["requests"]),
                str(row["failures"]),
                f"{row['rps']:.1f}",
                str(row["p50_ms"]),
                str(row["p95_ms"]),
                str(row["p99_ms"]),
                f"< {target}: {'yes' if ok else 'NO'}" if target else "",
            )
        )
    widths = [max(len(r[i]) for r in rows) for i in range(len(header))]
    for r in rows:
        write("  ".join(cell.ljust(widths[i]) for i, cell in enumerate(r)).rstrip())


# -- parts -----------------------------------------------------------------------------------------------------


def _wait_range(text: str) -> tuple[float, float]:
    try:
        low, high = (float(x) for x in text.split(","))
    except ValueError:
        raise ValueError(f"--support-wait must be 'min,max' seconds, not {text!r}") from None
    if not 0 <= low <= high:
        raise ValueError(f"--support-wait must be 'min,max' with 0 <= min <= max, not {text!r}")
    return low, high


def _tree_cpu_seconds(pid: int) -> float:
    """CPU seconds (user + system) used so far by a process and its direct children (gunicorn's master and its
    workers), from /proc; 0.0 where /proc is not there."""
    tick = os.sysconf("SC_CLK_TCK")
    total = 0
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue  # the process ended meanwhile
        # after the command name: state, ppid, ..., utime (14th field of the line), stime (15th)
        if int(stat.parent.name) == pid or int(fields[1]) == pid:
            total += int(fields[11]) + int(fields[12])
    return total / tick


def _load() -> float | None:
    try:
        return round(os.getloadavg()[0], 2)
    except OSError:
        return None


def _session_of(user) -> str:
    client = Client()
    client.force_login(user)
    return client.cookies[settings.SESSION_COOKIE_NAME].value


def _sessions(support: int, partners: int) -> dict:
    """Support users, and partner admins each with a running check on their own tenant (the fragment renders
    progress, not "finished")."""
    User = get_user_model()  # noqa: N806
    out: dict = {"support": [], "partners": []}
    for i in range(support):
        user = User.objects.create_user(
            username=f"load-support-{i}", email=f"load-support-{i}@example.invalid", is_support=True
        )
        out["support"].append(_session_of(user))
    tenants = list(Tenant.objects.order_by("pk")[:partners])
    now = timezone.now()
    for i, tenant in enumerate(tenants):
        user = User.objects.create_user(username=f"load-admin-{i}", email=f"load-admin-{i}@example.invalid")
        Membership.objects.create(tenant=tenant, user=user, role=Membership.Role.ADMIN)
        CheckRun.objects.filter(tenant=tenant, status__in=CheckRun.ACTIVE).update(
            status=CheckRun.Status.DONE, finished_at=now
        )
        run = CheckRun.objects.create(
            tenant=tenant,
            trigger=CheckRun.Trigger.MANUAL,
            status=CheckRun.Status.RUNNING,
            started_at=now,
            progress={"done": 2, "total": 6, "current": "catalog"},
        )
        out["partners"].append(
            {"session": _session_of(user), "url": reverse("run_status", args=[tenant.slug, run.uuid])}
        )
    out["tenants"] = list(
        Tenant.objects.filter(last_checked_at__isnull=False).values_list("slug", flat=True)[:500]
    )
    return out


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class _Gunicorn:
    """gunicorn serving the product from the scratch database, DEBUG off, on a loopback port."""

    def __init__(self, workdir: Path, workers: int, threads: int = 1):
        self.workdir, self.workers, self.threads = workdir, workers, threads

    def __enter__(self) -> _Gunicorn:
        env = {
            **os.environ,
            "DEBUG": "false",
            "ALLOWED_HOSTS": "127.0.0.1,localhost",
            "PYTHONUNBUFFERED": "1",
            "DATABASE_URL": database_url(),
        }
        env["ONBOARDING_VAR_DIR"] = str(
            settings.VAR_DIR
        )  # the same secret key: the sessions made here are valid
        port = _free_port()
        self.url = f"http://127.0.0.1:{port}"
        self.log = open(self.workdir / "gunicorn.log", "w")  # noqa: SIM115
        cmd = [sys.executable, "-m", "gunicorn", "onboarding.wsgi", "--bind", f"127.0.0.1:{port}"]
        cmd += ["--workers", str(self.workers), "--log-level", "warning"]
        if self.threads > 1:
            cmd += ["--worker-class", "gthread", "--threads", str(self.threads)]
        self.proc = subprocess.Popen(
            cmd,
            cwd=settings.BASE_DIR,
            env=env,
            stdout=self.log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        deadline = time.monotonic() + 60
        while True:
            try:
                with urllib.request.urlopen(f"{self.url}/accounts/login/", timeout=10):
                    return self
            except OSError:
                if self.proc.poll() is not None or time.monotonic() > deadline:
                    self.__exit__()
                    raise RuntimeError(
                        "gunicorn did not start: " + (self.workdir / "gunicorn.log").read_text()[-1500:]
                    ) from None
                time.sleep(0.3)

    def __exit__(self, *exc) -> None:
        if self.proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(timeout=10)
        self.log.close()


def _warm_up(url: str, sessions: dict) -> None:
    """Each page once per gunicorn worker or so (templates compiled, connections open); any error stops here."""
    pages = (
        [("support", "/support/"), ("support", f"/support/t/{sessions['tenants'][0]}/")]
        if sessions["support"]
        else []
    )
    if sessions["partners"]:
        pages.append(("partner", sessions["partners"][0]["url"]))
    for who, path in pages:
        cookie = sessions["support"][0] if who == "support" else sessions["partners"][0]["session"]
        for _ in range(4):
            request = urllib.request.Request(
                url + path, headers={"Cookie": f"{settings.SESSION_COOKIE_NAME}={cookie}"}
            )
            with urllib.request.urlopen(request, timeout=60) as response:
                if response.status != 200 or response.url.rstrip("/").endswith("login"):
                    raise RuntimeError(f"{path} answered {response.status} at {response.url}")
                response.read()


def _locust(
    url: str,
    workdir: Path,
    sessions_file: Path,
    support: int,
    partners: int,
    duration: int,
    support_wait: tuple[float, float],
):
    """Run locust headless; returns (pages, totals, locust's CPU seconds)."""
    users = support + partners
    prefix = workdir / "locust"
    cmd = [sys.executable, "-m", "locust", "-f", str(Path(__file__).with_name("locustfile.py")), "--headless"]
    # Users arrive over RAMP_UP_S seconds (not all in the same millisecond, which no real team does) and the
    # statistics restart once all are running (--reset-stats): the figures are the steady state.
    rate = max(1.0, users / RAMP_UP_S)
    cmd += ["--host", url, "--users", str(users), "--spawn-rate", f"{rate:g}"]
    cmd += ["--run-time", f"{duration + RAMP_UP_S}s", "--reset-stats"]
    cmd += ["--csv", str(prefix), "--only-summary", "--loglevel", "WARNING", "--stop-timeout", "5"]
    env = {
        **os.environ,
        "LOAD_SESSIONS": str(sessions_file),
        "LOAD_SUPPORT_USERS": str(support),
        "LOAD_PARTNER_ADMINS": str(partners),
        "LOAD_SUPPORT_WAIT": f"{support_wait[0]},{support_wait[1]}",
    }
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    done = subprocess.run(
        cmd, cwd=workdir, env=env, capture_output=True, text=True, timeout=duration + RAMP_UP_S + 120
    )
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    locust_cpu = round(after.ru_utime + after.ru_stime - before.ru_utime - before.ru_stime, 1)
    stats_file = Path(f"{prefix}_stats.csv")
    if not stats_file.exists():
        raise RuntimeError(f"locust did not run: {done.stderr[-1500:]}")
    pages, totals = [], None
    with open(stats_file, newline="") as fh:
        for row in csv.DictReader(fh):
            figures = {
                "page": row["Name"],
                "requests": int(row["Request Count"]),
                "failures": int(row["Failure Count"]),
                "rps": round(float(row["Requests/s"]), 1),
                "p50_ms": _ms(row.get("50%")),
                "p95_ms": _ms(row.get("95%")),
                "p99_ms": _ms(row.get("99%")),
                "mean_ms": round(float(row["Average Response Time"] or 0), 1),
            }
            if row["Name"] == "Aggregated":
                totals = figures
            else:
                pages.append(figures)
    order = [
        "dashboard list",
        "dashboard filtered",
        "dashboard search",
        "tenant page",
        "csv export (filtered)",
        "json api page",
        "progress fragment",
    ]
    pages.sort(key=lambda r: order.index(r["page"]) if r["page"] in order else len(order))
    return pages, totals, locust_cpu


def _ms(value: str | None) -> int | None:
    if value in (None, "", "N/A"):
        return None
    return int(float(value))
