"""Agreement additions, a nested resource: finance/agreements/{parentId}/additions (SPEC tag AgreementAdditions)."""

from __future__ import annotations

import json

import pytest

from connectwise.sandbox import SandboxApp, ScenarioError, load_scenario, parse_scenario

from .conftest import SCENARIOS, make_client

KEYS = ("billpub", "billpriv-0123456789")


@pytest.fixture
def app():
    return SandboxApp([load_scenario(SCENARIOS / "billing.json")])


@pytest.fixture
def billco(app):
    with make_client(app, "billco", *KEYS) as client:
        yield client


def _data() -> dict:
    return json.loads((SCENARIOS / "billing.json").read_text())


def test_an_agreement_lists_only_its_own_additions_as_the_api_returns_them(billco):
    rows = billco.get("finance/agreements/1/additions").json()
    assert [r["id"] for r in rows] == [1, 2]
    assert rows[0]["agreementId"] == 1 and rows[0]["product"] == {"id": 1, "identifier": "misc-seat"}
    assert rows[0]["billCustomer"] == "Billable" and rows[0]["effectiveDate"] == "2025-01-01T00:00:00Z"
    assert billco.get("finance/agreements/12/additions").json() == []


def test_count_conditions_fields_and_paging(billco):
    assert billco.get("finance/agreements/1/additions/count").json() == {"count": 2}
    misc = billco.get(
        "finance/agreements/1/additions/count", params={"conditions": 'product/identifier like "misc%"'}
    )
    assert misc.json() == {"count": 1}
    active = billco.get(
        "finance/agreements/2/additions",
        params={
            "conditions": "cancelledDate = null or cancelledDate > [2026-12-31T00:00:00Z]",
            "fields": "id",
        },
    )
    assert active.json() == [{"id": 3}]
    first = billco.get("finance/agreements/1/additions", params={"pageSize": 1, "orderBy": "id desc"})
    assert [r["id"] for r in first.json()] == [2]
    assert (
        'rel="next"' in first.headers["Link"] and "/finance/agreements/1/additions?" in first.headers["Link"]
    )


def test_one_addition_is_reachable_only_under_its_agreement(billco):
    assert (
        billco.get("finance/agreements/1/additions/1").json()["description"]
        == "Microsoft 365 Business Premium"
    )
    assert billco.get("finance/agreements/2/additions/1").status_code == 404
    assert billco.get("finance/agreements/999/additions").status_code == 404
    # no cross-agreement endpoint in the SPEC
    assert billco.get("finance/agreements/additions").status_code == 404


def test_patch_sets_the_cancelled_date_and_validates_it(billco, app):
    ops = [{"op": "replace", "path": "cancelledDate", "value": "2026-12-31T00:00:00Z"}]
    response = billco.patch("finance/agreements/1/additions/1", json=ops)
    assert response.status_code == 200 and response.json()["cancelledDate"] == "2026-12-31T00:00:00Z"
    assert billco.get("finance/agreements/1/additions/1").json()["cancelledDate"] == "2026-12-31T00:00:00Z"
    bad = billco.patch(
        "finance/agreements/1/additions/1", json=[{"op": "replace", "path": "cancelledDate", "value": "soon"}]
    )
    assert bad.status_code == 400 and bad.json()["errors"][0]["field"] == "cancelledDate"
    moved = billco.patch(
        "finance/agreements/1/additions/1", json=[{"op": "replace", "path": "agreementId", "value": 2}]
    )
    assert moved.json()["agreementId"] == 1  # an addition stays on its agreement
    app.reset()
    assert (
        "cancelledDate" not in billco.get("finance/agreements/1/additions/1").json()
    )  # the API omits it when unset


def test_post_creates_an_addition_on_the_agreement_of_the_path(billco):
    body = {"product": {"id": 1}, "billCustomer": "Billable", "quantity": 3, "agreementId": 99}
    created = billco.post("finance/agreements/4/additions", json=body)
    assert created.status_code == 201
    record = created.json()
    assert record["agreementId"] == 4 and record["product"] == {"id": 1, "identifier": "misc-seat"}
    missing = billco.post("finance/agreements/4/additions", json={"quantity": 1})
    assert missing.status_code == 400
    assert {e["field"] for e in missing.json()["errors"]} == {"product", "billCustomer"}


def test_the_finance_agreements_role_guards_reads_and_writes():
    data = _data()
    for row in data["securityRoles"][0]["settings"]:
        if row["moduleFunctionName"] == "Agreements":
            row["inquireLevel"] = "None"
            row["editLevel"] = "None"
    with make_client(SandboxApp([parse_scenario(data)]), "billco", *KEYS) as client:
        assert client.get("finance/agreements/1/additions").status_code == 403
        assert client.get("finance/agreements/1/additions/count").status_code == 403
        patched = client.patch(
            "finance/agreements/1/additions/1", json=[{"op": "replace", "path": "quantity", "value": 1}]
        )
        assert patched.status_code == 403 and "Finance > Agreements" in patched.json()["message"]


@pytest.mark.parametrize(
    ("change", "where"),
    [
        (
            lambda a: a.pop("agreementId"),
            '$.records["finance/agreements/additions"][0].agreementId: required',
        ),
        (lambda a: a.update(agreementId=404), "no record with id 404"),
        (lambda a: a.update(product={"id": 77}), "product.id: no record with id 77"),
        (lambda a: a.update(billCustomer="Sometimes"), "billCustomer: must be one of Billable, DoNotBill"),
    ],
)
def test_a_bad_addition_in_a_scenario_is_refused_with_its_json_path(change, where):
    data = _data()
    change(data["records"]["finance/agreements/additions"][0])
    with pytest.raises(ScenarioError) as caught:
        parse_scenario(data)
    assert where in str(caught.value)
