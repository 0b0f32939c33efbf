"""Item 1 of issue 12: an invitation link works only for the address it was sent to, and never for support staff.

Tenant A's admin invites invitee@example.test; whoever else opens the link (a signed-in user of tenant B, a
support-staff account, someone the mail was forwarded to) is refused with a clear reason and nothing changes."""

from __future__ import annotations

import pytest
from django.urls import reverse

from onboarding.models import AuditEvent, Invitation, Membership
from tests.conftest import PASSWORD, _user

pytestmark = pytest.mark.django_db


@pytest.fixture
def invitation(tenant_a, admin_a):
    return Invitation.objects.create(
        tenant=tenant_a, email="invitee@example.test", role="admin", invited_by=admin_a
    )


def _state(tenant):
    return (
        list(Membership.objects.filter(tenant=tenant).values_list("user_id", "role")),
        AuditEvent.objects.filter(tenant=tenant).count(),
        list(Invitation.objects.filter(tenant=tenant).values_list("accepted_at", flat=True)),
    )


def test_a_user_of_another_tenant_cannot_accept_an_invitation_for_another_address(
    client, invitation, outsider_b, tenant_a
):
    client.force_login(outsider_b)
    url = reverse("accept_invitation", args=[invitation.token])
    before = _state(tenant_a)
    page = client.get(url)
    assert page.status_code == 403
    assert "in*****@example.test" in page.content.decode() and "admin@b.example" in page.content.decode()
    response = client.post(url)
    assert response.status_code == 403
    assert "This invitation is not for this account" in response.content.decode()
    assert _state(tenant_a) == before
    assert not Membership.objects.filter(tenant=tenant_a, user=outsider_b).exists()


def test_support_staff_can_never_join_a_partner_tenant(client, django_user_model, tenant_a, admin_a):
    staff = _user(django_user_model, "helper@distributor.example", is_support=True)
    invitation = Invitation.objects.create(
        tenant=tenant_a, email="Helper@Distributor.example", invited_by=admin_a
    )
    client.force_login(staff)
    before = _state(tenant_a)
    response = client.post(reverse("accept_invitation", args=[invitation.token]))
    assert response.status_code == 403
    assert "Support staff accounts cannot join" in response.content.decode()
    assert _state(tenant_a) == before


def test_the_invited_address_joins_in_any_case(client, invitation, django_user_model, tenant_a):
    user = _user(django_user_model, "INVITEE@Example.Test")
    client.force_login(user)
    response = client.post(reverse("accept_invitation", args=[invitation.token]))
    assert response.status_code == 302
    assert Membership.objects.get(tenant=tenant_a, user=user).role == "admin"


def test_signing_in_with_another_account_from_the_link_still_does_not_join(
    client, invitation, outsider_b, tenant_a
):
    """The "sign in to join" path: the check applies after sign-in too."""
    url = reverse("accept_invitation", args=[invitation.token])
    client.post(reverse("login"), {"username": "admin@b.example", "password": PASSWORD, "next": url})
    assert client.post(url).status_code == 403
    assert not Membership.objects.filter(tenant=tenant_a, user=outsider_b).exists()
