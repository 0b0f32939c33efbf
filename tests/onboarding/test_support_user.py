"""support_user: support-staff accounts made by operators, with an e-mailed set-password link."""

from __future__ import annotations

import re
from io import StringIO

import pytest
from django.core import mail
from django.core.management import CommandError, call_command

from onboarding.models import AuditEvent, User

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _mail_tasks_inline(request, monkeypatch):
    """The set-password e-mail is a Celery task enqueued after commit: here it runs at once, in this process
    (tests that ask for ``queued`` see the enqueueing itself instead)."""
    from django.db import transaction

    from onboarding.celery import app

    if "queued" in request.fixturenames:
        yield
        return
    saved = app.conf.task_always_eager, app.conf.task_eager_propagates
    app.conf.update(task_always_eager=True, task_eager_propagates=False)
    monkeypatch.setattr(transaction, "on_commit", lambda fn, using=None, robust=False: fn())
    yield
    app.conf.update(task_always_eager=saved[0], task_eager_propagates=saved[1])


@pytest.fixture
def queued():
    """Asked for by tests that look at the enqueueing (the autouse fixture then leaves tasks alone)."""


def run(*args) -> str:
    out = StringIO()
    call_command("support_user", *args, stdout=out)
    return out.getvalue()


def link_in(message) -> str:
    match = re.search(r"https?://\S+/accounts/reset/\S+/", message.body)
    assert match, message.body
    return match.group(0)


def test_add_creates_a_support_account_without_a_password_and_emails_a_link():
    out = run("add", "  Sam.Support@Distributor.Example ")
    user = User.objects.get(email="sam.support@distributor.example")
    assert user.is_support and user.is_active
    assert not user.has_usable_password()
    assert "Support account created: sam.support@distributor.example" in out
    assert len(mail.outbox) == 1
    assert mail.outbox[0].to == ["sam.support@distributor.example"]
    assert "\n" not in mail.outbox[0].subject
    link_in(mail.outbox[0])
    event = AuditEvent.objects.get(kind=AuditEvent.Kind.SUPPORT_ADDED)
    assert event.actor_label == "operator (command line)" and event.detail["email"] == user.email


def test_the_emailed_link_sets_a_password_that_signs_in(client):
    run("add", "sam@distributor.example")
    url = link_in(mail.outbox[0]).split("://", 1)[1].split("/", 1)[1]
    page = client.get("/" + url, follow=True)
    assert page.status_code == 200
    form_url = page.redirect_chain[-1][0] if page.redirect_chain else "/" + url
    done = client.post(
        form_url, {"new_password1": "a-Long-passw0rd-2026", "new_password2": "a-Long-passw0rd-2026"}
    )
    assert done.status_code == 302
    assert client.login(username="sam@distributor.example", password="a-Long-passw0rd-2026")


def test_add_is_idempotent_for_an_account_that_chose_its_password():
    run("add", "sam@distributor.example")
    user = User.objects.get(email="sam@distributor.example")
    user.set_password("a-Long-passw0rd-2026")
    user.save()
    out = run("add", "SAM@distributor.example")
    assert "already an active support account" in out
    assert User.objects.filter(email__iexact="sam@distributor.example").count() == 1
    assert len(mail.outbox) == 1


def test_add_again_before_a_password_is_chosen_sends_a_new_link():
    """The way to re-send a lost or expired link (the command and the page both say so)."""
    run("add", "sam@distributor.example")
    out = run("add", "sam@distributor.example")
    assert "has not chosen a password yet: a new link" in out and "run add again" in out
    assert len(mail.outbox) == 2 and all(m.to == ["sam@distributor.example"] for m in mail.outbox)
    assert AuditEvent.objects.filter(kind=AuditEvent.Kind.SUPPORT_ADDED).count() == 1


def test_add_sends_nothing_itself_it_enqueues_the_mail_after_commit(
    queued, monkeypatch, django_capture_on_commit_callbacks
):
    """Like every other product e-mail: a task after commit, the user's id only (no link, no token)."""
    from onboarding import support_accounts

    sent = []
    monkeypatch.setattr(support_accounts.send_support_welcome, "delay", lambda *a, **k: sent.append((a, k)))
    with django_capture_on_commit_callbacks() as callbacks:
        out = run("add", "sam@distributor.example")
        assert sent == [] and not mail.outbox  # nothing before the account's transaction commits
    assert "Support account created" in out and "sent by the worker" in out
    assert len(callbacks) == 1
    callbacks[0]()
    user = User.objects.get(email="sam@distributor.example")
    assert sent == [((user.pk,), {})] and not mail.outbox


def test_the_task_retries_a_mail_failure_and_stops_for_a_deactivated_account(queued, monkeypatch, support):
    import smtplib

    from onboarding import mail as product_mail
    from onboarding import support_accounts
    from onboarding.delivery import MAIL_RETRY

    task = support_accounts.send_support_welcome
    assert task.autoretry_for == MAIL_RETRY["autoretry_for"] and task.max_retries == MAIL_RETRY["max_retries"]
    assert task.name == "onboarding.send_support_welcome"
    with monkeypatch.context() as m:
        m.setattr(product_mail, "send_mail", mock_raise(smtplib.SMTPServerDisconnected("down")))
        with pytest.raises(smtplib.SMTPServerDisconnected):
            product_mail.send_support_welcome(support.pk)  # raised: Celery's autoretry sends it again later
    assert product_mail.send_support_welcome(support.pk) == "sent"
    assert support.email in mail.outbox[0].to and "/accounts/reset/" in mail.outbox[0].body
    support.is_active = False
    support.save()
    assert product_mail.send_support_welcome(support.pk) == "gone"
    assert len(mail.outbox) == 1


def mock_raise(exc):
    def raiser(*args, **kwargs):
        raise exc

    return raiser


def test_a_partner_address_is_refused(admin_a):
    with pytest.raises(CommandError, match="partner account"):
        run("add", admin_a.email.upper())
    admin_a.refresh_from_db()
    assert not admin_a.is_support
    assert not mail.outbox


@pytest.mark.parametrize("bad", ["not-an-address", "a@b.example\nBcc: x@y.example", ""])
def test_a_bad_address_is_refused_with_a_clear_error(bad):
    with pytest.raises(CommandError):
        run("add", bad) if bad else run("add")
    assert not User.objects.filter(is_support=True).exists()


def test_remove_deactivates_and_ends_open_sessions(client, support):
    client.force_login(support)
    assert client.get("/support/").status_code == 200
    out = run("remove", support.email)
    assert "deactivated" in out
    support.refresh_from_db()
    assert not support.is_active
    assert client.get("/support/").status_code == 302  # back to sign-in
    assert AuditEvent.objects.filter(kind=AuditEvent.Kind.SUPPORT_REMOVED).count() == 1
    assert "already deactivated" in run("remove", support.email)


def test_remove_refuses_an_address_that_is_not_support(admin_a):
    with pytest.raises(CommandError, match="No support account"):
        run("remove", admin_a.email)
    admin_a.refresh_from_db()
    assert admin_a.is_active


def test_add_reactivates_a_deactivated_account_and_sends_a_new_link(support):
    run("remove", support.email)
    out = run("add", support.email)
    assert "reactivated" in out
    support.refresh_from_db()
    assert support.is_active
    assert len(mail.outbox) == 1


def test_list_shows_every_support_account_with_its_state(support):
    run("add", "new@distributor.example")
    run("remove", "new@distributor.example")
    lines = run("list").strip().splitlines()
    assert lines[0].startswith(support.email + "\tactive")
    assert lines[1].startswith("new@distributor.example\tdeactivated")


def test_list_says_how_to_add_when_empty():
    assert "support_user add EMAIL" in run("list")


def test_a_mail_server_that_is_down_does_not_fail_the_command(monkeypatch):
    """The account is saved and the e-mail left to the worker's retries; add again re-sends."""
    from onboarding import mail as product_mail

    with monkeypatch.context() as m:
        m.setattr(product_mail, "send_mail", mock_raise(ConnectionRefusedError("no smtp")))
        out = run("add", "sam@distributor.example")
    assert "Support account created" in out and "retried while the mail server is unreachable" in out
    assert User.objects.filter(email="sam@distributor.example", is_support=True).exists()
    assert not mail.outbox
    assert "a new link" in run("add", "sam@distributor.example")
    assert len(mail.outbox) == 1


def test_no_password_option_exists():
    from onboarding.management.commands.support_user import Command

    parser = Command().create_parser("manage.py", "support_user")
    assert not any("pass" in opt for action in parser._actions for opt in action.option_strings)
