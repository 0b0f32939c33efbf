"""support_user: support-staff accounts made by operators, with an e-mailed set-password link."""

from __future__ import annotations

import re
from io import StringIO

import pytest
from django.core import mail
from django.core.management import CommandError, call_command

from onboarding.models import AuditEvent, User

pytestmark = pytest.mark.django_db


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


def test_add_is_idempotent_for_an_active_account():
    run("add", "sam@distributor.example")
    out = run("add", "SAM@distributor.example")
    assert "already an active support account" in out
    assert User.objects.filter(email__iexact="sam@distributor.example").count() == 1
    assert len(mail.outbox) == 1


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


def test_a_mail_failure_says_the_account_is_saved_and_how_to_resend(settings, monkeypatch):
    import onboarding.support_accounts as sa

    def broken(*args, **kwargs):
        raise ConnectionRefusedError("no smtp")

    monkeypatch.setattr(sa, "send_mail", broken)
    with pytest.raises(CommandError, match="could not be sent.*run add again"):
        run("add", "sam@distributor.example")
    assert User.objects.filter(email="sam@distributor.example", is_support=True).exists()


def test_no_password_option_exists():
    from onboarding.management.commands.support_user import Command

    parser = Command().create_parser("manage.py", "support_user")
    assert not any("pass" in opt for action in parser._actions for opt in action.option_strings)
