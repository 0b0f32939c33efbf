"""Retention: old runs are pruned, every status change and each tenant's latest results are kept."""

from __future__ import annotations

import pytest

from onboarding import retention
from onboarding.models import CheckRun, DriftAlert, RepairPlan, StepResult

from .dashboard_factories import make_run, make_tenant, statuses

pytestmark = pytest.mark.django_db

DAY = 24.0


def daily(tenant, days_ago: list[int], status_of) -> dict[int, CheckRun]:
    """One full run a day, ``status_of(day)`` giving each day's statuses (a dict of overrides)."""
    return {d: make_run(tenant, statuses(**status_of(d)), hours_ago=d * DAY) for d in days_ago}


def test_it_keeps_every_status_change_and_the_latest_run_and_removes_the_rest():
    tenant = make_tenant("acme")

    # catalog: pass until day 150, fail from 150 to 121, pass again from 120; nothing else ever changes.
    def status_of(day):
        return {"catalog": "fail"} if 121 <= day <= 150 else {}

    runs = daily(tenant, list(range(200, -1, -1)), status_of)
    result = retention.prune_runs(days=90)

    left = set(CheckRun.objects.filter(tenant=tenant).values_list("pk", flat=True))
    # The first run (every step's first result), the drift (day 150) and the recovery (day 120) stay ...
    for day in (200, 150, 120):
        assert runs[day].pk in left, day
    # ... as does everything inside the window ...
    assert all(runs[d].pk in left for d in range(0, 90))
    # ... and the unchanged old ones are gone.
    for day in (199, 151, 149, 121, 119, 91):
        assert runs[day].pk not in left, day
    # days 200..90 are past the window (day 90 by the milliseconds the test took): 111 runs, 3 of them kept
    assert result.runs_deleted == 111 - 3 and result.runs_kept == 3
    assert result.results_deleted == result.runs_deleted * len(statuses())
    assert not StepResult.objects.filter(run_id__in=[runs[199].pk]).exists()


def test_consecutive_kept_runs_still_show_each_change():
    tenant = make_tenant("acme")
    runs = daily(tenant, list(range(150, 94, -1)), lambda d: {"agreements": "fail"} if d % 20 == 0 else {})
    retention.prune_runs(days=30)
    kept = list(CheckRun.objects.filter(tenant=tenant).order_by("created_at"))
    seen = []
    for earlier, later in zip(kept, kept[1:], strict=False):
        a = StepResult.objects.get(run=earlier, key="agreements").status
        b = StepResult.objects.get(run=later, key="agreements").status
        if a != b:
            seen.append((a, b))
    # days 140, 120, 100 fail: three drifts and three recoveries, each still visible between kept runs
    assert seen == [("pass", "fail"), ("fail", "pass")] * 3
    assert runs[150].pk in {r.pk for r in kept}


def test_a_tenant_not_checked_for_months_keeps_its_latest_results_per_step():
    tenant = make_tenant("quiet")
    full = make_run(tenant, statuses(), hours_ago=300 * DAY)
    make_run(tenant, statuses(), hours_ago=250 * DAY)
    # A later one-step run: the other steps' latest results live only in the older full run above.
    partial = make_run(tenant, {"catalog": "pass"}, hours_ago=200 * DAY)
    retention.prune_runs(days=90)
    left = set(CheckRun.objects.filter(tenant=tenant).values_list("pk", flat=True))
    assert partial.pk in left  # the tenant's latest run
    assert full.pk in left  # first results (and, for five steps, not superseded by anything that changed)
    latest_keys = set(StepResult.objects.filter(tenant=tenant).values_list("key", flat=True))
    assert latest_keys == set(statuses())


def test_runs_of_drift_alerts_active_runs_and_plans_survive():
    tenant = make_tenant("acme")
    old = [make_run(tenant, statuses(), hours_ago=(200 - i) * DAY) for i in range(5)]
    DriftAlert.objects.create(tenant=tenant, step="catalog", run=old[2])
    plan = RepairPlan.objects.create(tenant=tenant, step="catalog", source_run=old[3])
    active = make_run(tenant, {}, hours_ago=150 * DAY, status=CheckRun.Status.RUNNING)
    make_run(tenant, statuses(), hours_ago=1)
    retention.prune_runs(days=90)
    left = set(CheckRun.objects.filter(tenant=tenant).values_list("pk", flat=True))
    assert old[2].pk in left and active.pk in left
    assert old[3].pk not in left
    plan.refresh_from_db()
    assert plan.source_run is None  # the plan itself stays


def test_max_runs_bounds_one_call_and_the_next_call_goes_on():
    tenant = make_tenant("acme")
    daily(tenant, list(range(300, 100, -1)), lambda d: {})
    first = retention.prune_runs(days=90, batch_size=50, max_runs=100)
    assert not first.finished and first.runs_deleted == 100
    second = retention.prune_runs(days=90, batch_size=50)
    assert second.finished and second.runs_deleted == 200 - 2 - 100  # first and latest kept


def test_zero_days_keeps_everything(settings):
    settings.RUN_RETENTION_DAYS = 0
    tenant = make_tenant("acme")
    daily(tenant, [400, 300, 200], lambda d: {})
    assert retention.prune_runs().runs_deleted == 0
    assert CheckRun.objects.count() == 3


def test_tenants_are_pruned_independently():
    a, b = make_tenant("a"), make_tenant("b")
    daily(a, list(range(120, 95, -1)), lambda d: {})
    runs_b = daily(b, list(range(120, 95, -1)), lambda d: {"customers": "fail"} if d == 110 else {})
    retention.prune_runs(days=90)
    assert CheckRun.objects.filter(tenant=a).count() == 2  # first and latest
    left_b = set(CheckRun.objects.filter(tenant=b).values_list("pk", flat=True))
    assert {runs_b[120].pk, runs_b[110].pk, runs_b[109].pk, runs_b[96].pk} == left_b


def test_the_beat_schedules_pruning():
    from onboarding.celery import app
    from onboarding.tasks import prune_history

    names = {entry["task"] for entry in app.conf.beat_schedule.values()}
    assert prune_history.name in names
