"""What "stale", "drift" and "readiness" mean in queries, in one place for the dashboard, its exports and the
monitoring e-mails. Everything here reads the denormalised Tenant columns only (see runs.finish), so a list of any
length costs one query and the overview (summary cards and funnel) one aggregate, which the dashboard shares
between requests for a few seconds (``cached_overview``).
"""

from __future__ import annotations

from datetime import datetime

from django.conf import settings
from django.core.cache import cache
from django.db.models import (
    BooleanField,
    Case,
    Count,
    Exists,
    F,
    IntegerField,
    OuterRef,
    Q,
    QuerySet,
    Value,
    When,
)
from django.utils import timezone

from connectwise.checks.base import OK_STATUSES
from connectwise.checks.registry import READINESS_KEYS as STEP_KEYS  # the advisory step is not in the funnel

from .models import Connection, DriftAlert, Tenant, stale_cutoff

OK = sorted(str(s) for s in OK_STATUSES)
OVERVIEW_CACHE_KEY = "monitoring:overview:v1"
# Never checked first, then the longest unchecked: the same on SQLite and PostgreSQL (which differ by default).
F_LAST_CHECKED_NULLS_FIRST = F("last_checked_at").asc(nulls_first=True)


def connected_q() -> Q:
    return Q(Exists(Connection.objects.filter(tenant=OuterRef("pk"))))


def stale_q(now: datetime | None = None) -> Q:
    """The stale rule (``models.stale_cutoff``) as a query: connected and not verified since the cutoff (never
    verified counts); ``Tenant.is_stale`` is the same rule for one row."""
    cutoff = stale_cutoff(now)
    return connected_q() & (Q(last_checked_at__isnull=True) | Q(last_checked_at__lt=cutoff))


def undelivered_q() -> Q:
    """The tenant has an open drift alert whose e-mail failed and has not been delivered since (alerts.py retries
    it; the dashboard lists these tenants meanwhile)."""
    return Q(
        Exists(
            DriftAlert.objects.filter(
                tenant=OuterRef("pk"),
                notified_at__isnull=True,
                resolved_at__isnull=True,
                mail_failed_at__isnull=False,
            )
        )
    )


def step_ok_q(key: str) -> Q:
    """The tenant's latest status of this step is pass or warn (a JSON key lookup; SQLite and PostgreSQL)."""
    return Q(**{f"step_statuses__{key}__in": OK})


def passed_steps_expression():
    """How many of the six steps pass (or warn), as one SQL expression: the readiness score."""
    parts = [
        Case(When(step_ok_q(k), then=Value(1)), default=Value(0), output_field=IntegerField())
        for k in STEP_KEYS
    ]
    total = parts[0]
    for part in parts[1:]:
        total = total + part
    return total


def with_markers(qs: QuerySet[Tenant], now: datetime | None = None) -> QuerySet[Tenant]:
    """Annotate connected, stale and passed (readiness score) so that templates never query per row."""
    return qs.annotate(
        connected=Exists(Connection.objects.filter(tenant=OuterRef("pk"))),
        stale=Case(When(stale_q(now), then=Value(True)), default=Value(False), output_field=BooleanField()),
        passed=passed_steps_expression(),
    )


def overview(qs: QuerySet[Tenant] | None = None, now: datetime | None = None) -> dict:
    """Summary counts and the funnel in ONE aggregate query.

    ``passing[key]``: tenants whose latest status of that step is pass or warn. ``through[key]``: tenants that pass
    this step and every step before it (first_open_step is a later step, or none) - the funnel proper.
    """
    qs = Tenant.objects.all() if qs is None else qs
    aggregates = {
        "total": Count("pk"),
        "ready": Count("pk", filter=Q(ready=True)),
        "stale": Count("pk", filter=stale_q(now)),
        "drift": Count("pk", filter=Q(drift_since__isnull=False)),
        "errors": Count("pk", filter=Q(has_error=True)),
        "never": Count("pk", filter=Q(last_checked_at__isnull=True)),
        "undelivered": Count("pk", filter=undelivered_q()),
    }
    for i, key in enumerate(STEP_KEYS):
        aggregates[f"passing__{key}"] = Count("pk", filter=step_ok_q(key))
        # Passed all steps up to this one = the first open step (if any) comes later; ready tenants have none.
        aggregates[f"through__{key}"] = Count(
            "pk", filter=Q(last_checked_at__isnull=False) & ~Q(first_open_step__in=STEP_KEYS[: i + 1])
        )
    row = qs.aggregate(**aggregates)
    return {
        "total": row["total"],
        "ready": row["ready"],
        "stale": row["stale"],
        "drift": row["drift"],
        "errors": row["errors"],
        "never": row["never"],
        "undelivered": row["undelivered"],
        "passing": {k: row[f"passing__{k}"] for k in STEP_KEYS},
        "through": {k: row[f"through__{k}"] for k in STEP_KEYS},
    }


def cached_overview(now: datetime | None = None) -> dict:
    """``overview()`` of every tenant, aggregated at most once per ``settings.DASHBOARD_COUNTS_SECONDS`` and shared
    by every web process through the cache (the dashboard list's costliest query: a scan of every tenant with
    twenty filtered counts). The dict carries ``counted_at`` (an aware datetime). With 0 seconds it counts on
    every request. The list and its filters never come from here: they are always current."""
    seconds = settings.DASHBOARD_COUNTS_SECONDS
    now = now or timezone.now()
    if seconds <= 0:
        return {**overview(now=now), "counted_at": now}
    counts = cache.get(OVERVIEW_CACHE_KEY)
    if counts is None:
        counts = {**overview(now=now), "counted_at": now}
        cache.set(OVERVIEW_CACHE_KEY, counts, seconds)
    return counts
