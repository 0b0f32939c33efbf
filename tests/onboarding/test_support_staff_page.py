"""Item 8 of issue 12, the web side: support staff invite and deactivate support colleagues on the support page
(the same service as ``manage.py support_user``), by e-mailed link, audited; nobody else reaches the page."""

from __future__ import annotations

import re
import smtplib
from unittest import mock

import pytest
from django.core import mail
from django.core.cache import cache
from django.urls import reverse

from onboarding.models import AuditEvent, User

pytestmark = pytest.mark.django_db
URL = "/support/staff/"


@pytest.fixture(autouse=True)
def _fresh_cache(settings, monkeypatch):
    """A fresh cache for the rate limits; the set-password e-mail task (enqueued after commit) runs at once."""
    from django.db import transaction

    from onboarding.celery import app

    settings.CACHES = {
        "default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache", "LOCATION": "staff"}
    }
    cache.clear()
    saved = app.conf.task_always_eager, app.conf.task_eager_propagates
    app.conf.update(task_always_eager=True, task_eager_propagates=False)
    monkeypatch.setattr(transaction, "on_commit", lambda fn, using=None, robust=False: fn())
    yield
    app.conf.update(task_always_eager=saved[0], task_eager_propagates=saved[1])


def test_support_invites_a_colleague_who_chooses_a_password_by_link(client, support):
    client.force_login(support)
    assert reverse("support_staff") == URL
    response = client.post(URL, {"action": "invite", "email": "New.Helper@Distributor.example"})
    assert response.status_code == 302
    colleague = User.objects.get(email="new.helper@distributor.example")
    assert colleague.is_support and colleague.is_active and not colleague.has_usable_password()
    [message] = mail.outbox
    assert message.to == ["new.helper@distributor.example"]
    link = re.search(r"https?://[^/\s]+(/accounts/reset/\S+/)", message.body).group(1)
    assert client.get(link, follow=True).status_code == 200
    event = AuditEvent.objects.get(kind=AuditEvent.Kind.SUPPORT_ADDED)
    assert event.actor == support and "new.helper@distributor.example" in event.message
    html = client.get(URL).content.decode()
    assert "new.helper@distributor.example" in html and "password not chosen yet" in html


def test_support_deactivates_a_colleague_but_not_themselves(client, support, django_user_model):
    colleague = django_user_model.objects.create_user(
        username="old@distributor.example", email="old@distributor.example", is_support=True
    )
    client.force_login(support)
    client.post(URL, {"action": "deactivate", "email": "old@distributor.example"})
    colleague.refresh_from_db()
    assert not colleague.is_active
    assert AuditEvent.objects.filter(kind=AuditEvent.Kind.SUPPORT_REMOVED, actor=support).count() == 1
    page = client.post(URL, {"action": "deactivate", "email": support.email}, follow=True)
    assert "cannot deactivate your own account" in page.content.decode()
    support.refresh_from_db()
    assert support.is_active


def test_a_partner_address_cannot_become_support_staff(client, support, admin_a):
    client.force_login(support)
    page = client.post(URL, {"action": "invite", "email": "admin@a.example"}, follow=True)
    assert "already has a partner account" in page.content.decode()
    admin_a.refresh_from_db()
    assert not admin_a.is_support and mail.outbox == []


def test_a_mail_server_that_is_down_leaves_the_invitation_to_the_workers_retries(client, support):
    """The page never waits on the mail server: the e-mail is a task after commit, retried by the worker; a
    second invitation of an address that has not chosen a password sends a new link."""
    client.force_login(support)
    with mock.patch("onboarding.mail.send_mail", side_effect=smtplib.SMTPServerDisconnected("x")) as sending:
        page = client.post(URL, {"action": "invite", "email": "h@distributor.example"}, follow=True)
    assert page.status_code == 200 and sending.called
    assert "gets an e-mail with a link" in page.content.decode() and not mail.outbox
    assert User.objects.get(email="h@distributor.example").is_support
    page = client.post(URL, {"action": "invite", "email": "h@distributor.example"}, follow=True)
    assert "has not chosen a password yet and gets a new link" in page.content.decode()
    assert [m.to for m in mail.outbox] == [["h@distributor.example"]]


def test_a_broker_that_is_down_is_said_not_a_500(client, support):
    from kombu.exceptions import OperationalError

    client.force_login(support)
    with mock.patch(
        "onboarding.support_accounts.send_support_welcome.delay", side_effect=OperationalError("no broker")
    ):
        page = client.post(URL, {"action": "invite", "email": "h@distributor.example"}, follow=True)
    assert page.status_code == 200
    assert "could not be sent (OperationalError)" in page.content.decode()


@pytest.mark.parametrize("who", ["admin_a", "member_a", "outsider_b"])
def test_partners_never_reach_the_page(client, request, who):
    client.force_login(request.getfixturevalue(who))
    assert client.get(URL).status_code == 404
    assert client.post(URL, {"action": "invite", "email": "x@distributor.example"}).status_code == 404
    assert not User.objects.filter(email="x@distributor.example").exists()
