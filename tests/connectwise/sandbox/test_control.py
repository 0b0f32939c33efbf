"""Control endpoints outside apis/3.0: describe, reset, faults, request log."""

from __future__ import annotations

import pytest

from .conftest import make_client


def test_describe_lists_what_is_served(control):
    body = control.get("/_sandbox/").json()
    assert [c["id"] for c in body["companies"]] == ["acme", "brokenco", "bareco"]
    acme = body["companies"][0]
    assert acme["apiBase"] == "http://sandbox.test/v4_6_release/apis/3.0/"
    assert acme["records"]["company/companies"] == 12


def test_request_log_counts_method_and_path_per_company(app, control, acme):
    acme.get("company/companies", params={"pageSize": 5})
    acme.get("company/companies", params={"pageSize": 5, "page": 2})
    acme.post("procurement/categories", json={"name": "Services"})
    acme.patch("procurement/catalog/1", json=[{"op": "replace", "path": "inactiveFlag", "value": False}])
    acme.get("procurement/subcategories/")
    control.get("/login/companyinfo/acme")
    with make_client(app, "acme", private="wrong") as bad:
        bad.get("system/info")
    counts = control.get("/_sandbox/requests").json()
    assert counts["acme"] == {
        "GET company/companies": 2,
        "POST procurement/categories": 1,
        "PATCH procurement/catalog/1": 1,
        "GET procurement/subcategories": 1,
        "GET login/companyinfo/acme": 1,
        "GET system/info": 1,
    }
    assert counts["brokenco"] == {}
    assert control.get("/_sandbox/requests?company=acme").json() == {"acme": counts["acme"]}
    assert control.delete("/_sandbox/requests").status_code == 204
    assert control.get("/_sandbox/requests").json()["acme"] == {}


def test_reset_restores_the_scenario(control, acme, broken):
    acme.post("procurement/categories", json={"name": "Services"})
    broken.patch("procurement/catalog/1", json=[{"op": "replace", "path": "inactiveFlag", "value": False}])
    assert control.post("/_sandbox/reset?company=acme").json() == {"reset": ["acme"]}
    assert acme.get("procurement/categories/count").json() == {"count": 3}
    assert broken.get("procurement/catalog/1").json()["inactiveFlag"] is False  # brokenco untouched
    control.post("/_sandbox/reset")
    assert broken.get("procurement/catalog/1").json()["inactiveFlag"] is True


def test_reset_restores_the_scenarios_faults(control, acme):
    control.post("/_sandbox/faults", json={"company": "acme", "rates": {"500": 1.0}})
    assert acme.get("system/info").status_code == 500
    control.post("/_sandbox/reset")
    assert acme.get("system/info").status_code == 200


def test_unknown_company_on_control_is_404(control):
    assert control.post("/_sandbox/reset?company=nosuchco").status_code == 404
    assert control.post("/_sandbox/faults", json={"company": "nosuchco"}).status_code == 404


def test_faults_can_be_read_back(control):
    control.post("/_sandbox/faults", json={"company": "brokenco", "latencyMs": 5})
    assert control.get("/_sandbox/faults?company=brokenco").json()["brokenco"]["latencyMs"] == 5


def _agreements_row(client):
    rows = client.get("system/mySecurity").json()
    return next(r for r in rows if (r["moduleName"], r["moduleFunctionName"]) == ("Finance", "Agreements"))


def test_security_control_changes_a_role_level_as_connectwise_would(control, broken):
    assert _agreements_row(broken)["addLevel"] == "None"
    answer = control.post(
        "/_sandbox/security",
        json={
            "company": "brokenco",
            "role": "Billing Sync",
            "setting": {"moduleName": "Finance", "moduleFunctionName": "Agreements", "addLevel": "All"},
        },
    )
    assert answer.status_code == 200, answer.text
    assert _agreements_row(broken)["addLevel"] == "All"
    assert _agreements_row(broken)["inquireLevel"] != "None"  # the other levels are kept
    control.post("/_sandbox/reset")
    assert _agreements_row(broken)["addLevel"] == "None"


def test_security_control_ticks_a_customize_item_once(app, control):
    body = {
        "company": "brokenco",
        "role": "Billing Sync",
        "customizeItem": {"customizeIdentifier": "Agreements", "itemIdentifier": "Managed Services"},
    }
    for _ in range(2):
        assert control.post("/_sandbox/security", json=body).status_code == 200
    role = next(r for r in app.tenant("brokenco").roles if r["name"] == "Billing Sync")
    ticked = [i for i in role["customizeItems"] if i["itemIdentifier"] == "Managed Services"]
    assert len(ticked) == 1 and ticked[0]["customizeIdentifier"] != "Agreements"  # the SPEC's enum value


def test_security_control_refuses_bad_input_with_the_field(control):
    bad_level = control.post(
        "/_sandbox/security",
        json={
            "company": "brokenco",
            "role": "Billing Sync",
            "setting": {"moduleName": "Finance", "moduleFunctionName": "Agreements", "addLevel": "Most"},
        },
    )
    assert bad_level.status_code == 400 and "addLevel" in bad_level.text
    assert control.post("/_sandbox/security", json={"role": "Billing Sync"}).status_code == 400
    unknown = control.post("/_sandbox/security", json={"company": "nosuchco", "role": "Billing Sync"})
    assert unknown.status_code == 404
    no_role = control.post("/_sandbox/security", json={"company": "brokenco", "role": "Nobody"})
    assert no_role.status_code == 404


@pytest.mark.parametrize("key", ["setting", "customizeItem"])
def test_security_control_refuses_a_change_that_is_not_an_object_with_a_400_naming_it(control, key):
    answer = control.post(
        "/_sandbox/security", json={"company": "brokenco", "role": "Billing Sync", key: "All"}
    )
    assert answer.status_code == 400, answer.text
    assert f"$.{key}: must be an object" in answer.json()["message"]


def test_security_control_finds_the_role_by_the_members_public_key(control, broken):
    answer = control.post(
        "/_sandbox/security",
        json={
            "company": "brokenco",
            "publicKey": "brokenpub",
            "setting": {"moduleName": "Finance", "moduleFunctionName": "Agreements", "addLevel": "All"},
        },
    )
    assert answer.status_code == 200 and answer.json()["role"]["name"] == "Billing Sync"
    assert _agreements_row(broken)["addLevel"] == "All"
    unknown = control.post("/_sandbox/security", json={"company": "brokenco", "publicKey": "nobody"})
    assert unknown.status_code == 404
