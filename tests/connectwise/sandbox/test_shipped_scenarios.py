"""The shipped scenarios load, use docs/connectwise/REFERENCE.md §2/§3 names and enums, and hold the data the checks rely on."""

from __future__ import annotations

import pytest

from connectwise.sandbox import load_scenario
from connectwise.sandbox.resources import AGREEMENT_STATUSES, BILLING_OPTIONS, INVOICING_CYCLES

from .conftest import SCENARIOS, make_client


def test_every_shipped_file_loads(scenarios):
    assert sorted(p.name for p in SCENARIOS.glob("*.json")) == [
        "bare.json",
        "billing.json",
        "broken.json",
        "healthy.json",
        "realworld.json",
    ]
    assert {s.id for s in scenarios.values()} == {"acme", "brokenco", "bareco"}
    assert load_scenario(SCENARIOS / "realworld.json").id == "realco"


def test_realworld_is_shaped_like_a_real_partner():
    # Issue 17: no NotRecurring billing-cycle row, a look-alike "Monthly ", a custom status, dates ahead.
    records = load_scenario(SCENARIOS / "realworld.json").records
    cycles = records["finance/billingCycles"]
    assert "NotRecurring" not in {c["billingOptions"] for c in cycles}
    assert {"name": "Monthly ", "billingOptions": "Quarterly"}.items() <= next(
        c for c in cycles if c["id"] == 6
    ).items()
    assert any(s["name"] == "Active - Lead Tech Assigned" for s in records["company/companies/statuses"])
    assert any(a.get("billStartDate", "") > "2099" for a in records["finance/agreements"])


@pytest.mark.parametrize("company", ["acme", "brokenco", "bareco"])
def test_responses_use_the_reference_field_names_and_enums(app, company):
    with make_client(app, company) as client:
        agreements = client.get("finance/agreements", params={"pageSize": 1000}).json()
        cycles = client.get("finance/billingCycles").json()
        types = client.get("finance/agreements/types").json()
    assert agreements
    for agreement in agreements:
        assert agreement["agreementStatus"] in AGREEMENT_STATUSES
        assert agreement["invoicingCycle"] in INVOICING_CYCLES
        assert isinstance(agreement["prorateFlag"], bool)
        assert set(agreement["billingCycle"]) == {"id", "name"}
        assert {"id", "name"} <= set(agreement["type"]) and {"id", "name"} <= set(agreement["company"])
        assert "cycleBasedOn" not in agreement  # docs/connectwise/REFERENCE.md §3: no such field
    assert {c["billingOptions"] for c in cycles} <= set(BILLING_OPTIONS)
    assert any(c["billingOptions"] == "NotRecurring" and c["name"] == "One Time" for c in cycles)
    for agreement_type in types:
        assert {
            "name",
            "inactiveFlag",
            "billingCycle",
            "invoicingCycle",
            "prorateFlag",
            "billOneTimeFlag",
        } <= set(agreement_type)


def test_healthy_is_ready(app):
    with make_client(app, "acme") as client:
        misc = client.get("procurement/catalog", params={"conditions": 'identifier like "misc%"'}).json()
        assert [(p["identifier"], p["inactiveFlag"]) for p in misc] == [("misc-seat", False)]
        for path, name in [
            ("procurement/categories", "Miscellaneous"),
            ("procurement/subcategories", "Miscellaneous"),
            ("procurement/types", "Miscellaneous"),
            ("procurement/unitOfMeasures", "Each"),
        ]:
            rows = client.get(path, params={"conditions": f'name = "{name}" and inactiveFlag = false'}).json()
            assert len(rows) == 1, path
        companies = client.get("company/companies", params={"pageSize": 1000}).json()
        active = client.get(
            "finance/agreements", params={"conditions": 'agreementStatus = "Active"', "pageSize": 1000}
        ).json()
    assert {c["status"]["name"] for c in companies} == {"Active"}
    assert {a["company"]["id"] for a in active} == {c["id"] for c in companies}
    for agreement in active:
        if agreement["type"]["name"] == "Annual":
            assert agreement["billingCycle"]["name"] == "One Time"
        else:
            assert agreement["billingCycle"]["name"] == "Monthly"
            assert agreement["invoicingCycle"] == "CalendarYear" and agreement["prorateFlag"] is True


def test_broken_has_the_documented_data(app):
    with make_client(app, "brokenco") as client:
        get = client.get
        assert get("procurement/catalog/1").json()["inactiveFlag"] is True
        for path in ("procurement/categories/1", "procurement/subcategories/1", "procurement/types/1"):
            assert get(path).json() == {**get(path).json(), "name": "Miscellaneous", "inactiveFlag": True}
        assert get("procurement/unitOfMeasures/1").json()["inactiveFlag"] is True
        companies = {c["id"]: c for c in get("company/companies", params={"pageSize": 1000}).json()}
        assert companies[3]["status"]["name"] == "Inactive" and companies[4]["status"]["name"] == "Prospect"
        assert companies[5]["deletedFlag"] is True
        assert (companies[1]["name"], companies[2]["name"]) == ("Contoso Ltd", "Contoso Limited")
        assert get("finance/agreements/count", params={"conditions": "company/id = 6"}).json() == {"count": 0}
        agreements = {a["id"]: a for a in get("finance/agreements", params={"pageSize": 1000}).json()}
    assert agreements[7]["billingCycle"]["name"] == "Quarterly"
    assert agreements[8]["invoicingCycle"] == "ContractYear"
    assert agreements[9]["prorateFlag"] is False
    assert agreements[10]["agreementStatus"] == "Cancelled" and agreements[11]["agreementStatus"] == "Expired"
    assert agreements[12]["type"]["name"] == "Annual" and agreements[12]["billingCycle"]["name"] == "Monthly"
    # Agreement 13 is of type "Managed Services", not in the role's Access Allowed list: hidden from reads.
    assert 13 not in agreements and 113 not in agreements
    with make_client(app, "brokenco") as client:
        assert client.get("finance/agreements/13").status_code == 404
        assert client.get("finance/agreements/count", params={"conditions": "company/id = 13"}).json() == {
            "count": 0
        }
    assert agreements[114]["parentAgreement"]["id"] == 14
    assert agreements[15]["type"] == agreements[115]["type"] and agreements[115]["company"]["id"] == 15


def test_bare_has_nothing_set_up(app):
    with make_client(app, "bareco") as client:
        assert client.get(
            "procurement/catalog/count", params={"conditions": 'identifier like "misc%"'}
        ).json() == {"count": 0}
        assert client.get(
            "procurement/categories/count", params={"conditions": 'name = "Miscellaneous"'}
        ).json() == {"count": 0}
        assert client.get(
            "procurement/unitOfMeasures/count", params={"conditions": 'name = "Each"'}
        ).json() == {"count": 0}
        assert client.get("system/mySecurity").status_code == 403
