"""Issue 18: the sandbox validates an agreement create as ConnectWise does (SPEC 2025.8 ``Agreement``): required
fields, lengths, references that must exist, a contact of the agreement's company, and an agreement type the
member's Access Allowed list lacks refused with 403. Nothing refused is stored."""

from __future__ import annotations

import pytest

GOOD = {
    "name": "Contoso Ltd - Microsoft 365",
    "type": {"id": 1},
    "company": {"id": 1},
    "contact": {"id": 1},
    "billingCycle": {"id": 1},
    "invoicingCycle": "CalendarYear",
    "prorateFlag": True,
    "startDate": "2026-11-01T00:00:00Z",
}


def _count(client) -> int:
    return client.get("finance/agreements/count").json()["count"]


def test_a_complete_create_is_stored_with_the_readiness_settings(acme):
    created = acme.post("finance/agreements", json=GOOD)
    assert created.status_code == 201, created.text
    record = created.json()
    assert (record["billingCycle"]["name"], record["invoicingCycle"], record["prorateFlag"]) == (
        "Monthly",
        "CalendarYear",
        True,
    )
    assert record["contact"]["id"] == 1 and record["type"]["name"] == "O365"


@pytest.mark.parametrize(
    ("change", "field", "code"),
    [
        ({"contact": None}, "contact", "MissingRequiredField"),
        ({"name": ""}, "name", "MissingRequiredField"),
        ({"name": "x" * 101}, "name", None),
        ({"company": {"id": 999}}, "company", "InvalidField"),
        ({"contact": {"id": 999}}, "contact", "InvalidField"),
        ({"type": {"id": 999}}, "type", "InvalidField"),
        ({"billingCycle": {"id": 999}}, "billingCycle", "InvalidField"),
        ({"contact": {"id": 2}}, "contact", "InvalidField"),  # a contact of another company
    ],
)
def test_a_bad_create_is_400_naming_the_field_and_stores_nothing(acme, change, field, code):
    before = _count(acme)
    body = {k: v for k, v in {**GOOD, **change}.items() if v is not None}
    response = acme.post("finance/agreements", json=body)
    assert response.status_code == 400, response.text
    errors = response.json()["errors"]
    assert any(e["field"] == field and (code is None or e["code"] == code) for e in errors), errors
    assert _count(acme) == before


def test_a_type_the_role_does_not_allow_is_refused_with_403(acme):
    before = _count(acme)
    response = acme.post("finance/agreements", json={**GOOD, "type": {"id": 4}})  # Managed Services
    assert response.status_code == 403
    assert "Access Allowed" in response.json()["message"] and "Managed Services" in response.json()["message"]
    assert _count(acme) == before
