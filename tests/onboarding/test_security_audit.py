"""The audit trail: credential changes, runs started, plans approved and every operation applied (before and
after), each with who and when; visible to support (and to the tenant's admins once a page shows it); and
append-only in the application."""

from __future__ import annotations

import io
from datetime import timedelta
from pathlib import Path

import pytest
from django.conf import settings
from django.core.management import call_command
from django.db import transaction
from django.urls import reverse
from django.utils import timezone
from django.utils.html import escape

from connectwise.sandbox import SandboxApp, load_scenario, sandbox_transport
from onboarding import cw, repairs, runs
from onboarding.models import AuditEvent, CheckRun, Connection, Tenant
from onboarding.templatetags.onboarding_tags import audit_message

SCENARIO = Path(settings.BASE_DIR) / "connectwise" / "sandbox" / "scenarios" / "broken.json"
KEY = "brokenpriv-0123456789"

pytestmark = pytest.mark.django_db


@pytest.fixture
def sandboxed(settings, monkeypatch, tenant_a):
    settings.CONNECTWISE_SANDBOX_URL = "http://127.0.0.1:8765"
    settings.CACHES = {
        "default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache", "LOCATION": "audit"}
    }
    app = SandboxApp([load_scenario(SCENARIO)], sleep=lambda s: None, enable_faults=False)
    monkeypatch.setattr(cw, "TRANSPORT_FACTORY", lambda: sandbox_transport(app))
    return app


def events(tenant, kind) -> list[AuditEvent]:
    return list(AuditEvent.objects.filter(tenant=tenant, kind=kind).order_by("id"))


def assert_recent(event: AuditEvent) -> None:
    assert timezone.now() - timedelta(minutes=1) < event.created_at <= timezone.now()


def connect(client, tenant, key=KEY):
    return client.post(
        reverse("step", args=[tenant.slug, "connection"]),
        {"region": "sandbox", "company_id": "brokenco", "public_key": "brokenpub", "private_key": key},
    )


# Credential changes -------------------------------------------------------------------------------------------


def test_saving_the_connection_is_recorded_with_who_and_when(client, admin_a, tenant_a, sandboxed):
    client.force_login(admin_a)
    assert connect(client, tenant_a).status_code == 302
    (event,) = events(tenant_a, AuditEvent.Kind.CONNECTION_SAVED)
    assert event.actor == admin_a and event.actor_label == admin_a.email
    assert event.detail["company_id"] == "brokenco"
    assert_recent(event)
    assert KEY not in str(event.detail) + event.message


def test_replacing_the_key_is_recorded(client, admin_a, tenant_a, sandboxed):
    client.force_login(admin_a)
    connect(client, tenant_a)
    response = client.post(
        reverse("replace_key", args=[tenant_a.slug]),
        {"new_private_key": "another-key-0123456", "private_key": "another-key-0123456"},
    )
    assert response.status_code == 302
    (event,) = events(tenant_a, AuditEvent.Kind.KEY_REPLACED)
    assert event.actor == admin_a
    assert_recent(event)
    assert "another-key" not in str(event.detail) + event.message


def test_the_command_line_records_the_operator(db, sandboxed, monkeypatch):
    monkeypatch.setenv("CW_PRIVATE_KEY", KEY)
    call_command(
        "tenant_connect", "cli-co", "--site", "127.0.0.1:8765", "--company", "brokenco", "--public-key", "brokenpub",
        stdout=io.StringIO(),
    )  # fmt: skip
    tenant = Tenant.objects.get(slug="cli-co")
    (event,) = events(tenant, AuditEvent.Kind.CONNECTION_SAVED)
    assert event.actor is None and event.actor_label == "operator (command line)"
    assert_recent(event)


# Runs ---------------------------------------------------------------------------------------------------------


def test_every_run_start_is_recorded_with_its_trigger(admin_a, tenant_a):
    run, _ = runs.start_run(tenant_a, actor=admin_a, enqueue=False)
    (event,) = events(tenant_a, AuditEvent.Kind.RUN_STARTED)
    assert (
        event.actor == admin_a
        and event.detail["run"] == str(run.uuid)
        and event.detail["trigger"] == "manual"
    )
    assert_recent(event)
    CheckRun.objects.filter(pk=run.pk).update(status=CheckRun.Status.DONE)
    runs.start_run(tenant_a, trigger=CheckRun.Trigger.SCHEDULE, enqueue=False)
    scheduled = events(tenant_a, AuditEvent.Kind.RUN_STARTED)[-1]
    assert scheduled.actor is None and scheduled.actor_label == "schedule"


# Repairs ------------------------------------------------------------------------------------------------------


def test_a_plan_approval_and_each_applied_operation_are_recorded_with_before_and_after(
    client, admin_a, support, tenant_a, sandboxed
):
    conn = Connection(tenant=tenant_a, site="127.0.0.1:8765", company_id="brokenco", public_key="brokenpub")
    conn.set_private_key(KEY)
    conn.save()
    tenant_a.refresh_from_db()
    plan = repairs.create_plan(tenant_a, "setup_tables", actor=admin_a)
    operations = list(plan.operations.order_by("seq"))
    assert operations, "the broken scenario needs setup table repairs"
    assert repairs.approve(plan, by=admin_a)
    plan = repairs.claim_for_apply(plan.pk)
    repairs.apply(plan, verify=False)

    (created,) = events(tenant_a, AuditEvent.Kind.PLAN_CREATED)
    assert created.actor == admin_a and created.detail["plan"] == str(plan.uuid)
    (approved,) = events(tenant_a, AuditEvent.Kind.PLAN_APPROVED)
    assert approved.actor == admin_a and approved.detail["plan"] == str(plan.uuid)
    assert_recent(approved)
    applied = events(tenant_a, AuditEvent.Kind.OPERATION_APPLIED)
    assert [e.detail["seq"] for e in applied] == [op.seq for op in operations]
    for event, op in zip(applied, operations, strict=True):
        assert event.actor == admin_a and event.detail["approved_by"] == admin_a.email
        assert event.detail["method"] == op.method and event.detail["path"] == op.path
        assert event.detail["before"] == op.before and event.detail["before"] is not None
        assert event.detail["after"], "the record after the change is kept"
        assert event.created_at >= approved.created_at
    # e.g. a reactivation: inactive before, active after
    patch = next(e for e in applied if e.detail["method"] == "PATCH")
    assert (
        patch.detail["before"].get("inactiveFlag") is True
        and patch.detail["after"].get("inactiveFlag") is False
    )

    # support sees the trail on the tenant page
    client.force_login(support)
    page = client.get(reverse("support_tenant", args=[tenant_a.slug])).content.decode()
    assert escape(audit_message(approved.message)) in page  # step keys shown as step titles
    assert escape(audit_message(applied[0].message)) in page


def test_the_tenant_admins_can_see_the_trail(client, admin_a, tenant_a):
    AuditEvent.record(
        AuditEvent.Kind.RUN_STARTED, tenant=tenant_a, actor=admin_a, message="Check started (audit-probe)"
    )
    url = reverse("audit", args=[tenant_a.slug])
    client.force_login(admin_a)
    assert "audit-probe" in client.get(url).content.decode()


# Append-only --------------------------------------------------------------------------------------------------


def test_the_trail_cannot_be_changed_or_deleted_through_the_application(tenant_a):
    event = AuditEvent.record(
        AuditEvent.Kind.PLAN_APPROVED, tenant=tenant_a, actor="someone", message="approved"
    )
    event.message = "rewritten"
    for attempt in (
        event.save,
        event.delete,
        lambda: AuditEvent.objects.filter(pk=event.pk).update(message="x"),
        lambda: AuditEvent.objects.all().delete(),
        lambda: AuditEvent.objects.bulk_update([event], ["message"]),
    ):
        # in a savepoint: bulk_update fails inside its own atomic block
        with pytest.raises(PermissionError), transaction.atomic():
            attempt()
    assert AuditEvent.objects.get(pk=event.pk).message == "approved"
