"""The calling member's security role guards every path (PRODUCT.md): 403 where the level is None."""

from __future__ import annotations

import copy

import pytest

from connectwise.sandbox import SandboxApp, parse_scenario
from connectwise.sandbox.generate import base_scenario, customize_items, generate_scenario, role_settings

from .conftest import make_client


def _app(settings=None, items=None, **company):
    data = base_scenario("roleco", "Role Co", "rolepub", "rolepriv")
    data["company"].update(company)
    role = data["securityRoles"][0]
    if settings is not None:
        role["settings"] = settings
    if items is not None:
        role["customizeItems"] = items
    return SandboxApp([parse_scenario(copy.deepcopy(data))])


def _client(app):
    return make_client(app, "roleco", "rolepub", "rolepriv")


@pytest.mark.parametrize(
    "path",
    [
        "company/companies",
        "company/companies/statuses",
        "finance/agreements",
        "finance/billingCycles",
        "procurement/catalog",
        "procurement/categories",
        "procurement/subcategories",
        "procurement/types",
        "procurement/unitOfMeasures",
        "system/mySecurity",
        "system/mySecurity/customizeItems",
        "system/apiMembers",
        "system/securityroles",
    ],
)
def test_the_least_privilege_role_reads_what_the_sync_needs(path):
    with _client(_app()) as client:
        assert client.get(path).status_code == 200


def test_contacts_need_their_own_function():
    with _client(_app()) as client:
        response = client.get("company/contacts")
    assert response.status_code == 403
    assert response.json()["code"] == "Forbidden"
    assert "Companies > Contacts" in response.json()["message"]


def test_inquire_none_is_403_on_list_by_id_and_count():
    app = _app(role_settings({("Finance", "Agreements"): {"inquireLevel": "None"}}))
    with _client(app) as client:
        for path in (
            "finance/agreements",
            "finance/agreements/count",
            "finance/agreements/types",
            "finance/agreements/1",
        ):
            assert client.get(path).status_code == 403, path
        assert client.get("company/companies").status_code == 200


def _owned_catalog_app(level: str):
    # docs/connectwise/REFERENCE.md §2 "My": a record is the member's when its _info.enteredBy is the member's
    # identifier. Product 2 was entered by the API member ("billingsync"), product 1 by someone else.
    data = base_scenario("roleco", "Role Co", "rolepub", "rolepriv")
    data["securityRoles"][0]["settings"] = role_settings(
        {("Procurement", "Product Catalog"): {"inquireLevel": level, "editLevel": level, "addLevel": "All"}}
    )
    catalog = data["records"]["procurement/catalog"]
    catalog[0]["_info"] = {"enteredBy": "jsmith"}
    catalog[1]["_info"] = {"enteredBy": "BillingSync"}
    return SandboxApp([parse_scenario(data)]), [p["id"] for p in catalog]


def test_inquire_my_returns_only_the_members_own_records():
    app, ids = _owned_catalog_app("My")
    with _client(app) as client:
        listed = client.get("procurement/catalog").json()
        assert [p["id"] for p in listed] == [ids[1]]
        assert client.get("procurement/catalog/count").json() == {"count": 1}
        assert client.get(f"procurement/catalog/{ids[0]}").status_code == 404
        assert client.get(f"procurement/catalog/{ids[1]}").status_code == 200


def test_inquire_all_returns_every_record():
    app, ids = _owned_catalog_app("All")
    with _client(app) as client:
        assert [p["id"] for p in client.get("procurement/catalog").json()] == ids


def test_edit_my_changes_only_the_members_own_records():
    app, ids = _owned_catalog_app("My")
    ops = [{"op": "replace", "path": "inactiveFlag", "value": True}]
    with _client(app) as client:
        assert client.patch(f"procurement/catalog/{ids[1]}", json=ops).status_code == 200
        assert client.patch(f"procurement/catalog/{ids[0]}", json=ops).status_code == 403


def test_a_record_the_member_creates_is_its_own():
    app, _ = _owned_catalog_app("My")
    body = {
        "identifier": "misc-new",
        "description": "Misc",
        "customerDescription": "Misc",
        "subcategory": {"id": 1},
        "type": {"id": 1},
    }
    with _client(app) as client:
        created = client.post("procurement/catalog", json=body).json()
        assert created["_info"]["enteredBy"] == "billingsync"
        assert created["id"] in [p["id"] for p in client.get("procurement/catalog").json()]


def test_each_method_needs_its_level():
    app = _app(role_settings({("System", "Table Setup"): {"addLevel": "None", "deleteLevel": "None"}}))
    with _client(app) as client:
        created = client.post("procurement/categories", json={"name": "Services"})
        assert created.status_code == 403
        assert "Add level is None" in created.json()["message"]
        assert client.delete("procurement/categories/2").status_code == 403
        ops = [{"op": "replace", "path": "inactiveFlag", "value": True}]
        assert client.patch("procurement/categories/2", json=ops).status_code == 200


def test_table_setup_tables_also_need_their_customize_item():
    items = [i for i in customize_items() if i["itemIdentifier"] != "Product / UOM"]
    with _client(_app(items=items)) as client:
        response = client.get("procurement/unitOfMeasures")
        assert response.status_code == 403
        assert "Product / UOM" in response.json()["message"]
        assert client.get("procurement/categories").status_code == 200


def test_agreement_writes_need_the_type_in_the_agreements_customize_items(app):
    with make_client(app, "brokenco") as client:
        ops = [{"op": "replace", "path": "prorateFlag", "value": True}]
        assert client.patch("finance/agreements/9", json=ops).status_code == 200  # O365: allowed
        response = client.patch("finance/agreements/13", json=ops)  # Managed Services: not allowed
        assert response.status_code == 403
        assert "Managed Services" in response.json()["message"]


def test_my_security_can_be_made_unreadable():
    with _client(_app(mySecurityReadable=False)) as client:
        assert client.get("system/mySecurity").status_code == 403
        assert client.get("system/mySecurity/customizeItems").status_code == 403
        assert client.get("system/info").status_code == 200


def test_the_broken_locked_member_cannot_read_my_security(app):
    with make_client(app, "brokenco", "brokenlockedpub", "brokenlockedpriv-0123456789") as client:
        assert client.get("system/mySecurity").status_code == 403
        assert client.get("company/companies").status_code == 200


def test_reads_hide_agreements_of_types_the_access_allowed_list_lacks(app):
    # Issue 17: ConnectWise does not show a member agreements of types its role may not access.
    with make_client(app, "brokenco") as client:
        listed = client.get("finance/agreements", params={"pageSize": 1000}).json()
        assert "Managed Services" not in {a["type"]["name"] for a in listed}
        assert client.get("finance/agreements/13").status_code == 404
        assert client.get("finance/agreements/9").status_code == 200  # O365: allowed
        count = client.get("finance/agreements/count").json()["count"]
        assert count == len(listed)
        types = client.get("finance/agreements/types").json()  # the types list itself is not hidden
        assert "Managed Services" in {t["name"] for t in types}


@pytest.mark.parametrize("hidden", ["O365", "Azure Plan"])
def test_any_type_missing_from_access_allowed_is_hidden_on_reads(hidden):
    # The same kind, other types: take one type off the role's list and its agreements disappear from reads.
    data = generate_scenario(20, 40, "roleco", public_key="rolepub", private_key="rolepriv")
    full = SandboxApp([parse_scenario(copy.deepcopy(data))])
    role = data["securityRoles"][0]
    role["customizeItems"] = [i for i in role["customizeItems"] if i["itemIdentifier"] != hidden]
    with _client(SandboxApp([parse_scenario(data)])) as client, _client(full) as everyone:
        everything = everyone.get("finance/agreements", params={"pageSize": 1000}).json()
        seen = client.get("finance/agreements", params={"pageSize": 1000}).json()
        assert client.get("finance/agreements/count").json()["count"] == len(seen)
    assert any(a["type"]["name"] == hidden for a in everything)
    assert [a["id"] for a in seen] == [a["id"] for a in everything if a["type"]["name"] != hidden]
