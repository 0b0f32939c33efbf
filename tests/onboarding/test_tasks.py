"""onboarding.tasks: the Celery tasks are thin (one call into a service each), and their registered names, which
messages in flight and the beat schedule carry, stay as they are."""

from __future__ import annotations

from unittest import mock

import pytest

from onboarding import tasks

pytestmark = pytest.mark.django_db

REGISTERED = {
    "apply_plan": "onboarding.apply_plan",
    "build_plan_task": "onboarding.build_plan",
    "build_preview": "onboarding.build_preview",
    "prune_history": "onboarding.prune_history",
    "run_checks": "onboarding.run_checks",
    "schedule_verifications": "onboarding.schedule_verifications",
    "send_drift_alerts": "onboarding.send_drift_alerts",
    "send_invitation": "onboarding.send_invitation",
    "send_password_reset": "onboarding.send_password_reset",
    "send_signup_mail": "onboarding.send_signup_mail",
    "send_support_welcome": "onboarding.send_support_welcome",
    "watchdog": "onboarding.watchdog",
}


def test_every_task_keeps_its_registered_name():
    assert set(tasks.__all__) == set(REGISTERED)
    assert {attr: getattr(tasks, attr).name for attr in REGISTERED} == REGISTERED


def test_the_beat_schedule_names_registered_tasks():
    from onboarding.celery import app

    app.loader.import_default_modules()  # what a worker imports at start (autodiscovery)
    names = {entry["task"] for entry in app.conf.beat_schedule.values()}
    assert names and names <= set(app.tasks)


def test_the_watchdog_closes_runs_and_builds_resumes_plans_and_retries_undelivered_alerts():
    with (
        mock.patch("onboarding.runs.close_stuck_runs", return_value=3) as runs_closed,
        mock.patch("onboarding.repairs.close_stuck_builds") as builds_closed,
        mock.patch("onboarding.repairs.resume_stuck_plans") as resumed,
        mock.patch("onboarding.alerts.undelivered_tenants", return_value=[7, 9]),
        mock.patch.object(tasks.send_drift_alerts, "delay") as alert_delay,
    ):
        assert tasks.watchdog() == 3
    assert runs_closed.called and builds_closed.called and resumed.called
    assert [c.args for c in alert_delay.call_args_list] == [(7,), (9,)]


def test_schedule_verifications_starts_the_due_runs():
    with mock.patch("onboarding.runs.start_due_runs", return_value=4) as start:
        assert tasks.schedule_verifications() == 4
    start.assert_called_once_with()


@pytest.mark.parametrize(
    ("kind", "sender"), [("confirm", "send_signup_confirmation"), ("exists", "send_signup_notice")]
)
def test_the_signup_mail_task_sends_the_mail_of_its_kind(kind, sender):
    with mock.patch(f"onboarding.mail.{sender}", return_value="sent") as send:
        assert tasks.send_signup_mail(5, kind) == "sent"
    send.assert_called_once_with(5)


def test_prune_history_deletes_at_most_its_cap_a_tick():
    with mock.patch("onboarding.retention.prune_runs") as prune:
        prune.return_value.runs_deleted = 12
        assert tasks.prune_history() == 12
    prune.assert_called_once_with(max_runs=tasks.PRUNE_MAX_RUNS_PER_TICK)
