"""connectwise.capture.anonymize on a hand-made scenario (the round trip is in tests/onboarding/test_capture.py)."""

from __future__ import annotations

import json
from pathlib import Path

from connectwise.capture import anonymize
from connectwise.checks.names import normalize_company_name
from connectwise.sandbox.scenario import parse_scenario

SCENARIOS = Path(__file__).resolve().parents[2] / "connectwise" / "sandbox" / "scenarios"
ROLE = {"name": "Billing Sync", "settings": [], "customizeItems": []}


def scenario() -> dict:
    return {
        "description": "Captured from Acme MSP",
        "company": {
            "id": "acme",
            "name": "Acme MSP",
            "siteUrl": "na.myconnectwise.net",
            "serverName": "cw-acme",
        },
        "apiMembers": [
            {"identifier": "capture", "publicKey": "p1", "privateKey": "k1", "securityRole": "Billing Sync"}
        ],
        "securityRoles": [ROLE],
        "records": {
            "company/companies": [
                {
                    "id": 1,
                    "identifier": "ContosoLtd",
                    "name": "Contoso Ltd",
                    "addressLine1": "1 Contoso Way",
                    "city": "Redmond",
                    "phoneNumber": "+1 555 0100",
                    "defaultContact": {"id": 7, "name": "Sam Smith"},
                },
                {
                    "id": 2,
                    "identifier": "ContosoLimited",
                    "name": "CONTOSO LIMITED",
                    "billToCompany": {"id": 1},
                },
                {"id": 3, "identifier": "Fabrikam", "name": "Fabrikam Pty Ltd"},
            ],
            "company/contacts": [
                {
                    "id": 7,
                    "firstName": "Sam",
                    "lastName": "Smith",
                    "company": {"id": 1, "name": "Contoso Ltd"},
                }
            ],
            "finance/agreements/types": [{"id": 3, "name": "O365"}],
            "finance/agreements": [
                {
                    "id": 10,
                    "name": "Contoso O365",
                    "type": {"id": 3, "name": "O365"},
                    "company": {"id": 1, "identifier": "ContosoLtd", "name": "Contoso Ltd"},
                    "contact": {"id": 7, "name": "Sam Smith"},
                    "customerPO": "PO-CONTOSO-1",
                },
                {
                    "id": 11,
                    "name": "Fabrikam child",
                    "type": {"id": 3, "name": "O365"},
                    "company": {"id": 3, "name": "Fabrikam Pty Ltd"},
                    "parentAgreement": {"id": 10, "name": "Contoso O365"},
                },
            ],
        },
    }


def test_names_and_identifiers_are_replaced_everywhere():
    original = scenario()
    out = anonymize(original)
    text = json.dumps(out)
    for secret in (
        "Contoso",
        "CONTOSO",
        "Fabrikam",
        "Sam",
        "Smith",
        "Redmond",
        "555",
        "PO-CONTOSO",
        "Acme",
        "cw-acme",
    ):
        assert secret not in text, secret
    assert original["records"]["company/companies"][0]["name"] == "Contoso Ltd"  # the input is not changed


def test_an_anonymized_shipped_scenario_is_still_one_the_sandbox_serves():
    broken = json.loads((SCENARIOS / "broken.json").read_text())
    broken["records"]["company/companies"][0].update(addressLine1="1 Contoso Way", city="Redmond")
    out = anonymize(broken)
    parsed = parse_scenario(out)
    assert len(parsed.records["company/companies"]) == len(broken["records"]["company/companies"])
    assert "Redmond" not in json.dumps(out) and "Contoso" not in json.dumps(out["records"])


def test_replacements_are_consistent_and_keep_what_the_checks_judge():
    out = anonymize(scenario())["records"]
    companies = {c["id"]: c for c in out["company/companies"]}
    first, second, third = companies[1], companies[2], companies[3]
    # "Contoso Ltd" and "CONTOSO LIMITED" were the same customer; they still are, under the new name.
    assert normalize_company_name(first["name"]) == normalize_company_name(second["name"])
    assert normalize_company_name(first["name"]) != normalize_company_name(third["name"])
    assert third["name"].endswith(" Pty Ltd")
    assert len({c["identifier"] for c in companies.values()}) == 3
    contoso, fabrikam = out["finance/agreements"]
    assert contoso["company"] == {"id": 1, "identifier": first["identifier"], "name": first["name"]}
    assert fabrikam["company"]["name"] == third["name"]
    assert fabrikam["parentAgreement"] == {"id": 10, "name": contoso["name"]}
    assert contoso["type"] == {"id": 3, "name": "O365"}  # agreement types are setup, not customer data
    assert contoso["contact"]["name"] == first["defaultContact"]["name"] == "Contact 7"
    assert out["company/contacts"][0]["company"]["name"] == first["name"]
    assert first["addressLine1"] == "1 Example Street" and first["phoneNumber"] == ""
    assert contoso["customerPO"] == ""
