"""Monitoring end to end through the scheduled task: the beat starts re-checks (capped, spread), runs execute
eagerly through the real run_checks task with patched step outcomes, drift opens and resolves DriftAlert rows and
e-mails admins and support once per drift, and stale tenants are summarised to support once a day."""

from __future__ import annotations

from datetime import timedelta

import pytest
from celery.exceptions import Retry
from django.core import mail
from django.core.cache import cache
from django.utils import timezone

from connectwise.checks.base import Finding, Severity, Status, StepOutcome
from connectwise.checks.registry import STEP_KEYS
from onboarding import alerts, monitoring, tasks
from onboarding.models import CheckRun, DriftAlert, Membership, Tenant

from .dashboard_factories import ALL_PASS, PRIVATE_KEY, make_tenant

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _eager_tasks_and_fresh_cache(settings):
    from onboarding.celery import app

    saved = {
        "task_always_eager": app.conf.task_always_eager,
        "task_eager_propagates": app.conf.task_eager_propagates,
    }
    app.conf.update(task_always_eager=True, task_eager_propagates=True)
    settings.CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}
    settings.SUPPORT_EMAIL = "support@distributor.example"
    settings.VERIFY_INTERVAL_HOURS = 24
    settings.VERIFY_MAX_CONCURRENT = 20
    cache.clear()
    yield
    app.conf.update(saved)


@pytest.fixture
def world(monkeypatch):
    """What ConnectWise looks like: the steps that fail (or cannot be checked) in the next runs."""
    state = {"fail": set(), "error": set(), "calls": 0}

    def run_steps(
        client, choices, steps=None, on_progress=None, connection=None, hints=None, while_reading=None
    ):
        state["calls"] += 1
        outcomes = []
        for key in steps or STEP_KEYS:
            if key in state["fail"]:
                finding = Finding(
                    code=f"{key}.broken",
                    severity=Severity.ERROR,
                    subject=f"The {key} record",
                    explanation=f"{key} is broken.",
                    fix="Somewhere > Else",
                )
                outcomes.append(StepOutcome(key=key, status=Status.FAIL, findings=[finding]))
            elif key in state["error"]:
                outcomes.append(StepOutcome(key=key, status=Status.ERROR))
            else:
                outcomes.append(StepOutcome(key=key, status=Status.PASS))
        return outcomes

    monkeypatch.setattr("onboarding.runs.run_steps", run_steps)
    return state


@pytest.fixture
def acme(django_user_model):
    tenant = make_tenant("acme", name="Acme MSP", checked_hours_ago=None)
    admin = django_user_model.objects.create_user(username="boss@acme.example", email="boss@acme.example")
    Membership.objects.create(tenant=tenant, user=admin, role=Membership.Role.ADMIN)
    member = django_user_model.objects.create_user(username="ro@acme.example", email="ro@acme.example")
    Membership.objects.create(tenant=tenant, user=member, role=Membership.Role.MEMBER)
    return tenant


def tick(capture) -> int:
    """One beat: every connected tenant is due now; runs and e-mails execute eagerly after commit."""
    Tenant.objects.update(next_check_at=timezone.now() - timedelta(minutes=1))
    with capture(execute=True):
        return tasks.schedule_verifications()


def drift_mails() -> list:
    return [m for m in mail.outbox if "stopped passing" in m.subject]


def test_drift_is_mailed_once_per_episode_to_admins_and_support(
    acme, world, django_capture_on_commit_callbacks
):
    assert tick(django_capture_on_commit_callbacks) == 1
    acme.refresh_from_db()
    assert acme.ready and acme.step_statuses == ALL_PASS and acme.last_checked_at
    assert CheckRun.objects.get().trigger == CheckRun.Trigger.SCHEDULE
    assert drift_mails() == [] and not DriftAlert.objects.exists()

    # The catalog breaks: drift, one e-mail.
    world["fail"] = {"catalog"}
    tick(django_capture_on_commit_callbacks)
    acme.refresh_from_db()
    assert acme.drift_steps == ["catalog"] and acme.drift_since is not None
    alert = DriftAlert.objects.get()
    assert (alert.step, alert.resolved_at) == ("catalog", None) and alert.notified_at is not None
    [message] = drift_mails()
    assert sorted(message.to) == ["boss@acme.example", "support@distributor.example"]
    assert message.subject == "[Billing sync] Acme MSP: Product catalog stopped passing"
    assert "The catalog record: catalog is broken. [catalog.broken]" in message.body
    assert "/t/acme/" in message.body
    assert PRIVATE_KEY not in message.body

    # Still broken in the next three runs: no more e-mails, still one open alert, the drift start is kept.
    drift_since = acme.drift_since
    for _ in range(3):
        tick(django_capture_on_commit_callbacks)
    assert CheckRun.objects.filter(status=CheckRun.Status.DONE).count() == 5
    assert len(drift_mails()) == 1
    assert DriftAlert.objects.count() == 1
    acme.refresh_from_db()
    assert acme.drift_since == drift_since

    # It recovers: the alert is resolved and the marker cleared, without an e-mail.
    world["fail"] = set()
    tick(django_capture_on_commit_callbacks)
    acme.refresh_from_db()
    assert acme.drift_steps == [] and acme.drift_since is None
    assert DriftAlert.objects.get().resolved_at is not None
    assert len(drift_mails()) == 1

    # It breaks again: a new episode, a new e-mail.
    world["fail"] = {"catalog"}
    tick(django_capture_on_commit_callbacks)
    assert DriftAlert.objects.count() == 2
    assert DriftAlert.objects.filter(resolved_at__isnull=True).count() == 1
    assert len(drift_mails()) == 2


def test_a_second_step_breaking_during_a_drift_gets_its_own_mail(
    acme, world, django_capture_on_commit_callbacks
):
    tick(django_capture_on_commit_callbacks)
    world["fail"] = {"catalog"}
    tick(django_capture_on_commit_callbacks)
    world["fail"] = {"catalog", "agreements"}
    tick(django_capture_on_commit_callbacks)
    tick(django_capture_on_commit_callbacks)
    assert [m.subject for m in drift_mails()] == [
        "[Billing sync] Acme MSP: Product catalog stopped passing",
        "[Billing sync] Acme MSP: Agreements stopped passing",
    ]
    acme.refresh_from_db()
    assert acme.drift_steps == ["catalog", "agreements"]


def test_a_step_that_never_passed_is_not_drift(acme, world, django_capture_on_commit_callbacks):
    world["fail"] = {"customers"}
    tick(django_capture_on_commit_callbacks)
    tick(django_capture_on_commit_callbacks)
    acme.refresh_from_db()
    assert acme.first_open_step == "customers" and acme.drift_steps == []
    assert not DriftAlert.objects.exists() and drift_mails() == []


def test_drift_shows_on_the_dashboard(acme, world, django_capture_on_commit_callbacks, client, support):
    tick(django_capture_on_commit_callbacks)
    world["fail"] = {"setup_tables"}
    tick(django_capture_on_commit_callbacks)
    client.force_login(support)
    response = client.get("/support/", {"show": "drift"})
    assert "Drift: Setup tables" in response.content.decode()
    assert monitoring.overview()["drift"] == 1


def test_a_drift_mail_that_fails_to_send_is_retried(
    acme, world, monkeypatch, django_capture_on_commit_callbacks
):
    tick(django_capture_on_commit_callbacks)
    world["fail"] = {"catalog"}

    def broken_send(*args, **kwargs):
        raise ConnectionRefusedError("SMTP down")

    with monkeypatch.context() as m:
        m.setattr(alerts, "send_mail", broken_send)
        # The task retries with backoff (inline here: eager mode surfaces its Retry) and records the failure.
        with pytest.raises((ConnectionRefusedError, Retry)):
            tick(django_capture_on_commit_callbacks)
    alert = DriftAlert.objects.get()
    assert alert.notified_at is None  # released, not lost
    assert alert.mail_failed_at is not None and alert.mail_error == "ConnectionRefusedError"
    tick(django_capture_on_commit_callbacks)  # the next run sends it
    assert len(drift_mails()) == 1
    assert alerts.notify_drift(acme.pk) == 0  # and never twice


def test_the_beat_caps_scheduled_runs_in_flight(world, settings, django_capture_on_commit_callbacks):
    settings.VERIFY_MAX_CONCURRENT = 2
    for i in range(5):
        make_tenant(f"t{i}", step_statuses=ALL_PASS, checked_hours_ago=30)
    make_tenant("unconnected", connected=False, checked_hours_ago=None)
    with django_capture_on_commit_callbacks(execute=False):  # no worker: the runs stay queued
        assert tasks.schedule_verifications() == 2
        assert tasks.schedule_verifications() == 0
    assert (
        CheckRun.objects.filter(status=CheckRun.Status.QUEUED, trigger=CheckRun.Trigger.SCHEDULE).count() == 2
    )
    # The longest unchecked go first; the unconnected tenant is never scheduled.
    assert not CheckRun.objects.filter(tenant__slug="unconnected").exists()
    CheckRun.objects.filter(status=CheckRun.Status.QUEUED).update(status=CheckRun.Status.DONE)
    with django_capture_on_commit_callbacks(execute=False):
        assert tasks.schedule_verifications() == 2


def test_the_beat_spreads_the_next_checks_over_the_interval(world, django_capture_on_commit_callbacks):
    due = make_tenant("due", step_statuses=ALL_PASS, checked_hours_ago=30)
    just_connected = make_tenant("just-connected", step_statuses=ALL_PASS, checked_hours_ago=0.1)
    before = timezone.now()
    with django_capture_on_commit_callbacks(execute=True):
        assert tasks.schedule_verifications() == 1
    due.refresh_from_db()
    just_connected.refresh_from_db()
    assert before + timedelta(hours=22.7) <= due.next_check_at <= timezone.now() + timedelta(hours=25.3)
    # Checked minutes ago when it connected: due one interval after that check, not again now.
    assert not CheckRun.objects.filter(tenant=just_connected).exists()
    assert just_connected.next_check_at == just_connected.last_checked_at + timedelta(hours=24)
    # Not due again on the next tick.
    with django_capture_on_commit_callbacks(execute=True):
        assert tasks.schedule_verifications() == 0


def test_stale_tenants_are_summarised_to_support_once_a_day(
    world, settings, django_capture_on_commit_callbacks
):
    settings.VERIFY_MAX_CONCURRENT = 1
    make_tenant("old", name="Old One", step_statuses=ALL_PASS, checked_hours_ago=60)
    make_tenant("never", name="Never Checked", checked_hours_ago=None)
    make_tenant("fresh", name="Fresh", step_statuses=ALL_PASS, checked_hours_ago=1)
    make_tenant("bare", name="No Connection", checked_hours_ago=None, connected=False)
    # A stuck scheduled run fills every slot: the summary still goes out (that is when it matters).
    CheckRun.objects.create(tenant=Tenant.objects.get(slug="fresh"), trigger=CheckRun.Trigger.SCHEDULE)
    with django_capture_on_commit_callbacks(execute=True):
        assert tasks.schedule_verifications() == 0
        tasks.schedule_verifications()
    [message] = mail.outbox
    assert message.to == ["support@distributor.example"]
    assert message.subject == "[Billing sync] 2 tenants not verified for 48 hours"
    assert "Old One (last check" in message.body
    assert "Never Checked (never checked)" in message.body
    assert "Fresh" not in message.body and "No Connection" not in message.body
    assert "/support/?show=stale" in message.body
    # The next day, another summary.
    assert alerts.notify_stale(timezone.now() + timedelta(days=1)) == 2
    assert len(mail.outbox) == 2


def test_no_stale_mail_when_everything_is_fresh(world):
    make_tenant("fresh", step_statuses=ALL_PASS, checked_hours_ago=1)
    assert alerts.notify_stale() == 0
    assert mail.outbox == []
