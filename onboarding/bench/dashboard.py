"""``manage.py benchmark dashboard --tenants N``: the support dashboard at scale.

Builds N tenants (six step statuses each, a run history with step results, connections, audit events, some
stale, drifting and never-checked tenants) in a scratch database with bulk_create, then requests the list, a
filtered list, a tenant page, the CSV export and the JSON endpoint as a support user through django.test.Client,
and reports for each the number of SQL queries and the median server time. The target: the query counts do not
depend on N (PRODUCT.md, non-functional targets).

The data set is built by ``dashboard_data.build``; this module measures the pages and the retention of a simulated
history.
"""

from __future__ import annotations

import random
import time
import uuid
from datetime import timedelta

from django.conf import settings
from django.contrib.auth import get_user_model
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext, override_settings
from django.urls import reverse
from django.utils import timezone

from connectwise.checks.registry import READINESS_KEYS as STEP_KEYS  # the six that decide readiness

from ..models import CheckRun, StepResult, Tenant
from ..retention import prune_runs
from . import scratch_database, timed
from .dashboard_data import BATCH, build


def add_arguments(parser) -> None:
    parser.add_argument(
        "--tenants", type=int, default=10_000, help="How many tenants to build (default 10000)."
    )
    parser.add_argument(
        "--runs-per-tenant",
        type=int,
        default=3,
        help="Finished runs per checked tenant, 6 step results each.",
    )
    parser.add_argument(
        "--repeat", type=int, default=5, help="Requests per page; the median time is reported."
    )
    parser.add_argument("--seed", type=int, default=1, help="Random seed of the generated data.")
    parser.add_argument(
        "--retention-tenants",
        type=int,
        default=200,
        help="Tenants given a simulated year of daily runs to measure pruning (0 skips it; default 200).",
    )
    parser.add_argument(
        "--retention-days", type=int, default=365, help="Days of daily runs in the simulation (default 365)."
    )


def _pages(detail_slug: str) -> list[tuple[str, str]]:
    dashboard = reverse("dashboard")
    return [
        ("dashboard list", dashboard),
        ("filtered list", f"{dashboard}?show=not_ready&step=catalog&sort=-last_checked&page=2"),
        ("search, stale, by readiness", f"{dashboard}?q=partner&show=stale&sort=readiness"),
        ("tenant page", reverse("support_tenant", args=[detail_slug])),
        ("csv export (all)", reverse("support_export")),
        ("json api, page 2", f"{reverse('support_api_tenants')}?page=2"),
    ]


def _fetch(client: Client, url: str) -> tuple[int, int]:
    response = client.get(url)
    if response.streaming:
        size = sum(len(chunk) for chunk in response.streaming_content)
    else:
        size = len(response.content)
    return response.status_code, size


def measure(detail_slug: str, repeat: int) -> list[dict]:
    user = get_user_model().objects.create_user(
        username="bench-support", email="bench-support@example.invalid", is_support=True
    )
    client = Client()
    client.force_login(user)
    figures = []
    for name, url in _pages(detail_slug):
        status, size = _fetch(client, url)  # warm up (templates, caches)
        if status != 200:
            raise RuntimeError(f"{url} answered {status}")
        counts = []
        for _ in range(2):
            with CaptureQueriesContext(connection) as ctx:
                _fetch(client, url)
            counts.append(len(ctx))
        median, samples = timed(lambda url=url: _fetch(client, url), repeat)
        figures.append(
            {
                "page": name,
                "url": url,
                "queries": max(counts),
                "median_ms": round(median, 1),
                "min_ms": round(min(samples), 1),
                "max_ms": round(max(samples), 1),
                "bytes": size,
            }
        )
    return figures


def simulate_retention(tenants: int, days: int, seed: int, keep_days: int) -> dict:
    """A simulated history: ``tenants`` new tenants, one full run a day for ``days`` days (a step flips status on
    about 2% of runs, so drift and recovery happen), then ``retention.prune_runs(days=keep_days)``. Returns table
    sizes before and after, the runs kept for their changes, and the prune's duration; figures per 10,000 tenants
    are extrapolated linearly (every tenant's history is independent)."""
    rng = random.Random(seed + 1)
    now = timezone.now()
    made = Tenant.objects.bulk_create(
        [Tenant(slug=f"history-{i:05d}", name=f"History {i:05d}") for i in range(tenants)], batch_size=BATCH
    )
    ids = (
        [t.pk for t in made]
        if made and made[0].pk
        else list(Tenant.objects.filter(slug__startswith="history-").values_list("pk", flat=True))
    )
    before_runs, before_results = CheckRun.objects.count(), StepResult.objects.count()
    for tenant_id in ids:
        statuses = {k: "pass" for k in STEP_KEYS}
        runs, per_run = [], []
        for day in range(days, 0, -1):
            if rng.random() < 0.02:
                key = rng.choice(STEP_KEYS[1:])
                statuses[key] = "fail" if statuses[key] == "pass" else "pass"
            at = now - timedelta(days=day)
            runs.append(
                CheckRun(
                    uuid=uuid.uuid4(),
                    tenant_id=tenant_id,
                    trigger=CheckRun.Trigger.SCHEDULE,
                    status=CheckRun.Status.DONE,
                    created_at=at,
                    started_at=at,
                    finished_at=at,
                )
            )
            per_run.append((dict(statuses), at))
        CheckRun.objects.bulk_create(runs, batch_size=BATCH)
        if runs[0].pk is None:
            pks = dict(CheckRun.objects.filter(tenant_id=tenant_id).values_list("uuid", "pk"))
            for r in runs:
                r.pk = r.id = pks[r.uuid]
        StepResult.objects.bulk_create(
            [
                StepResult(run_id=r.pk, tenant_id=tenant_id, key=k, status=st[k], created_at=at)
                for r, (st, at) in zip(runs, per_run, strict=True)
                for k in STEP_KEYS
            ],
            batch_size=BATCH,
        )
    grown_runs = CheckRun.objects.count() - before_runs
    grown_results = StepResult.objects.count() - before_results
    t0 = time.perf_counter()
    pruned = prune_runs(now, days=keep_days)
    prune_s = time.perf_counter() - t0
    left_runs = CheckRun.objects.filter(tenant_id__in=ids).count()
    left_results = StepResult.objects.filter(tenant_id__in=ids).count()
    scale = 10_000 / tenants
    return {
        "tenants": tenants,
        "days": days,
        "retention_days": keep_days,
        "before": {"runs": grown_runs, "step_results": grown_results},
        "after": {"runs": left_runs, "step_results": left_results},
        "kept_past_window": pruned.runs_kept,
        "deleted": {"runs": pruned.runs_deleted, "step_results": pruned.results_deleted},
        "prune_seconds": round(prune_s, 2),
        "per_10000_tenants": {
            "before": {"runs": round(grown_runs * scale), "step_results": round(grown_results * scale)},
            "after": {"runs": round(left_runs * scale), "step_results": round(left_results * scale)},
        },
    }


def run(options: dict) -> dict:
    n = options["tenants"]
    if n < 1:
        raise ValueError("--tenants must be at least 1")
    started = time.perf_counter()
    with scratch_database() as name, override_settings(ALLOWED_HOSTS=["testserver"]):
        vendor = connection.vendor
        t0 = time.perf_counter()
        built = build(n, max(0, options["runs_per_tenant"]), options["seed"])
        build_s = time.perf_counter() - t0
        pages = measure(built["detail_slug"], max(1, options["repeat"]))
        history = None
        if options.get("retention_tenants", 0) > 0:
            history = simulate_retention(
                options["retention_tenants"],
                max(1, options.get("retention_days", 365)),
                options["seed"],
                settings.RUN_RETENTION_DAYS or 90,
            )
    return {
        "benchmark": "dashboard",
        "database": vendor,
        "scratch_database": name if vendor != "sqlite" else "temporary SQLite file",
        "tenants": n,
        "runs_per_tenant": options["runs_per_tenant"],
        "rows": built["counts"],
        "build_seconds": round(build_s, 1),
        "total_seconds": round(time.perf_counter() - started, 1),
        "repeat": options["repeat"],
        "pages": pages,
        "retention": history,
    }


def print_table(result: dict, write=print) -> None:
    rows = result["rows"]
    write(
        f"Dashboard benchmark: {result['tenants']:,} tenants, {rows['runs']:,} runs, {rows['step_results']:,} step "
        f"results on {result['database']} (built in {result['build_seconds']} s, total {result['total_seconds']} s)"
    )
    write(
        f"Server time is the median of {result['repeat']} requests through django.test.Client as a support user."
    )
    write("")
    width = max(len(p["page"]) for p in result["pages"])
    write(f"{'page':<{width}}  {'queries':>7}  {'median ms':>9}  {'min ms':>8}  {'max ms':>8}  {'bytes':>10}")
    for p in result["pages"]:
        write(
            f"{p['page']:<{width}}  {p['queries']:>7}  {p['median_ms']:>9.1f}  {p['min_ms']:>8.1f}  "
            f"{p['max_ms']:>8.1f}  {p['bytes']:>10,}"
        )
    history = result.get("retention")
    if history:
        write("")
        write(
            f"History: {history['tenants']:,} tenants checked daily for {history['days']} days, then pruned to "
            f"{history['retention_days']} days (every status change and each tenant's latest run kept) in "
            f"{history['prune_seconds']} s"
        )
        scaled = history["per_10000_tenants"]
        write(f"{'':<12}  {'runs':>10}  {'step results':>13}  {'runs per 10k':>12}  {'results per 10k':>15}")
        for label in ("before", "after"):
            write(
                f"{label:<12}  {history[label]['runs']:>10,}  {history[label]['step_results']:>13,}  "
                f"{scaled[label]['runs']:>12,}  {scaled[label]['step_results']:>15,}"
            )
