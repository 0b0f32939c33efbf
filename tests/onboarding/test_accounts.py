"""Sign up, sign in (with lockout), password reset, the team page and invitations."""

from __future__ import annotations

import re

import pytest
from django.core import mail
from django.urls import reverse

from onboarding.models import AuditEvent, Invitation, Membership, Tenant, User
from tests.conftest import PASSWORD
from tests.onboarding.wizard_helpers import clean_cache_fixture  # noqa: F401 (autouse fixture)

pytestmark = pytest.mark.django_db

GOOD_PASSWORD = "plum-orbit-harbour-42"


@pytest.fixture(autouse=True)
def _mail_tasks_inline(monkeypatch):
    """E-mail is sent by Celery tasks after commit: run them eagerly, at once (there is no commit in a test)."""
    from django.db import transaction

    from onboarding.celery import app

    saved = app.conf.task_always_eager, app.conf.task_eager_propagates
    app.conf.update(task_always_eager=True, task_eager_propagates=True)
    monkeypatch.setattr(transaction, "on_commit", lambda fn, using=None, robust=False: fn())
    yield
    app.conf.update(task_always_eager=saved[0], task_eager_propagates=saved[1])


def _signup(client, **overrides):
    data = {
        "organisation": "Northwind MSP",
        "name": "Nora North",
        "email": "nora@northwind.example",
        "password1": GOOD_PASSWORD,
        "password2": GOOD_PASSWORD,
        **overrides,
    }
    return client.post(reverse("signup"), data)


# Sign up -----------------------------------------------------------------------------------------------------


def test_signup_creates_tenant_and_its_first_admin_after_the_address_is_confirmed(client):
    response = _signup(client)
    tenant = Tenant.objects.get(name="Northwind MSP")
    assert response.status_code == 302 and response.url == reverse("signup_sent")
    assert "nora@northwind.example" in client.get(response.url).content.decode()
    user = User.objects.get(email="nora@northwind.example")
    assert user.first_name == "Nora" and user.last_name == "North"
    assert user.check_password(GOOD_PASSWORD)
    assert not user.is_active  # not before the address is confirmed
    assert Membership.objects.get(tenant=tenant, user=user).role == Membership.Role.ADMIN
    assert AuditEvent.objects.filter(tenant=tenant, kind=AuditEvent.Kind.MEMBER_JOINED).exists()
    assert client.get(reverse("step", args=[tenant.slug, "connection"])).status_code == 302  # not signed in

    [message] = mail.outbox
    assert message.to == ["nora@northwind.example"]
    link = re.search(r"https?://[^/\s]+(/accounts/signup/confirm/\S+/)", message.body).group(1)
    assert "Confirm and start" in client.get(link).content.decode()  # GET changes nothing (mail scanners)
    user.refresh_from_db()
    assert not user.is_active
    response = client.post(link)
    assert response.status_code == 302 and response.url == reverse("step", args=[tenant.slug, "connection"])
    user.refresh_from_db()
    assert user.is_active
    assert client.get(reverse("step", args=[tenant.slug, "connection"])).status_code == 200  # signed in


def test_a_tampered_confirmation_link_does_not_work(client):
    _signup(client)
    link = re.search(r"(/accounts/signup/confirm/\S+/)", mail.outbox[0].body).group(1)
    assert client.post(link.replace(":", "x", 1)).status_code == 404
    assert not User.objects.get(email="nora@northwind.example").is_active


def test_signup_gives_a_second_organisation_with_the_same_name_its_own_slug(client, tenant_a):
    _signup(client, organisation="Tenant A")
    assert Tenant.objects.filter(name="Tenant A").count() == 2
    assert (
        Tenant.objects.get(name="Tenant A", memberships__user__email="nora@northwind.example").slug
        != "tenant-a"
    )


def test_signup_answers_the_same_for_an_existing_address_and_mails_its_owner(client, admin_a):
    """Item 6 of issue 12: sign-up does not tell anyone whether an address has an account."""
    new = _signup(client, email="someone.new@example.test")
    client.session.flush()
    taken = _signup(client, email="ADMIN@A.Example")
    assert (taken.status_code, taken.url) == (new.status_code, new.url) == (302, reverse("signup_sent"))
    assert "Check your inbox" in client.get(taken.url).content.decode()
    assert Tenant.objects.filter(name="Northwind MSP").count() == 1  # only the new address's
    assert User.objects.filter(email__iexact="admin@a.example").count() == 1
    notice = [m for m in mail.outbox if m.to == ["admin@a.example"]]
    assert len(notice) == 1 and "already have an account" in notice[0].body


@pytest.mark.parametrize(
    "password, message",
    [("short1x", "too short"), ("password123", "too common"), ("1234567890123", "entirely numeric")],
)
def test_signup_applies_django_password_validators(client, password, message):
    response = _signup(client, password1=password, password2=password)
    assert response.status_code == 200
    assert message in response.content.decode()
    assert not User.objects.exists()


def test_signup_password_similar_to_the_email_is_refused(client):
    response = _signup(
        client, email="harbourmaster@example.com", password1="harbourmaster1", password2="harbourmaster1"
    )
    assert "too similar" in response.content.decode()


def test_signup_passwords_must_match(client):
    response = _signup(client, password2=GOOD_PASSWORD + "x")
    assert "do not match" in response.content.decode()
    assert not User.objects.exists()


# Sign in -----------------------------------------------------------------------------------------------------


def test_sign_in_page_links_to_sign_up_and_password_reset(client):
    html = client.get(reverse("login")).content.decode()
    assert reverse("signup") in html
    assert reverse("password_reset") in html


def test_sign_in_with_email_in_any_case(client, admin_a):
    response = client.post(reverse("login"), {"username": "Admin@A.example", "password": PASSWORD})
    assert response.status_code == 302
    assert client.get(reverse("home")).status_code == 302  # home sends the single-tenant admin to the tenant


def test_too_many_failed_sign_ins_lock_the_account_for_a_while(client, admin_a, settings):
    settings.LOGIN_FAILURE_LIMIT = 3
    for _ in range(3):
        assert (
            client.post(reverse("login"), {"username": admin_a.email, "password": "wrong"}).status_code == 200
        )
    response = client.post(reverse("login"), {"username": admin_a.email, "password": PASSWORD})
    assert response.status_code == 429
    assert "Too many failed sign-ins" in response.content.decode()
    assert "_auth_user_id" not in client.session


# Password reset ----------------------------------------------------------------------------------------------


def test_password_reset_sends_a_mail_with_a_working_link(client, admin_a):
    response = client.post(reverse("password_reset"), {"email": "ADMIN@a.example"})
    assert response.status_code == 302 and response.url == reverse("password_reset_done")
    assert len(mail.outbox) == 1
    message = mail.outbox[0]
    assert message.to == ["admin@a.example"]
    link = re.search(r"https?://[^/\s]+(/accounts/reset/\S+/)", message.body).group(1)

    page = client.get(link, follow=True)
    assert "Choose a new password" in page.content.decode()
    done = client.post(
        page.redirect_chain[-1][0], {"new_password1": GOOD_PASSWORD, "new_password2": GOOD_PASSWORD}
    )
    assert done.status_code == 302 and done.url == reverse("password_reset_complete")
    admin_a.refresh_from_db()
    assert admin_a.check_password(GOOD_PASSWORD)


def test_password_reset_for_an_unknown_address_sends_nothing_and_looks_the_same(client):
    response = client.post(reverse("password_reset"), {"email": "nobody@example.com"})
    assert response.status_code == 302 and response.url == reverse("password_reset_done")
    assert mail.outbox == []


def test_password_reset_pages_render_in_our_look(client):
    for name in ("password_reset", "password_reset_done", "password_reset_complete"):
        html = client.get(reverse(name)).content.decode()
        assert "app.css" in html
    bad = client.get(reverse("password_reset_confirm", args=["MQ", "bad-token"]))
    assert "does not work any more" in bad.content.decode()


# Team and invitations ----------------------------------------------------------------------------------------


def test_team_page_lists_members_and_pending_invitations(client, admin_a, member_a, tenant_a):
    Invitation.objects.create(tenant=tenant_a, email="pending@a.example", invited_by=admin_a)
    client.force_login(admin_a)
    html = client.get(reverse("team", args=[tenant_a.slug])).content.decode()
    assert "admin@a.example" in html and "member@a.example" in html
    assert "pending@a.example" in html
    assert "Send invitation" in html


def test_team_page_is_404_for_an_outsider(client, outsider_b, tenant_a):
    client.force_login(outsider_b)
    assert client.get(reverse("team", args=[tenant_a.slug])).status_code == 404
    assert client.post(reverse("team", args=[tenant_a.slug]), {"email": "x@y.example"}).status_code == 404


def test_member_sees_the_team_but_cannot_invite(client, member_a, admin_a, tenant_a):
    client.force_login(member_a)
    html = client.get(reverse("team", args=[tenant_a.slug])).content.decode()
    assert "Send invitation" not in html
    response = client.post(
        reverse("team", args=[tenant_a.slug]), {"email": "new@a.example", "role": "member"}
    )
    assert response.status_code == 403
    assert not Invitation.objects.exists()


def test_admin_invites_a_teammate_by_email(client, admin_a, tenant_a):
    client.force_login(admin_a)
    response = client.post(
        reverse("team", args=[tenant_a.slug]), {"email": "Newbie@A.example", "role": "admin"}
    )
    assert response.status_code == 302
    invitation = Invitation.objects.get(tenant=tenant_a)
    assert invitation.email == "Newbie@A.example" and invitation.role == "admin"
    assert len(mail.outbox) == 1
    assert mail.outbox[0].to == ["Newbie@A.example"]
    assert reverse("accept_invitation", args=[invitation.token]) in mail.outbox[0].body
    assert AuditEvent.objects.filter(tenant=tenant_a, kind=AuditEvent.Kind.MEMBER_INVITED).count() == 1


def test_inviting_an_existing_member_is_refused(client, admin_a, member_a, tenant_a):
    client.force_login(admin_a)
    response = client.post(
        reverse("team", args=[tenant_a.slug]), {"email": "MEMBER@a.example", "role": "member"}
    )
    assert response.status_code == 200
    assert "already a member" in response.content.decode()
    assert mail.outbox == []


def test_inviting_again_replaces_the_older_link(client, admin_a, tenant_a):
    client.force_login(admin_a)
    for _ in range(2):
        client.post(reverse("team", args=[tenant_a.slug]), {"email": "new@a.example", "role": "member"})
    assert Invitation.objects.filter(tenant=tenant_a).count() == 1


def test_anonymous_invitee_creates_an_account_and_joins(client, admin_a, tenant_a):
    invitation = Invitation.objects.create(
        tenant=tenant_a, email="new@a.example", role="member", invited_by=admin_a
    )
    url = reverse("accept_invitation", args=[invitation.token])
    page = client.get(url).content.decode()
    assert "Join Tenant A" in page and "new@a.example" in page
    response = client.post(url, {"name": "Nia New", "password1": GOOD_PASSWORD, "password2": GOOD_PASSWORD})
    assert response.status_code == 302 and response.url == reverse("tenant_home", args=[tenant_a.slug])
    user = User.objects.get(email="new@a.example")
    assert Membership.objects.get(tenant=tenant_a, user=user).role == Membership.Role.MEMBER
    invitation.refresh_from_db()
    assert invitation.accepted_at is not None
    assert AuditEvent.objects.filter(tenant=tenant_a, kind=AuditEvent.Kind.MEMBER_JOINED, actor=user).exists()
    assert client.get(reverse("tenant_home", args=[tenant_a.slug])).status_code == 200


def test_signed_in_user_accepting_gets_a_membership(client, admin_a, outsider_b, tenant_a):
    invitation = Invitation.objects.create(
        tenant=tenant_a, email="admin@b.example", role="admin", invited_by=admin_a
    )
    client.force_login(outsider_b)
    response = client.post(reverse("accept_invitation", args=[invitation.token]))
    assert response.status_code == 302
    assert Membership.objects.get(tenant=tenant_a, user=outsider_b).role == Membership.Role.ADMIN


def test_an_invitation_works_once(client, admin_a, outsider_b, tenant_a):
    invitation = Invitation.objects.create(tenant=tenant_a, email="admin@b.example", invited_by=admin_a)
    client.force_login(outsider_b)
    url = reverse("accept_invitation", args=[invitation.token])
    client.post(url)
    assert client.post(url).status_code == 404
    assert Membership.objects.filter(tenant=tenant_a, user=outsider_b).count() == 1
    assert AuditEvent.objects.filter(tenant=tenant_a, kind=AuditEvent.Kind.MEMBER_JOINED).count() == 1


def test_existing_account_is_asked_to_sign_in_before_joining(client, admin_a, outsider_b, tenant_a):
    invitation = Invitation.objects.create(tenant=tenant_a, email="ADMIN@b.example", invited_by=admin_a)
    url = reverse("accept_invitation", args=[invitation.token])
    assert "Sign in to join" in client.get(url).content.decode()
    response = client.post(url, {"name": "x", "password1": GOOD_PASSWORD, "password2": GOOD_PASSWORD})
    assert response.status_code == 302 and response.url.startswith(reverse("login"))
    assert not Membership.objects.filter(tenant=tenant_a, user=outsider_b).exists()


def test_unknown_or_expired_invitation_is_404(client, admin_a, tenant_a):
    import uuid
    from datetime import timedelta

    from django.utils import timezone

    assert client.get(reverse("accept_invitation", args=[uuid.uuid4()])).status_code == 404
    old = Invitation.objects.create(
        tenant=tenant_a,
        email="old@a.example",
        invited_by=admin_a,
        created_at=timezone.now() - timedelta(days=8),
    )
    assert client.get(reverse("accept_invitation", args=[old.token])).status_code == 404


def test_admin_withdraws_an_invitation(client, admin_a, tenant_a):
    invitation = Invitation.objects.create(tenant=tenant_a, email="new@a.example", invited_by=admin_a)
    client.force_login(admin_a)
    response = client.post(reverse("revoke_invitation", args=[tenant_a.slug, invitation.token]))
    assert response.status_code == 302
    assert not Invitation.objects.exists()


def test_withdrawing_is_403_for_a_member_and_404_for_an_outsider(
    client, admin_a, member_a, outsider_b, tenant_a
):
    invitation = Invitation.objects.create(tenant=tenant_a, email="new@a.example", invited_by=admin_a)
    url = reverse("revoke_invitation", args=[tenant_a.slug, invitation.token])
    client.force_login(member_a)
    assert client.post(url).status_code == 403
    client.force_login(outsider_b)
    assert client.post(url).status_code == 404
    assert Invitation.objects.exists()


def test_home_offers_sign_up_to_someone_without_an_organisation(client, django_user_model):
    user = django_user_model.objects.create_user(
        username="loner@example.com", email="loner@example.com", password="x"
    )
    client.force_login(user)
    assert reverse("signup") in client.get(reverse("home")).content.decode()


def test_an_admin_changes_roles_and_removes_members_but_never_the_last_admin(
    client, admin_a, member_a, tenant_a
):
    from onboarding.models import AuditEvent, Membership

    client.force_login(admin_a)
    mine = Membership.objects.get(user=admin_a, tenant=tenant_a)
    theirs = Membership.objects.get(user=member_a, tenant=tenant_a)
    url = lambda m: reverse("member_update", args=[tenant_a.slug, m.uuid])  # noqa: E731
    page = client.post(url(mine), {"action": "member"}, follow=True).content.decode()
    assert "only admin" in page
    assert Membership.objects.get(pk=mine.pk).role == "admin"
    client.post(url(theirs), {"action": "admin"})
    assert Membership.objects.get(pk=theirs.pk).role == "admin"
    client.post(url(mine), {"action": "member"})  # now there is another admin
    assert Membership.objects.get(pk=mine.pk).role == "member"
    client.force_login(member_a)
    client.post(url(mine), {"action": "remove"})
    assert not Membership.objects.filter(pk=mine.pk).exists()
    kinds = set(AuditEvent.objects.filter(tenant=tenant_a).values_list("kind", flat=True))
    assert {"member.changed", "member.removed"} <= kinds
    client.force_login(admin_a)  # removed: tenant A is gone for them
    assert client.get(reverse("team", args=[tenant_a.slug])).status_code == 404


def test_a_read_only_member_cannot_change_roles(client, admin_a, member_a, tenant_a):
    from onboarding.models import Membership

    client.force_login(member_a)
    target = Membership.objects.get(user=admin_a, tenant=tenant_a)
    response = client.post(reverse("member_update", args=[tenant_a.slug, target.uuid]), {"action": "remove"})
    assert response.status_code == 403
    assert Membership.objects.filter(pk=target.pk).exists()


def test_the_only_admin_is_not_offered_read_only_or_remove_and_the_server_refuses_both(
    client, admin_a, member_a, tenant_a
):
    # issue 14 item 5: the only admin was offered "Make read-only" and "Remove" on themselves
    from onboarding.models import Membership

    client.force_login(admin_a)
    mine = Membership.objects.get(user=admin_a, tenant=tenant_a)
    theirs = Membership.objects.get(user=member_a, tenant=tenant_a)
    page = client.get(reverse("team", args=[tenant_a.slug])).content.decode()
    assert f"Make read-only: {admin_a.email}" not in page and f"Remove: {admin_a.email}" not in page
    assert "the only admin" in page.lower()
    assert f"Make admin: {member_a.email}" in page and f"Remove: {member_a.email}" in page
    url = reverse("member_update", args=[tenant_a.slug, mine.uuid])
    for action in ("member", "remove"):
        refused = client.post(url, {"action": action}, follow=True)
        assert "only admin" in refused.content.decode()
        assert Membership.objects.get(pk=mine.pk).role == "admin"
    theirs.role = Membership.Role.ADMIN
    theirs.save()
    page = client.get(
        reverse("team", args=[tenant_a.slug])
    ).content.decode()  # two admins: each can step down
    assert f"Make read-only: {admin_a.email}" in page and f"Remove: {admin_a.email}" in page
