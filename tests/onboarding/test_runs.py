"""onboarding.runs: start, claim, execute and finish check runs; what re-checks a change needs; the watchdog's
and the beat's parts for runs. (Runs through pages: test_wizard, test_results_follow_changes; through the real
worker: tests/reliability.)"""

from __future__ import annotations

from datetime import timedelta
from unittest import mock

import httpx
import pytest
from django.conf import settings
from django.utils import timezone

from connectwise.checks.base import Finding, Severity, Status, StepOutcome
from connectwise.checks.context import ReadHints
from onboarding import results, runs
from onboarding.cw import choices_for
from onboarding.models import (
    BillingCustomer,
    CheckRun,
    CompanyChoice,
    CompanyDirectory,
    Connection,
    StepResult,
    Tenant,
)
from tests.onboarding.wizard_helpers import (  # noqa: F401 (fixtures)
    connection_a_fixture,
    sandboxed_fixture,
)

pytestmark = pytest.mark.django_db

RUN_HARD_LIMIT = timedelta(seconds=settings.CHECK_RUN_TIME_LIMIT + 30)


@pytest.fixture(autouse=True)
def _no_worker():
    with mock.patch("onboarding.tasks.run_checks.delay") as delay:
        yield delay


def _status(run: CheckRun) -> str:
    return CheckRun.objects.values_list("status", flat=True).get(pk=run.pk)


def _active(tenant) -> CheckRun | None:
    return CheckRun.objects.filter(tenant=tenant, status__in=CheckRun.ACTIVE).first()


# Claims and the watchdog ---------------------------------------------------------------------------------------


@pytest.fixture
def running_run(tenant_a):
    run, _ = runs.start_run(tenant_a, enqueue=False)
    assert runs.claim(run.pk) is not None
    return run


def test_a_running_run_is_not_taken_over_while_its_worker_may_be_on_it(running_run):
    assert runs.claim(running_run.pk) is None


def test_a_redelivered_run_or_one_past_its_hard_limit_is_taken_over_once(running_run):
    claimed = runs.claim(running_run.pk, redelivered=True)
    assert claimed is not None and claimed.status == "running"
    later = timezone.now() + RUN_HARD_LIMIT + timedelta(seconds=1)
    assert runs.claim(running_run.pk, now=later) is not None
    assert runs.claim(running_run.pk, now=later) is None  # the second taker lost the compare-and-swap


def test_the_watchdog_measures_a_running_run_from_its_start_not_its_queueing(tenant_a):
    run, _ = runs.start_run(tenant_a, enqueue=False)
    long_ago = timezone.now() - timedelta(seconds=settings.CHECK_RUN_TIME_LIMIT + 600)
    CheckRun.objects.filter(pk=run.pk).update(created_at=long_ago)  # waited in a busy queue...
    runs.claim(run.pk)  # ...and started just now
    assert runs.close_stuck_runs() == 0
    assert _status(run) == "running"


def test_the_watchdog_closes_a_queued_run_whose_message_was_lost(tenant_a):
    run, _ = runs.start_run(tenant_a, enqueue=False)
    CheckRun.objects.filter(pk=run.pk).update(
        created_at=timezone.now() - timedelta(seconds=settings.CHECK_RUN_TIME_LIMIT + 61)
    )
    assert runs.close_stuck_runs() == 1
    assert _status(run) == "error"


# Failing, holding back, error details ----------------------------------------------------------------------------


def test_a_failed_run_asked_to_wait_holds_the_schedule_back(tenant_a):
    Tenant.objects.filter(pk=tenant_a.pk).update(next_check_at=timezone.now())
    run, _ = runs.start_run(tenant_a, trigger=CheckRun.Trigger.MANUAL, enqueue=False)
    runs.fail(run, "rate limited", detail={"kind": "RateLimited", "status": 429, "retry_after": 600})
    assert Tenant.objects.get(pk=tenant_a.pk).next_check_at >= timezone.now() + timedelta(seconds=590)


def test_a_failed_run_ends_once(tenant_a):
    run, _ = runs.start_run(tenant_a, enqueue=False)
    runs.fail(run, "first")
    assert runs.fail(run, "second").error == "first"  # a finished run keeps its first ending


def test_step_error_details_keep_the_first_connectwise_error_of_each_errored_step():
    detail = {"kind": "ServerError", "status": 500, "message": "boom"}
    error = Finding("catalog.read_failed", Severity.ERROR, "Catalog", "x", "y", data={"error": detail})
    other = Finding("catalog.read_failed", Severity.ERROR, "Other", "x", "y", data={"error": {"status": 503}})
    outcomes = [
        StepOutcome("catalog", Status.ERROR, findings=[error, other]),
        StepOutcome("agreements", Status.FAIL, findings=[error]),  # not an error outcome
        StepOutcome("setup_tables", Status.ERROR),  # no detail to keep
    ]
    assert runs.step_error_details(outcomes) == {"catalog": detail}


# What a run remembers for the next one ---------------------------------------------------------------------------


def test_a_run_remembers_the_codebase_and_counts_unless_the_connection_changed(connection_a):
    hints = ReadHints(observed={"companies": 12})
    runs.remember_reads(connection_a, "v2025_1", hints)
    stored = Connection.objects.get(pk=connection_a.pk)
    assert stored.codebase == "v2025_1" and stored.read_hints == hints.to_stored()

    stale = Connection.objects.get(pk=connection_a.pk)
    Connection.objects.filter(pk=stale.pk).update(codebase="", updated_at=timezone.now())  # saved meanwhile
    runs.remember_reads(stale, "v2024_9", hints)
    assert Connection.objects.get(pk=stale.pk).codebase == ""


# The beat ---------------------------------------------------------------------------------------------------------


def test_due_runs_start_for_connected_tenants_only_and_move_their_next_check(
    tenant_a, connection_a, settings
):
    settings.VERIFY_INTERVAL_HOURS = 24
    unconnected = Tenant.objects.create(slug="unconnected", name="Unconnected")
    now = timezone.now()
    assert runs.start_due_runs(now=now) == 1
    run = _active(tenant_a)
    assert run is not None and run.trigger == CheckRun.Trigger.SCHEDULE
    assert not CheckRun.objects.filter(tenant=unconnected).exists()
    next_check = Tenant.objects.get(pk=tenant_a.pk).next_check_at
    assert now + timedelta(hours=22.7) <= next_check <= now + timedelta(hours=25.3)
    assert runs.start_due_runs(now=now) == 0  # not due again, and one run at a time


# Follow-up runs after a change ------------------------------------------------------------------------------------


def test_with_dependents_follows_what_each_step_reads():
    assert runs.with_dependents(["customers"]) == [
        k for k in ("customers", "agreements", "existing_billing") if k in runs.STEP_KEYS
    ]
    assert runs.with_dependents(["setup_tables"]) == ["catalog", "setup_tables"]
    assert runs.with_dependents(["catalog"]) == ["catalog"]
    assert runs.with_dependents(["connection"]) == list(runs.STEP_KEYS)
    assert runs.with_dependents(["security_role"]) == list(runs.STEP_KEYS)
    assert runs.with_dependents(["nonsense"]) == []


def test_finish_queues_the_follow_up_with_the_results(
    tenant_a, sandboxed, django_capture_on_commit_callbacks
):
    run, _ = runs.start_run(tenant_a, steps=["customers"], enqueue=False)
    claimed = runs.claim(run.pk)
    original = runs.choices_digests

    def read_before_the_change(choices):
        digests = original(choices)
        CompanyChoice.objects.get_or_create(tenant=tenant_a, cw_company_id=7, defaults={"name": "Adventure"})
        return digests

    with mock.patch("onboarding.runs.choices_digests", side_effect=read_before_the_change):
        with django_capture_on_commit_callbacks(execute=True):
            runs.execute_run(claimed)
    follow = _active(tenant_a)
    assert follow is not None and follow.trigger == CheckRun.Trigger.CHANGE
    assert follow.requested_steps()[0] == "customers"


def test_an_unchanged_result_starts_no_follow_up(tenant_a, sandboxed, django_capture_on_commit_callbacks):
    CompanyChoice.objects.create(tenant=tenant_a, cw_company_id=7, name="Adventure Works")
    run, _ = runs.start_run(tenant_a, steps=["customers", "agreements"], enqueue=False)
    with django_capture_on_commit_callbacks(execute=True):
        runs.execute_run(runs.claim(run.pk))
    assert _active(tenant_a) is None
    assert runs.stale_steps(tenant_a, results.latest_results(tenant_a)) == set()


def test_a_run_reads_the_chosen_companies_while_its_first_calls_are_on_the_wire(
    tenant_a, sandboxed, monkeypatch
):
    """Issue 16: the chosen companies' rows (thousands for a large tenant) are read once the first wave of calls
    is on the wire, not before it; what the wave reads depends only on whether any is chosen (one EXISTS)."""
    from django.db import connection

    from connectwise.sandbox import sandbox_transport
    from onboarding import cw

    CompanyChoice.objects.create(tenant=tenant_a, cw_company_id=7, name="Adventure Works")
    events: list[str] = []

    class Logged(httpx.BaseTransport):
        def __init__(self):
            self.inner = sandbox_transport(sandboxed)

        def handle_request(self, request):
            events.append("call")
            return self.inner.handle_request(request)

    def log_choice_queries(execute, sql, params, many, context):
        if "onboarding_companychoice" in sql and "SELECT" in sql.upper():
            events.append("rows" if '"motion"' in sql else "exists")
        return execute(sql, params, many, context)

    monkeypatch.setattr(cw, "TRANSPORT_FACTORY", Logged)
    run, _ = runs.start_run(tenant_a, steps=["customers"], enqueue=False)
    with connection.execute_wrapper(log_choice_queries):
        run = runs.execute_run(runs.claim(run.pk))
    assert run.status == "done"
    first_call = events.index("call")
    assert events.index("exists") < first_call < events.index("rows"), events
    customers = StepResult.objects.get(run=run, key="customers")
    assert "1 companies chosen" in customers.summary


def test_chosen_companies_answer_whether_any_before_reading_them(tenant_a, django_assert_num_queries):
    CompanyChoice.objects.create(tenant=tenant_a, cw_company_id=7, motion="annual", agreement_id=70)
    CompanyChoice.objects.create(tenant=tenant_a, cw_company_id=3)
    with django_assert_num_queries(2):  # the EXISTS, and the billing customers
        choices = choices_for(tenant_a, lazy=True)
        assert choices.companies
    eager = choices_for(tenant_a).companies
    with django_assert_num_queries(1):  # the rows, once
        assert sorted(choices.companies) == sorted(eager)
        assert len(choices.companies) == 2 and choices.companies[0] in choices.companies
    empty = Tenant.objects.create(slug="empty", name="Empty")
    assert not choices_for(empty, lazy=True).companies
    assert runs.choices_digests(choices_for(tenant_a, lazy=True)) == runs.choices_digests(
        choices_for(tenant_a)
    )


def test_no_garbage_collection_runs_until_the_results_are_stored(tenant_a, sandboxed, monkeypatch):
    """Issue 16: the cyclic collector is paused from the first read until the results are stored, and on again
    afterwards (also when storing fails)."""
    import gc

    seen: list[tuple[str, bool]] = []
    real_finish, real_run_steps = runs.finish, runs.run_steps

    def finish(*args, **kwargs):
        seen.append(("finish starts", gc.isenabled()))
        try:
            return real_finish(*args, **kwargs)
        finally:
            seen.append(("finish ends", gc.isenabled()))

    def run_steps(*args, **kwargs):
        seen.append(("checks start", gc.isenabled()))
        return real_run_steps(*args, **kwargs)

    monkeypatch.setattr(runs, "finish", finish)
    monkeypatch.setattr(runs, "run_steps", run_steps)
    CompanyChoice.objects.create(tenant=tenant_a, cw_company_id=7, name="Adventure Works")
    run, _ = runs.start_run(tenant_a, enqueue=False)
    assert gc.isenabled()
    run = runs.execute_run(runs.claim(run.pk))
    assert run.status == "done" and gc.isenabled()
    assert seen == [("checks start", False), ("finish starts", False), ("finish ends", False)]

    monkeypatch.setattr(runs, "finish", mock.Mock(side_effect=RuntimeError("boom")))
    again, _ = runs.start_run(tenant_a, enqueue=False)
    with pytest.raises(RuntimeError):
        runs.execute_run(runs.claim(again.pk))
    assert gc.isenabled()


# The company list behind the customers page ---------------------------------------------------------------------


def test_an_unchanged_company_list_is_not_rebuilt_and_a_changed_one_is_written(tenant_a, sandboxed):
    def verify():
        run, _ = runs.start_run(tenant_a, steps=["customers"], enqueue=False)
        return runs.execute_run(runs.claim(run.pk))

    verify()
    tenant = Tenant.objects.get(pk=tenant_a.pk)
    rows = {d.cw_company_id: d.name for d in CompanyDirectory.objects.filter(tenant=tenant)}
    assert rows and len(tenant.directory_source) == 32
    first_read, first_pks = tenant.directory_refreshed_at, set(tenant.directory.values_list("pk", flat=True))

    with mock.patch("connectwise.checks.customers._directory_row") as build:
        verify()
    assert not build.called  # same data, same dates: not built, not written
    tenant = Tenant.objects.get(pk=tenant_a.pk)
    assert set(tenant.directory.values_list("pk", flat=True)) == first_pks
    assert tenant.directory_refreshed_at > first_read

    table = sandboxed.tenant("brokenco").tables["company/companies"]
    cid = next(iter(table.rows))
    table.replace({**table.rows[cid], "name": "Renamed Company"})
    verify()
    tenant = Tenant.objects.get(pk=tenant_a.pk)
    assert tenant.directory.get(cw_company_id=cid).name == "Renamed Company"
    assert {d.cw_company_id for d in tenant.directory.all()} == set(rows)


def test_the_stored_choices_digest_as_rows_what_the_run_judged(tenant_a):
    CompanyChoice.objects.create(tenant=tenant_a, cw_company_id=7, motion="annual", agreement_id=70)
    CompanyChoice.objects.create(tenant=tenant_a, cw_company_id=3)
    BillingCustomer.objects.create(tenant=tenant_a, name="Unmatched Ltd")
    judged = runs.choices_digests(choices_for(tenant_a))
    assert runs.current_choices_digests(tenant_a) == judged
    CompanyChoice.objects.filter(tenant=tenant_a, cw_company_id=7).update(agreement_id=None)
    changed = runs.current_choices_digests(tenant_a)
    assert changed["customers"] == judged["customers"] and changed["agreements"] != judged["agreements"]
    BillingCustomer.objects.create(tenant=tenant_a, name="Another Ltd")
    assert runs.current_choices_digests(tenant_a)["customers"] != judged["customers"]


# Drift bookkeeping at the end of a run -------------------------------------------------------------------------


def _passing_run(tenant):
    run, _ = runs.start_run(tenant, enqueue=False)
    outcomes = [StepOutcome(key=k, status=Status.PASS, summary="ok") for k in runs.STEP_KEYS]
    return runs.claim(run.pk), outcomes


def test_a_passing_run_with_no_open_drift_writes_no_drift_alert(tenant_a):
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    from onboarding.models import DriftAlert

    claimed, outcomes = _passing_run(tenant_a)
    with CaptureQueriesContext(connection) as queries:
        runs.finish(claimed, outcomes, calls=0, retries=0, started=0.0)
    touching = [q["sql"] for q in queries.captured_queries if DriftAlert._meta.db_table in q["sql"]]
    writes = [sql for sql in touching if not sql.startswith("SELECT")]
    assert writes == []  # no UPDATE per passing step when nothing is open
    assert len(touching) <= 2, touching  # the open alerts once, the run's own (webhooks) once


def test_a_passing_run_resolves_the_open_drift_of_its_steps_only(tenant_a):
    from onboarding.models import DriftAlert

    first, _ = _passing_run(tenant_a)
    runs.finish(first, [], calls=0, retries=0, started=0.0)
    open_alert = DriftAlert.objects.create(
        tenant=tenant_a, step="catalog", run=first, detected_at=timezone.now()
    )
    run, _ = runs.start_run(tenant_a, steps=["customers"], enqueue=False)
    claimed = runs.claim(run.pk)
    runs.finish(claimed, [StepOutcome(key="customers", status=Status.PASS)], calls=0, retries=0, started=0.0)
    open_alert.refresh_from_db()
    assert open_alert.resolved_at is None  # catalog's alert stays open: the run did not judge catalog
    assert Tenant.objects.get(pk=tenant_a.pk).drift_steps == ["catalog"]
    run, _ = runs.start_run(tenant_a, enqueue=False)
    claimed, outcomes = runs.claim(run.pk), [StepOutcome(key=k, status=Status.PASS) for k in runs.STEP_KEYS]
    runs.finish(claimed, outcomes, calls=0, retries=0, started=0.0)
    open_alert.refresh_from_db()
    assert open_alert.resolved_at is not None
    assert Tenant.objects.get(pk=tenant_a.pk).drift_steps == []
