"""The CSV export and the JSON endpoint: the same data and filters as the list, staff only, never a secret."""

from __future__ import annotations

import csv
import io

import pytest
from django.urls import reverse

from connectwise.checks.registry import STEP_KEYS
from onboarding.models import Connection

from .dashboard_factories import ALL_PASS, PRIVATE_KEY, make_tenant, statuses

pytestmark = pytest.mark.django_db


def read_csv(response) -> list[dict]:
    assert response.streaming
    text = b"".join(response.streaming_content).decode()
    return list(csv.DictReader(io.StringIO(text)))


@pytest.fixture
def tenants(db):
    return [
        make_tenant("ready-co", name="Alpha Ready", step_statuses=ALL_PASS, checked_hours_ago=2),
        make_tenant(
            "drift-co",
            name="Bravo Drift",
            step_statuses=statuses(catalog="fail", customers="error"),
            drift=("catalog",),
        ),
        make_tenant("stale-co", name="Charlie Stale", step_statuses=ALL_PASS, checked_hours_ago=60),
        make_tenant("unconnected", name="=HYPERLINK(1)", checked_hours_ago=None, connected=False),
    ]


def test_the_csv_has_the_documented_columns(client, support, tenants):
    client.force_login(support)
    response = client.get(reverse("support_export"))
    assert response.status_code == 200
    assert response["Content-Type"] == "text/csv; charset=utf-8"
    assert response["Content-Disposition"].startswith('attachment; filename="tenants-')
    rows = read_csv(response)
    assert list(rows[0]) == [
        "tenant",
        "slug",
        "ready",
        "first_open_step",
        *STEP_KEYS,
        "last_checked_at",
        "stale",
        "drift_steps",
        "has_error",
        "errors",  # issue 11: ConnectWise's code, message, request and request id per step in error
    ]
    by_slug = {r["slug"]: r for r in rows}
    assert list(by_slug) == ["unconnected", "ready-co", "drift-co", "stale-co"]  # by name, like the page
    drift = by_slug["drift-co"]
    assert drift["tenant"] == "Bravo Drift"
    assert (drift["ready"], drift["first_open_step"], drift["catalog"], drift["customers"]) == (
        "no",
        "catalog",
        "fail",
        "error",
    )
    assert (drift["drift_steps"], drift["has_error"], drift["stale"]) == ("catalog", "yes", "no")
    assert drift["last_checked_at"]
    assert by_slug["ready-co"]["ready"] == "yes"
    assert by_slug["stale-co"]["stale"] == "yes"
    assert by_slug["unconnected"]["last_checked_at"] == "" and by_slug["unconnected"]["connection"] == ""
    # A partner-chosen name is never run as a spreadsheet formula.
    assert by_slug["unconnected"]["tenant"] == "'=HYPERLINK(1)"


def test_the_csv_uses_the_page_filters(client, support, tenants):
    client.force_login(support)
    assert [r["slug"] for r in read_csv(client.get(reverse("support_export"), {"show": "stale"}))] == [
        "stale-co"
    ]
    assert [r["slug"] for r in read_csv(client.get(reverse("support_export"), {"step": "catalog"}))] == [
        "drift-co"
    ]
    assert [r["slug"] for r in read_csv(client.get(reverse("support_export"), {"q": "alpha"}))] == [
        "ready-co"
    ]
    newest = read_csv(client.get(reverse("support_export"), {"sort": "-last_checked"}))
    assert [r["slug"] for r in newest] == ["drift-co", "ready-co", "stale-co", "unconnected"]


def test_the_json_endpoint_has_the_same_data_paged(client, support, tenants):
    for i in range(52):
        make_tenant(f"more-{i:02d}", name=f"Zulu {i:02d}", step_statuses=statuses(agreements="fail"))
    client.force_login(support)
    first = client.get(reverse("support_api_tenants")).json()
    assert (first["count"], first["page"], first["pages"], first["page_size"]) == (56, 1, 2, 50)
    assert first["previous"] is None
    assert first["next"] == reverse("support_api_tenants") + "?page=2"
    assert first["steps"] == list(STEP_KEYS)
    drift = next(r for r in first["results"] if r["slug"] == "drift-co")
    assert drift == {
        "name": "Bravo Drift",
        "slug": "drift-co",
        "ready": False,
        "first_open_step": "catalog",
        "steps": statuses(catalog="fail", customers="error"),
        "last_checked_at": drift["last_checked_at"],
        "stale": False,
        "drift_since": drift["drift_since"],
        "drift_steps": ["catalog"],
        "has_error": True,
        "errors": {},
    }
    assert drift["last_checked_at"] and drift["drift_since"]
    second = client.get(first["next"]).json()
    assert len(second["results"]) == 6 and second["next"] is None
    filtered = client.get(reverse("support_api_tenants"), {"show": "not_ready", "step": "agreements"}).json()
    assert filtered["count"] == 52
    assert filtered["next"] == reverse("support_api_tenants") + "?show=not_ready&step=agreements&page=2"
    assert {r["first_open_step"] for r in filtered["results"]} == {"agreements"}


def test_no_export_ever_contains_a_secret(client, support, tenants):
    encrypted = Connection.objects.get(tenant=tenants[0]).private_key_encrypted
    client.force_login(support)
    csv_text = b"".join(client.get(reverse("support_export")).streaming_content).decode()
    json_text = client.get(reverse("support_api_tenants")).content.decode()
    for text in (csv_text, json_text):
        assert PRIVATE_KEY not in text
        assert encrypted not in text
        assert "pub-ready-co" not in text  # not even the public key: the exports are about readiness


def test_exports_are_not_found_for_partners(client, admin_a):
    client.force_login(admin_a)
    assert client.get(reverse("support_export")).status_code == 404
    assert client.get(reverse("support_api_tenants")).status_code == 404
