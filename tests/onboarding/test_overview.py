"""The overview says what to do next (issue 14): finding counts per step and one next action, or, when every
step passes, what happens next."""

from __future__ import annotations

import pytest
from django.urls import reverse

from connectwise.checks.registry import STEP_KEYS
from tests.onboarding.wizard_helpers import (  # noqa: F401 (fixtures)
    clean_cache_fixture,
    connection_a_fixture,
    finding,
    stored_result,
)

pytestmark = pytest.mark.django_db


def test_without_a_connection_the_next_action_is_to_connect(client, admin_a, tenant_a):
    client.force_login(admin_a)
    response = client.get(reverse("tenant_home", args=[tenant_a.slug]))
    assert response.context["next_action"]["step"]["key"] == "connection"
    assert "Next: 1. Connection" in response.content.decode()


def test_the_next_action_is_the_first_open_step_with_its_counts(client, admin_a, tenant_a, connection_a):
    for key in ("connection", "security_role"):
        stored_result(tenant_a, key, "pass")
    stored_result(
        tenant_a,
        "catalog",
        "fail",
        [finding("catalog.misc_inactive"), finding("catalog.misc_inactive"), finding("x.y", "warning")],
    )
    client.force_login(admin_a)
    response = client.get(reverse("tenant_home", args=[tenant_a.slug]))
    html = response.content.decode()
    assert response.context["next_action"]["step"]["key"] == "catalog"
    assert "Next: 3. Product catalog" in html and "2 findings to fix." in html
    assert "2 to fix" in html and "1 to check" in html
    assert f'href="{reverse("step", args=[tenant_a.slug, "catalog"])}"' in html


def test_when_every_step_passes_the_overview_says_what_happens_next(client, admin_a, tenant_a, connection_a):
    for key in STEP_KEYS:
        stored_result(tenant_a, key, "pass")
    client.force_login(admin_a)
    response = client.get(reverse("tenant_home", args=[tenant_a.slug]))
    assert response.context["next_action"] is None
    assert "What happens next" in response.content.decode()


def test_a_long_organisation_name_gives_a_slug_without_a_trailing_hyphen(db):
    from onboarding.models import Tenant

    slug = Tenant.unique_slug("Managed Service Provider of the Greater North-West Region - Holdings")
    assert len(slug) <= 50 and not slug.endswith("-") and slug.startswith("managed-service-provider")


def test_the_sign_in_form_asks_for_the_e_mail(client):
    import re

    html = client.get(reverse("login")).content.decode()
    label = re.search(r'<label[^>]*for="id_username"[^>]*>(.*?)<', html, re.S).group(1).strip()
    assert label == "E-mail" and 'autocomplete="email"' in html
