"""API tokens: the support page and ``manage.py api_token`` (secret shown once, hashed, scoped, expiry, audited)."""

from __future__ import annotations

from io import StringIO

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from onboarding.models import ApiToken, AuditEvent


def run(*args) -> str:
    out = StringIO()
    call_command("api_token", *args, stdout=out)
    return out.getvalue()


@pytest.mark.django_db
def test_the_command_creates_lists_and_revokes(client):
    out = run("create", "billing sync", "--scope", "read+verify", "--expires", "30")
    secret = out.strip().splitlines()[-1]
    assert secret.startswith("bsr_")
    token = ApiToken.objects.get(name="billing sync")
    assert token.scope == "read+verify" and token.expires_at is not None and token.secret_hash != secret
    listing = run("list")
    assert "billing sync" in listing and "read+verify" in listing and "active" in listing
    assert secret not in listing
    assert client.get("/api/v1/tenants/", headers={"Authorization": f"Bearer {secret}"}).status_code == 200
    assert "Revoked" in run("revoke", "billing sync")
    assert "revoked" in run("list")
    assert client.get("/api/v1/tenants/", headers={"Authorization": f"Bearer {secret}"}).status_code == 401
    kinds = list(AuditEvent.objects.order_by("id").values_list("kind", "actor_label"))
    assert kinds == [
        ("token.created", "operator (command line)"),
        ("token.revoked", "operator (command line)"),
    ]


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("create", "x", "--expires", "0"), "between 1 and"),
        (
            (
                "create",
                " ",
            ),
            "name",
        ),
        (("revoke", "nobody"), "No API token named"),
    ],
)
def test_the_command_refuses_bad_requests_clearly(args, message):
    with pytest.raises(CommandError, match=message):
        run(*args)
    assert not ApiToken.objects.exists()


@pytest.mark.django_db
def test_the_command_refuses_a_duplicate_name():
    run("create", "sync")
    with pytest.raises(CommandError, match="already exists"):
        run("create", "sync")
    assert ApiToken.objects.count() == 1


@pytest.mark.django_db
def test_support_creates_a_token_on_the_page_and_sees_the_secret_once(client, support):
    client.force_login(support)
    response = client.post(
        "/support/api-tokens/", {"name": "sync prod", "scope": "read", "expires_days": "90"}
    )
    assert response.status_code == 200
    token = ApiToken.objects.get()
    page = response.content.decode()
    secret = page.split('data-testid="token-secret">', 1)[1].split("<", 1)[0]
    assert secret.startswith(token.prefix) and len(secret) > 30
    # The shared "shown once" box (partials/secret_once.html) and create card (partials/form_card.html).
    assert 'id="new-token"' in page and "Token “sync prod” created (read)" in page
    assert '<h2 class="h6" id="create-title">Create a token</h2>' in page
    again = client.get("/support/api-tokens/").content.decode()
    assert "sync prod" in again and secret not in again
    assert AuditEvent.objects.get(kind="token.created").actor == support
    client.post(f"/support/api-tokens/{token.uuid}/revoke/")
    token.refresh_from_db()
    assert token.revoked_at is not None
    assert AuditEvent.objects.filter(kind="token.revoked", actor=support).count() == 1


@pytest.mark.django_db
@pytest.mark.parametrize(
    "data",
    [
        {"name": "", "scope": "read"},
        {"name": "x", "scope": "admin"},
        {"name": "x", "scope": "read", "expires_days": "-3"},
    ],
)
def test_bad_token_forms_are_refused_next_to_the_field(client, support, data):
    client.force_login(support)
    response = client.post("/support/api-tokens/", data)
    assert response.status_code == 400
    assert not ApiToken.objects.exists()
