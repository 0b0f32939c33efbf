"""onboarding.repairs: request, build, approve and apply repair plans; the watchdog's part for plans."""

from __future__ import annotations

from datetime import timedelta
from unittest import mock

import pytest
from django.conf import settings
from django.utils import timezone

from connectwise.checks import plans as cw_plans
from onboarding import repairs, tasks
from onboarding.models import AuditEvent, RepairOperation, RepairPlan
from tests.onboarding.wizard_helpers import connection_a_fixture  # noqa: F401 (fixture)

pytestmark = pytest.mark.django_db

ONE_PATCH = cw_plans.PlanReport(
    operations=[
        cw_plans.PlannedOperation(
            method="PATCH",
            path="procurement/catalog/12",
            body=[{"op": "replace", "path": "inactiveFlag", "value": False}],
            finding_code="catalog.misc_inactive",
            subject='Product "misc-seat" (id 12)',
            description="Activate the product misc-seat",
            before={"inactiveFlag": True},
        )
    ],
    skipped=[],
)


@pytest.fixture
def build_delay():
    with mock.patch.object(tasks.build_plan_task, "delay") as delay:
        yield delay


@pytest.fixture
def connectwise_answers():
    """The worker's ConnectWise read, answered with ONE_PATCH (no HTTP)."""
    with (
        mock.patch("onboarding.repairs.tenant_client"),
        mock.patch.object(cw_plans, "build_plan_report", return_value=ONE_PATCH) as report,
    ):
        yield report


def _run_delivery(delay, index=-1):
    args, kwargs = delay.call_args_list[index]
    return tasks.build_plan_task.apply(args=args, kwargs=kwargs).get()


def test_a_request_stores_a_building_plan_and_enqueues_its_build_after_commit(
    tenant_a, admin_a, connection_a, build_delay, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        plan = repairs.request_plan(tenant_a, "catalog", actor=admin_a, options={"x": 1})
    assert plan.status == RepairPlan.Status.BUILDING and plan.created_by == admin_a
    assert not build_delay.called  # nothing is enqueued before the row is committed
    callbacks[0]()
    build_delay.assert_called_once_with(tenant_a.pk, "catalog", admin_a.pk, {"x": 1}, plan_id=plan.pk)


def test_the_build_turns_the_building_plan_into_the_draft_once(
    tenant_a, admin_a, connection_a, build_delay, connectwise_answers, django_capture_on_commit_callbacks
):
    older = RepairPlan.objects.create(tenant=tenant_a, step="catalog")  # an older draft of the step
    with django_capture_on_commit_callbacks(execute=True):
        plan = repairs.request_plan(tenant_a, "catalog", actor=admin_a)
    assert _run_delivery(build_delay) == str(plan.uuid)
    plan.refresh_from_db()
    assert plan.status == RepairPlan.Status.DRAFT
    assert [op.path for op in plan.operations.all()] == ["procurement/catalog/12"]
    assert RepairPlan.objects.get(pk=older.pk).status == RepairPlan.Status.DISCARDED
    # a second delivery of the same message builds nothing more
    assert _run_delivery(build_delay) == "skipped"
    assert plan.operations.count() == 1 and connectwise_answers.call_count == 1


def test_a_second_request_supersedes_a_build_still_running(
    tenant_a, admin_a, connection_a, build_delay, connectwise_answers, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        first = repairs.request_plan(tenant_a, "catalog", actor=admin_a)
        second = repairs.request_plan(tenant_a, "catalog", actor=admin_a)
    assert RepairPlan.objects.get(pk=first.pk).status == RepairPlan.Status.DISCARDED
    assert _run_delivery(build_delay, 0) == "skipped"
    assert not RepairPlan.objects.get(pk=first.pk).operations.exists()
    assert _run_delivery(build_delay, 1) == str(second.uuid)


def test_a_failed_build_keeps_its_reason_on_the_plan(
    tenant_a, admin_a, connection_a, build_delay, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        plan = repairs.request_plan(tenant_a, "catalog", actor=admin_a)
    with mock.patch.object(repairs, "create_plan", side_effect=RuntimeError("The catalog cannot be read.")):
        assert _run_delivery(build_delay) == "error"
    plan.refresh_from_db()
    assert plan.status == RepairPlan.Status.BUILD_FAILED and plan.error == "The catalog cannot be read."
    assert plan.finished_at is not None


def test_the_watchdog_closes_a_build_that_never_answered(
    tenant_a, admin_a, connection_a, build_delay, connectwise_answers
):
    plan = repairs.request_plan(tenant_a, "catalog", actor=admin_a)
    assert repairs.close_stuck_builds() == 0  # a build just asked for is left alone
    later = timezone.now() + repairs.BUILD_TIMEOUT + timedelta(seconds=1)
    assert repairs.close_stuck_builds(now=later) == 1
    plan.refresh_from_db()
    assert plan.status == RepairPlan.Status.BUILD_FAILED
    assert plan.error.startswith("Building the plan did not finish within 15 minutes")
    # the worker's late answer does not revive it
    assert (
        tasks.build_plan_task.apply(args=[tenant_a.pk, "catalog"], kwargs={"plan_id": plan.pk}).get()
        == "skipped"
    )
    assert RepairPlan.objects.get(pk=plan.pk).status == RepairPlan.Status.BUILD_FAILED


def test_a_message_enqueued_before_the_building_state_still_builds_a_draft(
    tenant_a, admin_a, connection_a, connectwise_answers
):
    uuid = tasks.build_plan_task.apply(args=[tenant_a.pk, "catalog", admin_a.pk]).get()
    plan = RepairPlan.objects.get(uuid=uuid)
    assert plan.status == RepairPlan.Status.DRAFT and plan.operations.count() == 1


# Approving, claiming, applying again ------------------------------------------------------------------------------


def test_a_draft_is_approved_once_and_audited(tenant_a, admin_a):
    plan = RepairPlan.objects.create(tenant=tenant_a, step="catalog")
    assert repairs.approve(plan, by=admin_a)
    assert plan.status == RepairPlan.Status.APPROVED and plan.approved_by == admin_a
    assert not repairs.approve(plan, by=admin_a)  # a double click approves nothing twice
    assert AuditEvent.objects.filter(kind=AuditEvent.Kind.PLAN_APPROVED, tenant=tenant_a).count() == 1


def test_a_plan_that_is_building_cannot_be_approved(tenant_a, admin_a):
    plan = RepairPlan.objects.create(tenant=tenant_a, step="catalog", status=RepairPlan.Status.BUILDING)
    assert not repairs.approve(plan, by=admin_a)


def test_apply_is_enqueued_only_after_commit(tenant_a, django_capture_on_commit_callbacks):
    plan = RepairPlan.objects.create(tenant=tenant_a, step="catalog", status=RepairPlan.Status.APPROVED)
    with mock.patch.object(tasks.apply_plan, "delay") as delay:
        with django_capture_on_commit_callbacks(execute=False) as callbacks:
            repairs.enqueue_apply(plan)
        assert not delay.called
        callbacks[0]()
        delay.assert_called_once_with(plan.pk)


def test_an_applying_plan_is_resumed_only_when_its_worker_must_be_gone(tenant_a):
    plan = RepairPlan.objects.create(tenant=tenant_a, step="setup_tables", status=RepairPlan.Status.APPROVED)
    assert repairs.claim_for_apply(plan.pk) is not None
    assert repairs.claim_for_apply(plan.pk) is None  # another delivery while the first applies
    assert repairs.claim_for_apply(plan.pk, redelivered=True) is not None
    later = timezone.now() + timedelta(seconds=settings.PLAN_APPLY_TIME_LIMIT + 31)
    assert repairs.claim_for_apply(plan.pk, now=later) is not None


def test_a_failed_plan_can_be_applied_again_once(tenant_a):
    plan = RepairPlan.objects.create(tenant=tenant_a, step="setup_tables", status=RepairPlan.Status.FAILED)
    op = RepairOperation.objects.create(
        plan=plan, seq=1, method="POST", path="procurement/categories", finding_code="x", status="failed"
    )
    assert repairs.reapply(plan) and not repairs.reapply(plan)
    op.refresh_from_db()
    assert plan.status == "approved" and op.status == "pending"


def test_the_watchdog_re_enqueues_only_plans_applying_past_their_time_limit(tenant_a):
    now = timezone.now()
    stuck = RepairPlan.objects.create(
        tenant=tenant_a,
        step="catalog",
        status=RepairPlan.Status.APPLYING,
        started_at=now - timedelta(seconds=settings.PLAN_APPLY_TIME_LIMIT + 61),
    )
    RepairPlan.objects.create(
        tenant=tenant_a, step="agreements", status=RepairPlan.Status.APPLYING, started_at=now
    )
    with mock.patch.object(tasks.apply_plan, "delay") as delay:
        assert repairs.resume_stuck_plans(now=now) == 1
    delay.assert_called_once_with(stuck.pk)
