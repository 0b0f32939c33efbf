"""POST, PUT, PATCH, DELETE: validation, ObjectExists, references with names (docs/connectwise/REFERENCE.md §5, §6)."""

from __future__ import annotations

import pytest

from connectwise.sandbox import SandboxApp, parse_scenario
from connectwise.sandbox.generate import base_scenario, role_settings

from .conftest import make_client


@pytest.fixture
def deleter():
    data = base_scenario("delco", "Del Co", "delpub", "delpriv")
    data["securityRoles"][0]["settings"] = role_settings(
        {("Procurement", "Product Catalog"): {"deleteLevel": "All"}}
    )
    with make_client(SandboxApp([parse_scenario(data)]), "delco", "delpub", "delpriv") as client:
        yield client


MISC_PRODUCT = {
    "identifier": "misc-azure",
    "description": "Miscellaneous Azure usage",
    "customerDescription": "Azure usage",
    "subcategory": {"id": 1},
    "type": {"id": 1},
}


def test_post_creates_with_a_new_id_and_201(acme):
    response = acme.post("procurement/categories", json={"name": "Services"})
    assert response.status_code == 201
    created = response.json()
    assert created["id"] == 4 and created["name"] == "Services" and created["inactiveFlag"] is False
    assert acme.get(f"procurement/categories/{created['id']}").json() == created
    assert response.headers["Location"].endswith(f"/procurement/categories/{created['id']}")


def test_post_fills_reference_names_and_derives_the_category(acme):
    created = acme.post("procurement/catalog", json=MISC_PRODUCT).json()
    assert created["subcategory"] == {"id": 1, "name": "Miscellaneous"}
    assert created["type"] == {"id": 1, "name": "Miscellaneous"}
    assert created["category"] == {"id": 1, "name": "Miscellaneous"}


@pytest.mark.parametrize(
    ("path", "body", "missing"),
    [
        (
            "procurement/catalog",
            {"identifier": "misc-x"},
            {"description", "subcategory", "type", "customerDescription"},
        ),
        ("procurement/subcategories/", {"name": "Miscellaneous 2"}, {"category"}),
        ("procurement/categories", {"inactiveFlag": False}, {"name"}),
        ("procurement/types", {}, {"name"}),
        ("procurement/unitOfMeasures", {"name": ""}, {"name"}),
        ("finance/agreements", {"name": "X", "company": {"id": 1}}, {"type", "contact"}),
    ],
)
def test_post_without_required_fields_is_400_invalid_object(acme, path, body, missing):
    response = acme.post(path, json=body)
    assert response.status_code == 400
    data = response.json()
    assert data["code"] == "InvalidObject"
    assert {e["field"] for e in data["errors"]} == missing
    assert {e["code"] for e in data["errors"]} == {"MissingRequiredField"}


@pytest.mark.parametrize(
    ("path", "body"),
    [
        ("procurement/categories", {"name": "miscellaneous"}),  # case-insensitive, like ConnectWise
        ("procurement/unitOfMeasures", {"name": "Each"}),
        ("procurement/types", {"name": "Miscellaneous"}),
        ("procurement/subcategories", {"name": "Miscellaneous", "category": {"id": 1}}),
        ("procurement/catalog", {**MISC_PRODUCT, "identifier": "MISC-SEAT"}),
    ],
)
def test_a_duplicate_is_400_with_a_nested_object_exists(acme, path, body):
    response = acme.post(path, json=body)
    assert response.status_code == 400
    data = response.json()
    assert data["code"] == "InvalidObject"
    assert [e["code"] for e in data["errors"]] == ["ObjectExists"]


def test_same_subcategory_name_under_another_category_is_fine(acme):
    assert (
        acme.post(
            "procurement/subcategories", json={"name": "Miscellaneous", "category": {"id": 2}}
        ).status_code
        == 201
    )


def test_a_reference_to_a_missing_record_is_400(acme):
    response = acme.post("procurement/catalog", json={**MISC_PRODUCT, "subcategory": {"id": 99}})
    assert response.status_code == 400
    assert response.json()["errors"][0]["field"] == "subcategory"


def test_patch_replaces_a_flag(broken):
    ops = [{"op": "replace", "path": "inactiveFlag", "value": False}]
    response = broken.patch("procurement/catalog/1", json=ops)
    assert response.status_code == 200
    assert response.json()["inactiveFlag"] is False
    assert broken.get("procurement/catalog/1").json()["inactiveFlag"] is False


def test_patch_a_reference_fills_its_name(broken):
    ops = [
        {"op": "replace", "path": "billingCycle", "value": {"id": 1}},
        {"op": "replace", "path": "invoicingCycle", "value": "CalendarYear"},
        {"op": "replace", "path": "/prorateFlag", "value": True},
    ]
    record = broken.patch("finance/agreements/7", json=ops).json()
    assert record["billingCycle"] == {"id": 1, "name": "Monthly"}
    assert record["invoicingCycle"] == "CalendarYear" and record["prorateFlag"] is True


def test_patch_by_reference_id_path(broken):
    ops = [{"op": "replace", "path": "billingCycle/id", "value": 4}]
    assert broken.patch("finance/agreements/12", json=ops).json()["billingCycle"] == {
        "id": 4,
        "name": "One Time",
    }


def test_patch_add_and_remove(acme):
    record = acme.patch(
        "procurement/catalog/2", json=[{"op": "add", "path": "vendorSku", "value": "AAA-0001"}]
    )
    assert record.json()["vendorSku"] == "AAA-0001"
    record = acme.patch("procurement/catalog/2", json=[{"op": "remove", "path": "vendorSku"}])
    assert "vendorSku" not in record.json()


@pytest.mark.parametrize(
    "ops",
    [
        {"not": "an array"},
        [],
        [{"op": "move", "path": "name", "value": 1}],
        [{"op": "replace", "path": "colour", "value": "blue"}],
        [{"op": "replace", "path": "id", "value": 5}],
        [{"op": "replace", "path": "invoicingCycle", "value": "Fortnightly"}],
        [{"op": "replace", "path": "billingCycle", "value": {"id": 999}}],
    ],
)
def test_bad_patches_are_400(broken, ops):
    assert broken.patch("finance/agreements/7", json=ops).status_code == 400


def test_patch_to_a_duplicate_name_is_object_exists(acme):
    response = acme.patch(
        "procurement/categories/2", json=[{"op": "replace", "path": "name", "value": "Software"}]
    )
    assert response.status_code == 400
    assert response.json()["errors"][0]["code"] == "ObjectExists"


def test_write_to_an_unknown_id_is_404(acme, deleter):
    ops = [{"op": "replace", "path": "inactiveFlag", "value": True}]
    assert acme.patch("procurement/catalog/999", json=ops).status_code == 404
    assert deleter.delete("procurement/catalog/999").status_code == 404


def test_put_replaces_the_record(acme):
    body = {"name": "Laptops and tablets", "category": {"id": 2}, "inactiveFlag": True}
    record = acme.put("procurement/subcategories/2", json=body).json()
    assert record == {
        "id": 2,
        "name": "Laptops and tablets",
        "category": {"id": 2, "name": "Hardware"},
        "inactiveFlag": True,
    }


def test_delete_is_204_and_the_record_is_gone(deleter):
    response = deleter.delete("procurement/catalog/3")
    assert response.status_code == 204 and response.content == b""
    assert deleter.get("procurement/catalog/3").status_code == 404


def test_the_least_privilege_role_cannot_delete(acme):
    assert acme.delete("procurement/catalog/3").status_code == 403


def test_a_new_agreement_takes_the_billing_set_up_of_its_type(acme):
    body = {"name": "Contoso Ltd - Annual", "type": {"id": 3}, "company": {"id": 1}, "contact": {"id": 1}}
    created = acme.post("finance/agreements", json=body)
    assert created.status_code == 201
    record = created.json()
    assert record["billingCycle"] == {"id": 4, "name": "One Time"}
    assert record["agreementStatus"] == "Active"
    assert record["company"] == {"id": 1, "identifier": "ContosoLtd", "name": "Contoso Ltd"}
    assert record["contact"]["name"]
    again = acme.post("finance/agreements", json=body)
    assert again.status_code == 400 and again.json()["errors"][0]["code"] == "ObjectExists"


def test_invalid_json_is_400(acme):
    response = acme.post(
        "procurement/categories", content=b"{nope", headers={"Content-Type": "application/json"}
    )
    assert response.status_code == 400


def test_methods_the_api_does_not_have_are_405(acme):
    assert acme.put("procurement/categories", json={}).status_code == 405
    assert acme.post("system/info", json={}).status_code == 405


def test_concurrent_creates_of_the_same_name_make_one_record(app):
    from concurrent.futures import ThreadPoolExecutor

    def create(_):
        with make_client(app, "acme") as client:
            return client.post("procurement/categories", json={"name": "Services"}).status_code

    with ThreadPoolExecutor(8) as pool:
        statuses = list(pool.map(create, range(16)))
    assert sorted(statuses) == [201] + [400] * 15


# -- issue 11: wrong JSON types get ConnectWise's conversion error, other contract breaks InvalidObject ------------


@pytest.mark.parametrize(
    "method, path, body, expected",
    [
        (
            "POST",
            "finance/agreements",
            {"name": "Bare ref", "type": {"id": 3}, "company": 1, "contact": {"id": 1}},
            "Error converting value 1 to type 'CompanyReference'. Path 'company'.",
        ),
        (
            "POST",
            "procurement/categories",
            {"name": "Typed", "inactiveFlag": "false"},
            "Error converting value \"false\" to type 'Boolean'. Path 'inactiveFlag'.",
        ),
        (
            "PATCH",
            "finance/agreements/1",
            [{"op": "replace", "path": "prorateFlag", "value": "yes"}],
            "Error converting value \"yes\" to type 'Boolean'. Path '[0].value'.",
        ),
        (
            "PATCH",
            "finance/agreements/1",
            [{"op": "replace", "path": "billingCycle", "value": 2}],
            "Error converting value 2 to type 'BillingCycleReference'. Path '[0].value'.",
        ),
        (
            "PUT",
            "procurement/categories/1",
            {"name": ["Miscellaneous"]},
            "Error converting value [\"Miscellaneous\"] to type 'String'. Path 'name'.",
        ),
    ],
)
def test_a_wrong_json_type_is_the_top_level_conversion_error(acme, method, path, body, expected):
    before = acme.get(path.rsplit("/", 1)[0] if method != "POST" else path, params={"pageSize": 1000}).json()
    response = acme.request(method, path, json=body)
    assert response.status_code == 400, response.text
    assert response.json() == {"code": "ConnectWiseApi", "message": expected}  # no "errors" array
    after = acme.get(path.rsplit("/", 1)[0] if method != "POST" else path, params={"pageSize": 1000}).json()
    assert after == before  # nothing half-applied


def test_a_value_longer_than_the_spec_allows_is_invalid_object(acme):
    response = acme.post("procurement/categories", json={"name": "x" * 51})
    assert response.status_code == 400
    body = response.json()
    assert body["code"] == "InvalidObject" and body["errors"][0]["field"] == "name"
    assert "at most 50" in body["errors"][0]["message"]


def test_fields_the_spec_lacks_are_dropped_not_stored(acme):
    response = acme.post("procurement/categories", json={"name": "Dropped", "integrationXRef": "x"})
    assert response.status_code == 201
    assert "integrationXRef" not in response.json()
