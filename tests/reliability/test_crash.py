"""A worker killed with SIGKILL mid-run or mid-apply leaves nothing "running" or "applying" for good: a
redelivered task takes the work over (runs.claim / repairs.claim_for_apply), or the watchdog closes the run as
error and re-enqueues the plan, whose resumed apply creates nothing twice. With the real worker process."""

from __future__ import annotations

from datetime import timedelta
from unittest import mock
from urllib.parse import urlsplit

import pytest
from django.conf import settings
from django.utils import timezone

from connectwise.checks.registry import STEP_KEYS
from onboarding import repairs, runs, tasks
from onboarding.models import CheckRun, CompanyChoice, Connection, RepairOperation, RepairPlan, Tenant

from .conftest import enqueue, sandbox_call, wait_until

RUN_HARD_LIMIT = timedelta(seconds=settings.CHECK_RUN_TIME_LIMIT + 30)


def _tenant(sandbox: str, company: str, public: str, private: str, companies=()) -> Tenant:
    tenant = Tenant.objects.create(slug=f"crash-{company}", name=f"Crash {company}")
    conn = Connection(tenant=tenant, site=urlsplit(sandbox).netloc, company_id=company, public_key=public)
    conn.set_private_key(private)
    conn.save()
    CompanyChoice.objects.bulk_create([CompanyChoice(tenant=tenant, cw_company_id=c) for c in companies])
    return Tenant.objects.select_related("connection").get(pk=tenant.pk)


def _healthy(sandbox: str) -> Tenant:
    return _tenant(sandbox, "acme", "acmepub", "acmepriv-0123456789", companies=range(1, 13))


def _status(model, pk) -> str:
    return model.objects.values_list("status", flat=True).get(pk=pk)


def _start_slow_run(stack) -> CheckRun:
    """A full check with 1.5 s on every answer, killed while its reads are on the wire: mid-run for sure (the
    connection's system/info goes out in one wave with every other read, after companyinfo)."""
    sandbox_call(stack["sandbox"], "/_sandbox/faults", {"company": "acme", "latencyMs": 1500})
    sandbox_call(stack["sandbox"], "/_sandbox/requests", method="DELETE")
    run, created = runs.start_run(_healthy(stack["sandbox"]), enqueue=False)
    assert created
    enqueue(tasks.run_checks, run.pk)
    wait_until(lambda: _status(CheckRun, run.pk) == "running", 30, what="the worker to start the run")

    def reads_sent() -> bool:
        log = sandbox_call(stack["sandbox"], "/_sandbox/requests", method="GET") or {}
        return any(key.endswith("system/info") for key in (log.get("acme") or {}))

    wait_until(reads_sent, 30, what="the run's reads to reach the sandbox")
    stack["worker"].kill()
    return run


@pytest.mark.slow
def test_a_run_whose_worker_was_killed_is_closed_by_the_watchdog(rel_stack):
    run = _start_slow_run(rel_stack)
    assert _status(CheckRun, run.pk) == "running"  # the killed worker cannot close it itself
    rel_stack["worker"].start()
    sandbox_call(rel_stack["sandbox"], "/_sandbox/faults", {"company": "acme", "latencyMs": 0})

    # Nothing redelivers it yet (the broker restores an unacknowledged message only after its visibility
    # timeout), and the watchdog leaves it alone until its time limit has passed...
    assert runs.close_stuck_runs() == 0
    assert _status(CheckRun, run.pk) == "running"
    # ...after which it is closed as error, with a reason, and the tenant can check again.
    later = timezone.now() + timedelta(seconds=settings.CHECK_RUN_TIME_LIMIT + 61)
    assert runs.close_stuck_runs(now=later) == 1
    run.refresh_from_db()
    assert run.status == "error" and "did not finish in time" in run.error and run.finished_at
    _, created = runs.start_run(run.tenant, enqueue=False)
    assert created


@pytest.mark.slow
def test_a_redelivered_run_is_taken_over_and_finished_by_the_new_worker(rel_stack):
    run = _start_slow_run(rel_stack)
    rel_stack["worker"].start()
    sandbox_call(rel_stack["sandbox"], "/_sandbox/faults", {"company": "acme", "latencyMs": 0})

    # Once the hard time limit has passed since it started, the dead worker cannot be on it any more: the
    # broker's redelivery (acks_late) is taken over and the run finishes with real results.
    CheckRun.objects.filter(pk=run.pk).update(
        started_at=timezone.now() - RUN_HARD_LIMIT - timedelta(seconds=5)
    )
    enqueue(tasks.run_checks, run.pk)
    wait_until(lambda: _status(CheckRun, run.pk) == "done", 60, what="the new worker to finish the run")
    run.refresh_from_db()
    statuses = {r.key: r.status for r in run.results.all()}
    assert set(statuses) == set(STEP_KEYS) and statuses["connection"] == "pass", statuses
    assert "error" not in statuses.values(), statuses
    assert run.api_calls > 0 and run.finished_at


@pytest.mark.slow
def test_a_plan_whose_worker_was_killed_mid_apply_is_resumed_without_duplicates(rel_stack):
    sandbox = rel_stack["sandbox"]
    tenant = _tenant(sandbox, "bareco", "barepub", "barepriv-0123456789")
    plan = repairs.create_plan(tenant, "setup_tables")
    creates = list(plan.operations.filter(method="POST").values_list("path", flat=True))
    assert len(creates) >= 3  # category, subcategory, product type, unit of measure
    assert repairs.approve(plan, by="operator")
    sandbox_call(sandbox, "/_sandbox/requests", method="DELETE")
    # Every create is applied at once and answered over 3 s: the kill lands after a write, before its answer.
    sandbox_call(sandbox, "/_sandbox/faults", {"company": "bareco", "methods": ["POST"], "slowBodyMs": 3000})

    enqueue(tasks.apply_plan, plan.pk)
    wait_until(lambda: _posts(sandbox), 30, what="the first create to reach the sandbox")
    rel_stack["worker"].kill()
    assert _status(RepairPlan, plan.pk) == "applying"
    sent_before = _posts(sandbox)
    assert sum(sent_before.values()) >= 1

    rel_stack["worker"].start()
    sandbox_call(sandbox, "/_sandbox/faults", {"company": "bareco"})
    # The watchdog re-enqueues a plan left "applying" past its time limit (simulated by moving started_at back).
    RepairPlan.objects.filter(pk=plan.pk).update(
        started_at=timezone.now() - timedelta(seconds=settings.PLAN_APPLY_TIME_LIMIT + 61)
    )
    with mock.patch.object(tasks.apply_plan, "delay", side_effect=lambda pk: enqueue(tasks.apply_plan, pk)):
        tasks.watchdog()
    wait_until(lambda: _status(RepairPlan, plan.pk) == "applied", 60, what="the resumed apply to finish")

    statuses = list(plan.operations.values_list("status", flat=True))
    assert set(statuses) <= {RepairOperation.Status.DONE, RepairOperation.Status.ALREADY}
    # Each create was sent once in all: the one whose answer was lost was found by the re-query, not re-sent.
    posts = _posts(sandbox)
    assert sorted(posts) == sorted(creates), posts
    assert all(n == 1 for n in posts.values()), posts


@pytest.mark.slow
def test_a_combined_plan_whose_worker_was_killed_mid_apply_creates_each_agreement_once(rel_stack):
    """Issue 18: "Fix everything that can be fixed" on bare.json, with two annual customers whose one-time
    agreements the plan creates from the defaults; the worker is killed after a create was written and before
    its answer, and the resumed plan sends no create twice."""
    sandbox = rel_stack["sandbox"]
    tenant = _tenant(sandbox, "bareco", "barepub", "barepriv-0123456789")
    CompanyChoice.objects.filter(tenant=tenant).delete()
    CompanyChoice.objects.bulk_create(
        [CompanyChoice(tenant=tenant, cw_company_id=c, motion="annual") for c in (1, 2)]
    )
    tenant.agreement_defaults = {
        "annual": {
            "type_id": 3,
            "type_name": "Annual",
            "name": "{company} yearly",
            "start": "",
            "one_time": True,
        }
    }
    tenant.save()
    plan = repairs.create_plan(tenant, "all")
    steps = list(plan.operations.values_list("step", flat=True))
    assert steps == sorted(steps, key=["setup_tables", "catalog", "agreements"].index)
    assert steps.count("agreements") == 2
    creates = list(plan.operations.filter(method="POST").values_list("path", flat=True))
    assert repairs.approve(plan, by="operator")
    sandbox_call(sandbox, "/_sandbox/requests", method="DELETE")
    sandbox_call(sandbox, "/_sandbox/faults", {"company": "bareco", "methods": ["POST"], "slowBodyMs": 1500})

    enqueue(tasks.apply_plan, plan.pk)
    wait_until(
        lambda: _posts(sandbox).get("finance/agreements"), 60, what="the first agreement create to be sent"
    )
    rel_stack["worker"].kill()
    assert _status(RepairPlan, plan.pk) == "applying"

    rel_stack["worker"].start()
    sandbox_call(sandbox, "/_sandbox/faults", {"company": "bareco"})
    RepairPlan.objects.filter(pk=plan.pk).update(
        started_at=timezone.now() - timedelta(seconds=settings.PLAN_APPLY_TIME_LIMIT + 61)
    )
    with mock.patch.object(tasks.apply_plan, "delay", side_effect=lambda pk: enqueue(tasks.apply_plan, pk)):
        tasks.watchdog()
    # Generous: the killed worker's call slots on the sandbox host (onboarding.limits) are freed only once the
    # limiter's timeout has passed, so after other kills in the same session the resumed apply may wait for one.
    wait_until(lambda: _status(RepairPlan, plan.pk) == "applied", 180, what="the resumed apply to finish")
    posts = _posts(sandbox)
    assert posts.get("finance/agreements") == 2, posts  # one per company, the lost answer found by re-query
    assert sum(posts.values()) == len(creates), posts


def _posts(sandbox: str) -> dict[str, int]:
    counts = sandbox_call(sandbox, "/_sandbox/requests?company=bareco", method="GET")["bareco"]
    return {path.split(" ", 1)[1]: n for path, n in counts.items() if path.startswith("POST ")}
