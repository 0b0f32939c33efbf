"""Items 2 and 6 of issue 12, and e-mail that cannot be lost.

- A control character in a name is refused at every entry point (sign-up, accepting an invitation, the CLI); a
  name stored before that (a line break in a tenant name) no longer breaks the invitation or drift e-mail: the
  subject is made one line.
- Invitation, drift and password-reset e-mails are sent by Celery tasks after commit; a failure is recorded and
  shown (the team page: "send again" and the link to copy; the support dashboard: undelivered alerts) and retried.
- Password reset, sign-up and invitations are rate-limited per address and per client (django-ratelimit).
"""

from __future__ import annotations

import smtplib
from datetime import timedelta
from unittest import mock

import pytest
from django.core import mail
from django.core.cache import cache
from django.core.management import call_command
from django.core.management.base import CommandError
from django.urls import reverse
from django.utils import timezone

from onboarding import alerts, tasks
from onboarding.models import AuditEvent, CheckRun, DriftAlert, Invitation, Membership, Tenant, User

pytestmark = pytest.mark.django_db
GOOD_PASSWORD = "plum-orbit-harbour-42"


@pytest.fixture(autouse=True)
def _mail_tasks_inline(monkeypatch, settings):
    """Tasks run eagerly and on_commit callbacks at once; a fresh local cache for the rate-limit counters."""
    from django.db import transaction

    from onboarding.celery import app

    saved = app.conf.task_always_eager, app.conf.task_eager_propagates
    app.conf.update(task_always_eager=True, task_eager_propagates=False)
    monkeypatch.setattr(transaction, "on_commit", lambda fn, using=None, robust=False: fn())
    settings.CACHES = {
        "default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache", "LOCATION": "mail"}
    }
    settings.SUPPORT_EMAIL = "support@distributor.example"
    cache.clear()
    yield
    app.conf.update(task_always_eager=saved[0], task_eager_propagates=saved[1])


def _signup(client, **overrides):
    data = {"organisation": "Northwind MSP", "name": "Nora North", "email": "nora@northwind.example",
            "password1": GOOD_PASSWORD, "password2": GOOD_PASSWORD, **overrides}  # fmt: skip
    return client.post(reverse("signup"), data)


# Item 2: control characters in names ------------------------------------------------------------------------


@pytest.mark.parametrize(
    "field, value",
    [("organisation", "Example Org\nLine2"), ("organisation", "Tab\tOrg"), ("name", "Nora\r\nBcc: x@example.test"),
     ("organisation", "Evil\u202eOrg"), ("name", "Esc\x1b[31m")],
)  # fmt: skip
def test_signup_refuses_control_characters_in_names(client, field, value):
    response = _signup(client, **{field: value})
    assert response.status_code == 200
    assert "cannot contain control characters" in response.content.decode()
    assert not Tenant.objects.exists() and not User.objects.exists()


def test_an_invitee_name_with_a_line_break_is_refused(client, admin_a, tenant_a):
    invitation = Invitation.objects.create(tenant=tenant_a, email="new@a.example", invited_by=admin_a)
    response = client.post(
        reverse("accept_invitation", args=[invitation.token]),
        {"name": "Nia\nNew", "password1": GOOD_PASSWORD, "password2": GOOD_PASSWORD},
    )
    assert response.status_code == 200 and "cannot contain control characters" in response.content.decode()
    assert not User.objects.filter(email="new@a.example").exists()


@pytest.mark.parametrize(
    "args, message",
    [(["acme", "--name", "Acme\nMSP"], "control characters"), (["bad slug"], "is not a slug")],
)
def test_tenant_connect_refuses_control_characters_and_bad_slugs(monkeypatch, args, message):
    monkeypatch.setenv("CW_PRIVATE_KEY", "private-0123456789")
    with pytest.raises(CommandError, match=message):
        call_command("tenant_connect", *args, "--site", "api-na.myconnectwise.net", "--company", "acme",
                     "--public-key", "pub")  # fmt: skip
    assert not Tenant.objects.exists()


def test_a_line_break_in_a_stored_tenant_name_no_longer_breaks_the_invitation(client, admin_a, tenant_a):
    Tenant.objects.filter(pk=tenant_a.pk).update(
        name="Example Org\nLine2"
    )  # stored before names were checked
    client.force_login(admin_a)
    response = client.post(
        reverse("team", args=[tenant_a.slug]), {"email": "invitee@example.test", "role": "member"}
    )
    assert response.status_code == 302
    [message] = mail.outbox
    assert message.subject == "You are invited to Example Org Line2 on billing sync readiness"
    assert Invitation.objects.get(tenant=tenant_a).mail_status == "sent"


def _drift(tenant, step="catalog") -> DriftAlert:
    run = CheckRun.objects.create(tenant=tenant, status=CheckRun.Status.DONE)
    return DriftAlert.objects.create(tenant=tenant, step=step, run=run)


def test_a_line_break_in_a_stored_tenant_name_no_longer_breaks_the_drift_mail(admin_a, tenant_a):
    Tenant.objects.filter(pk=tenant_a.pk).update(name="Example Org\nLine2")
    alert = _drift(tenant_a)
    assert alerts.notify_drift(tenant_a.pk) == 1
    [message] = mail.outbox
    assert message.subject == "[Billing sync] Example Org Line2: Product catalog stopped passing"
    alert.refresh_from_db()
    assert alert.notified_at is not None


# Failed mail is shown and retried ---------------------------------------------------------------------------


def test_a_failed_invitation_mail_is_shown_with_send_again_and_the_link(client, admin_a, member_a, tenant_a):
    client.force_login(admin_a)
    with mock.patch("onboarding.mail.send_mail", side_effect=smtplib.SMTPServerDisconnected("gone")):
        response = client.post(
            reverse("team", args=[tenant_a.slug]), {"email": "invitee@example.test", "role": "member"}
        )
    assert response.status_code == 302  # the invitation stands; the mail is retried in the background
    invitation = Invitation.objects.get(tenant=tenant_a)
    assert invitation.mail_status == "failed" and invitation.mail_attempts >= 1
    assert invitation.mail_error == "SMTPServerDisconnected"
    html = client.get(reverse("team", args=[tenant_a.slug])).content.decode()
    assert "The e-mail could not be sent (SMTPServerDisconnected" in html
    assert f"/invitations/{invitation.token}/" in html and "Send again" in html

    # A read-only member sees that it failed, but not the link.
    client.force_login(member_a)
    html = client.get(reverse("team", args=[tenant_a.slug])).content.decode()
    assert "could not be sent" in html and f"/invitations/{invitation.token}/" not in html

    client.force_login(admin_a)
    response = client.post(reverse("resend_invitation", args=[tenant_a.slug, invitation.token]))
    assert response.status_code == 302
    invitation.refresh_from_db()
    assert invitation.mail_status == "sent" and invitation.mail_error == ""
    [message] = mail.outbox
    assert f"/invitations/{invitation.token}/" in message.body


def test_a_failed_drift_mail_is_retried_never_dropped_and_shown_on_the_dashboard(
    client, support, admin_a, tenant_a
):
    alert = _drift(tenant_a)
    with mock.patch("onboarding.alerts.send_mail", side_effect=smtplib.SMTPServerDisconnected("gone")):
        result = tasks.send_drift_alerts.delay(tenant_a.pk)
    assert result.failed()  # retries exhausted in eager mode
    alert.refresh_from_db()
    assert alert.notified_at is None and alert.mail_failed_at is not None
    assert alert.mail_attempts >= 2 and alert.mail_error == "SMTPServerDisconnected"

    client.force_login(support)
    page = client.get(reverse("dashboard"))
    assert page.context["overview"]["undelivered"] == 1
    assert "Alert e-mails could not be delivered" in page.content.decode()
    listed = client.get(reverse("dashboard"), {"show": "undelivered"})
    assert [t.slug for t in listed.context["page"]] == [tenant_a.slug]

    # The watchdog tries again once MAIL_RETRY_AFTER has passed; this time the mail goes out.
    assert alerts.undelivered_tenants() == []
    DriftAlert.objects.filter(pk=alert.pk).update(mail_failed_at=timezone.now() - timedelta(hours=1))
    assert alerts.undelivered_tenants() == [tenant_a.pk]
    tasks.watchdog()
    alert.refresh_from_db()
    assert alert.notified_at is not None and alert.mail_failed_at is None
    assert len(mail.outbox) == 1
    assert client.get(reverse("dashboard")).context["overview"]["undelivered"] == 0


# Item 6: rate limits ----------------------------------------------------------------------------------------


def test_password_resets_for_one_address_are_limited(client, admin_a, settings):
    settings.RATELIMIT_PASSWORD_RESET_ADDRESS = "3/h"
    statuses = [
        client.post(reverse("password_reset"), {"email": "admin@a.example"}).status_code for _ in range(20)
    ]
    assert statuses[:3] == [302, 302, 302] and set(statuses[3:]) == {429}
    assert len(mail.outbox) == 3
    response = client.post(reverse("password_reset"), {"email": "ADMIN@A.example"})
    assert "Too many password reset requests" in response.content.decode()


def test_password_resets_from_one_client_are_limited_across_addresses(client, settings):
    settings.RATELIMIT_PASSWORD_RESET_CLIENT = "5/h"
    statuses = [
        client.post(reverse("password_reset"), {"email": f"n{i}@example.test"}).status_code for i in range(8)
    ]
    assert statuses == [302] * 5 + [429] * 3


def test_signups_are_limited_per_address_and_per_client(client, settings):
    settings.RATELIMIT_SIGNUP_ADDRESS = "2/h"
    settings.RATELIMIT_SIGNUP_CLIENT = "4/h"
    same = [_signup(client).status_code for _ in range(3)]
    assert same == [302, 302, 429]
    other = [_signup(client, email=f"p{i}@example.test").status_code for i in range(3)]
    assert other == [302, 429, 429]  # the client's fifth sign-up onwards


def test_invitations_are_limited_per_address(client, admin_a, tenant_a, settings):
    settings.RATELIMIT_INVITE_ADDRESS = "2/h"
    client.force_login(admin_a)
    for _ in range(4):
        client.post(
            reverse("team", args=[tenant_a.slug]), {"email": "invitee@example.test", "role": "member"}
        )
    assert len(mail.outbox) == 2
    assert AuditEvent.objects.filter(kind=AuditEvent.Kind.MEMBER_INVITED).count() == 2
    page = client.post(reverse("team", args=[tenant_a.slug]), {"email": "invitee@example.test"}, follow=True)
    assert "Too many invitations" in page.content.decode()
    assert not Membership.objects.filter(user__email="invitee@example.test").exists()
