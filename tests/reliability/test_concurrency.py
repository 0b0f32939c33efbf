"""Races on the same tenant or plan from several threads, each with its own database connection (PostgreSQL
under CI, SQLite locally): one run per tenant, one approval, each operation of a plan applied once, and a
double click on the web endpoints is harmless."""

from __future__ import annotations

import threading
from pathlib import Path
from unittest import mock

import pytest
from django.conf import settings
from django.db import connections
from django.test import Client
from django.urls import reverse

from connectwise.sandbox import SandboxApp, load_scenario, sandbox_transport
from onboarding import cw, repairs, runs
from onboarding.models import AuditEvent, CheckRun, Connection, RepairOperation, RepairPlan

pytestmark = pytest.mark.django_db(transaction=True)

SCENARIOS = Path(settings.BASE_DIR) / "connectwise" / "sandbox" / "scenarios"


def at_once(fn, n: int = 2) -> list:
    """Run fn() in n threads released together; return the results (exceptions re-raised)."""
    barrier = threading.Barrier(n)
    results: list = [None] * n
    errors: list = []

    def work(i: int) -> None:
        try:
            barrier.wait(timeout=10)
            results[i] = fn()
        except BaseException as exc:  # noqa: BLE001 - re-raised below in the test thread
            errors.append(exc)
        finally:
            connections.close_all()  # each thread had its own connection

    threads = [threading.Thread(target=work, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    if errors:
        raise errors[0]
    return results


@pytest.fixture
def no_broker():
    """Enqueueing is recorded, not sent: no worker is part of these tests."""
    with (
        mock.patch("onboarding.tasks.run_checks.delay") as run_checks,
        mock.patch("onboarding.tasks.apply_plan.delay") as apply_plan,
    ):
        yield {"run_checks": run_checks, "apply_plan": apply_plan}


@pytest.fixture
def bare_sandbox(settings, monkeypatch, tenant_a):
    """The bare scenario in-process, 30 ms per answer so that two appliers overlap."""
    settings.CONNECTWISE_SANDBOX_URL = "http://sandbox.test"
    app = SandboxApp([load_scenario(SCENARIOS / "bare.json")])
    app.set_faults({"latencyMs": 30})
    monkeypatch.setattr(cw, "TRANSPORT_FACTORY", lambda: sandbox_transport(app))
    conn = Connection(tenant=tenant_a, site="sandbox.test", company_id="bareco", public_key="barepub")
    conn.set_private_key("barepriv-0123456789")
    conn.save()
    return app


def test_two_runs_started_at_once_give_one_run(tenant_a, no_broker):
    results = at_once(lambda: runs.start_run(tenant_a, enqueue=True))
    assert sorted(created for _, created in results) == [False, True]
    assert results[0][0].pk == results[1][0].pk
    assert CheckRun.objects.filter(tenant=tenant_a).count() == 1
    assert no_broker["run_checks"].call_count == 1


def test_approving_the_same_plan_twice_at_once_approves_once(tenant_a, admin_a):
    plan = RepairPlan.objects.create(tenant=tenant_a, step="setup_tables")
    RepairOperation.objects.create(
        plan=plan, seq=1, method="POST", path="procurement/categories", finding_code="x"
    )
    results = at_once(lambda: repairs.approve(RepairPlan.objects.get(pk=plan.pk), by=admin_a))
    assert sorted(results) == [False, True]
    assert AuditEvent.objects.filter(kind=AuditEvent.Kind.PLAN_APPROVED).count() == 1


def test_applying_the_same_plan_twice_at_once_applies_each_operation_once(tenant_a, admin_a, bare_sandbox):
    plan = repairs.create_plan(tenant_a, "setup_tables")
    creates = list(plan.operations.filter(method="POST").values_list("path", flat=True))
    assert len(creates) >= 3
    assert repairs.approve(plan, by=admin_a)
    bare_sandbox.clear_requests()

    def apply_it():
        claimed = repairs.claim_for_apply(plan.pk)
        return repairs.apply(claimed, verify=False).status if claimed else "skipped"

    assert sorted(at_once(apply_it)) == ["applied", "skipped"]
    posts = {
        path.split(" ", 1)[1]: n
        for path, n in bare_sandbox.request_counts("bareco")["bareco"].items()
        if path.startswith("POST ")
    }
    assert sorted(posts) == sorted(creates) and set(posts.values()) == {1}, posts
    assert (
        AuditEvent.objects.filter(kind=AuditEvent.Kind.OPERATION_APPLIED).count() == plan.operations.count()
    )


def test_a_double_click_on_check_and_approve_is_harmless(tenant_a, admin_a, no_broker):
    plan = RepairPlan.objects.create(tenant=tenant_a, step="setup_tables")
    RepairOperation.objects.create(
        plan=plan, seq=1, method="POST", path="procurement/categories", finding_code="x"
    )

    def post(url: str):
        client = Client()
        client.force_login(admin_a)
        return client.post(url, {"next": reverse("tenant_home", args=[tenant_a.slug])}).status_code

    assert at_once(lambda: post(reverse("run_check", args=[tenant_a.slug]))) == [302, 302]
    assert CheckRun.objects.filter(tenant=tenant_a).count() == 1
    assert no_broker["run_checks"].call_count == 1

    assert at_once(lambda: post(reverse("plan_approve", args=[tenant_a.slug, plan.uuid]))) == [302, 302]
    assert RepairPlan.objects.get(pk=plan.pk).status == RepairPlan.Status.APPROVED
    assert AuditEvent.objects.filter(kind=AuditEvent.Kind.PLAN_APPROVED).count() == 1
    assert no_broker["apply_plan"].call_count == 1


def test_a_step_plan_and_the_combined_plan_of_one_tenant_never_apply_at_once(tenant_a, admin_a, bare_sandbox):
    """Approving a step's plan and "fix everything" at the same moment: one is approved, the other refused with
    a message for the partner, so applies of one tenant are serial; once the first is applied, the second goes."""
    from django.db import connection

    if connection.vendor != "postgresql":
        pytest.skip("row locks need PostgreSQL (SQLite ignores select_for_update)")
    from connectwise.checks.plans import COMBINED

    step_plan = repairs.create_plan(tenant_a, "setup_tables")
    combined = repairs.create_plan(tenant_a, COMBINED)
    plans = iter([step_plan.pk, combined.pk])
    lock = threading.Lock()

    def approve_one():
        with lock:
            pk = next(plans)
        try:
            return pk, repairs.approve(RepairPlan.objects.get(pk=pk), by=admin_a)
        except repairs.PlanError as exc:
            return pk, str(exc)

    results = dict(at_once(approve_one))
    approved = [pk for pk, outcome in results.items() if outcome is True]
    refused = [pk for pk, outcome in results.items() if isinstance(outcome, str)]
    assert len(approved) == 1 and len(refused) == 1, results
    assert "being applied" in results[refused[0]]
    assert RepairPlan.objects.get(pk=refused[0]).status == RepairPlan.Status.DRAFT
    # While the first is applying, the second is still refused; once it is applied, the second can go.
    first = repairs.claim_for_apply(approved[0])
    with pytest.raises(repairs.PlanError):
        repairs.approve(RepairPlan.objects.get(pk=refused[0]), by=admin_a)
    assert repairs.apply(first, verify=False).status == RepairPlan.Status.APPLIED
    assert repairs.approve(RepairPlan.objects.get(pk=refused[0]), by=admin_a) is True


def test_a_partner_approving_while_another_plan_applies_is_told_to_wait(tenant_a, admin_a, no_broker):
    busy = RepairPlan.objects.create(tenant=tenant_a, step="catalog", status=RepairPlan.Status.APPLYING)
    plan = RepairPlan.objects.create(tenant=tenant_a, step="setup_tables")
    RepairOperation.objects.create(
        plan=plan, seq=1, method="POST", path="procurement/categories", finding_code="x"
    )
    client = Client()
    client.force_login(admin_a)
    response = client.post(reverse("plan_approve", args=[tenant_a.slug, plan.uuid]), follow=True)
    assert "Another set of changes is being applied" in response.content.decode()
    assert RepairPlan.objects.get(pk=plan.pk).status == RepairPlan.Status.DRAFT
    assert no_broker["apply_plan"].call_count == 0
    RepairPlan.objects.filter(pk=busy.pk).update(status=RepairPlan.Status.APPLIED)
    client.post(reverse("plan_approve", args=[tenant_a.slug, plan.uuid]))
    assert RepairPlan.objects.get(pk=plan.pk).status == RepairPlan.Status.APPROVED
    assert no_broker["apply_plan"].call_count == 1
