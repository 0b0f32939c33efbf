"""Listing: conditions, fields, orderBy, paging with Link headers, forward-only paging, /count (docs/connectwise/REFERENCE.md §4)."""

from __future__ import annotations

import pytest

from connectwise.sandbox import SandboxApp, parse_scenario
from connectwise.sandbox.generate import generate_scenario

from .conftest import API, make_client


@pytest.fixture
def big():
    app = SandboxApp([parse_scenario(generate_scenario(companies=120, agreements=240, company_id="bigco"))])
    with make_client(app, "bigco", "bigcopub", "bigcopriv-0123456789") as client:
        yield client


def test_default_page_size_is_25(big):
    response = big.get("company/companies")
    assert len(response.json()) == 25
    assert [c["id"] for c in response.json()][:3] == [1, 2, 3]


def test_link_header_on_the_first_page_has_next_and_last_only(big):
    response = big.get("company/companies?pageSize=50&conditions=deletedFlag%3Dfalse")
    base = f"http://sandbox.test{API}company/companies?pageSize=50&conditions=deletedFlag%3Dfalse"
    assert response.headers["Link"] == f'<{base}&page=2>; rel="next", <{base}&page=3>; rel="last"'


def test_link_header_in_the_middle_and_on_the_last_page(big):
    base = f"http://sandbox.test{API}company/companies?pageSize=50"
    middle = big.get("company/companies?page=2&pageSize=50")
    assert middle.headers["Link"] == (
        f'<{base}&page=1>; rel="first", <{base}&page=1>; rel="prev", '
        f'<{base}&page=3>; rel="next", <{base}&page=3>; rel="last"'
    )
    last = big.get("company/companies?pageSize=50&page=3")
    assert len(last.json()) == 20
    assert last.headers["Link"] == f'<{base}&page=1>; rel="first", <{base}&page=2>; rel="prev"'
    assert "next" not in last.links


def test_link_uses_the_request_host(big):
    response = big.get("company/companies?pageSize=100", headers={"Host": "na.myconnectwise.net"})
    assert response.links["next"]["url"].startswith("http://na.myconnectwise.net/v4_6_release/apis/3.0/")


def test_a_single_page_has_no_link_header(big):
    assert "Link" not in big.get("company/companies?pageSize=1000").headers


def test_page_size_above_1000_is_400(big):
    response = big.get("company/companies?pageSize=1001")
    assert response.status_code == 400
    assert response.json()["code"] == "InvalidObject"


def test_forward_only_paging_follows_page_id(big):
    headers = {"pagination-type": "forward-only"}
    seen = []
    url = "company/companies?pageSize=50&fields=id"
    while url:
        response = big.get(url, headers=headers)
        seen += [r["id"] for r in response.json()]
        url = response.links.get("next", {}).get("url")
        if url:
            assert url.endswith(f"&pageId={seen[-1]}")
            assert "first" not in response.links and "last" not in response.links
    assert seen == list(range(1, 121))


def test_conditions_filter_and_count_uses_the_same_filter(big):
    conditions = 'type/name = "Azure Plan" and company/id <= 6'
    rows = big.get("finance/agreements", params={"conditions": conditions, "pageSize": 1000}).json()
    assert len(rows) == 6 and all(r["type"]["name"] == "Azure Plan" for r in rows)
    assert big.get("finance/agreements/count", params={"conditions": conditions}).json() == {"count": 6}


def test_an_unknown_field_in_conditions_is_400_with_a_connectwise_body(big):
    response = big.get("company/companies", params={"conditions": "colour = 'blue'"})
    assert response.status_code == 400
    body = response.json()
    assert body["code"] == "InvalidObject" and "colour" in body["message"]
    assert body["errors"][0]["field"] == "conditions"


def test_a_syntax_error_in_conditions_is_400(big):
    assert big.get("company/companies", params={"conditions": "name = "}).status_code == 400


def test_conditions_on_an_empty_table_still_know_its_fields(app):
    with make_client(app, "bareco") as client:
        response = client.get("procurement/catalog", params={"conditions": 'identifier like "misc%"'})
    assert response.status_code == 200
    assert response.json() == []


def test_fields_return_only_those_fields_with_nested_paths(big):
    row = big.get(
        "finance/agreements/1", params={"fields": "id,name,company/id,billingCycle/name,nosuch"}
    ).json()
    assert row == {"id": 1, "name": row["name"], "company": {"id": 1}, "billingCycle": {"name": "Monthly"}}
    rows = big.get("company/companies", params={"fields": "id,status/name", "pageSize": 2}).json()
    assert rows == [{"id": 1, "status": {"name": "Active"}}, {"id": 2, "status": {"name": "Active"}}]


def test_order_by_several_keys(big):
    rows = big.get(
        "finance/agreements",
        params={"orderBy": "type/name desc, id desc", "pageSize": 5, "fields": "id,type/name"},
    ).json()
    assert [r["type"]["name"] for r in rows] == ["O365"] * 5
    assert [r["id"] for r in rows] == sorted((r["id"] for r in rows), reverse=True)
    names = [
        r["name"]
        for r in big.get("company/companies", params={"orderBy": "name asc", "pageSize": 1000}).json()
    ]
    assert names == sorted(names, key=str.casefold)


def test_order_by_an_unknown_field_is_400(big):
    assert big.get("company/companies", params={"orderBy": "colour asc"}).status_code == 400


def test_by_id_and_unknown_id(big):
    assert big.get("company/companies/7").json()["id"] == 7
    response = big.get("company/companies/99999")
    assert response.status_code == 404
    assert response.json()["code"] == "NotFound"


def test_subcategories_accept_the_trailing_slash_of_the_spec(acme):
    assert acme.get("procurement/subcategories/").json() == acme.get("procurement/subcategories").json()


def test_paths_match_case_insensitively(acme):
    assert acme.get("Company/Companies/count").json() == {"count": 12}


# -- issue 11: the conditions fields are the SPEC's (connectwise/contract) ----------------------------------------


@pytest.mark.parametrize(
    "path, conditions",
    [
        ("finance/billingCycles", "defaultFlag = false"),
        ("procurement/types", "defaultFlag = false"),
        ("finance/agreements/types", "taxableFlag = false"),
        ("procurement/catalog", 'billableOption = "Billable"'),
        ("company/companies", "parentCompany/id = 1"),
        ("company/companies", "_info/lastUpdated > [2020-01-01T00:00:00Z]"),
    ],
)
def test_conditions_accept_the_fields_the_spec_has(acme, path, conditions):
    response = acme.get(path, params={"conditions": conditions})
    assert response.status_code == 200, response.text


@pytest.mark.parametrize(
    "path, conditions, field",
    [
        ("company/companies", "type/id = 1", "type/id"),  # the SPEC's Company has types[], no type
        ("finance/billingCycles", "inactiveFlag = false", "inactiveFlag"),
        ("finance/agreements/types", "taxable = false", "taxable"),
        ("company/companies", "types/id = 1", "types/id"),  # an array: childConditions reaches it
    ],
)
def test_conditions_refuse_fields_the_spec_lacks(acme, path, conditions, field):
    response = acme.get(path, params={"conditions": conditions})
    assert response.status_code == 400, response.text
    assert f"Unknown field '{field}'" in response.json()["message"]


# -- issue 11: childConditions and customFieldConditions filter, never ignored ------------------------------------


def test_child_conditions_filter_the_collection_records_carry(acme):
    all_companies = acme.get("company/companies", params={"pageSize": 1000}).json()
    none = acme.get("company/companies", params={"childConditions": "types/id = 99", "pageSize": 1000})
    assert none.status_code == 200 and none.json() == []
    clients = acme.get(
        "company/companies", params={"childConditions": 'types/name = "Client"', "pageSize": 1000}
    )
    assert [c["id"] for c in clients.json()] == [c["id"] for c in all_companies if c["types"]]
    count = acme.get("company/companies/count", params={"childConditions": "types/id = 99"}).json()
    assert count == {"count": 0}


@pytest.mark.parametrize(
    "path, params, parameter",
    [
        ("procurement/categories", {"childConditions": "types/id = 1"}, "childConditions"),
        ("company/companies", {"childConditions": "colours/id = 1"}, "childConditions"),
        ("company/companies", {"childConditions": "types/colour = 1"}, "childConditions"),
        ("procurement/categories", {"customFieldConditions": 'caption = "x"'}, "customFieldConditions"),
        ("company/companies", {"customFieldConditions": 'colour = "x"'}, "customFieldConditions"),
        ("system/mySecurity", {"childConditions": "x/id = 1"}, "childConditions"),
    ],
)
def test_child_and_custom_field_conditions_that_cannot_apply_are_400_naming_the_parameter(
    acme, path, params, parameter
):
    response = acme.get(path, params=params)
    assert response.status_code == 400, response.text
    body = response.json()
    assert body["message"].startswith(f"{parameter}:") and body["errors"][0]["field"] == parameter


def test_custom_field_conditions_filter_on_the_records_custom_fields():
    scenario = generate_scenario(companies=3, agreements=3, company_id="cfco")
    rows = scenario["records"]["company/companies"]
    rows[0]["customFields"] = [{"id": 4, "caption": "Billing ID", "type": "Text", "value": "B-1"}]
    rows[1]["customFields"] = [{"id": 4, "caption": "Billing ID", "type": "Text", "value": "B-2"}]
    app = SandboxApp([parse_scenario(scenario)])
    with make_client(app, "cfco", "cfcopub", "cfcopriv-0123456789") as client:
        response = client.get(
            "company/companies", params={"customFieldConditions": 'caption = "Billing ID" and value = "B-2"'}
        )
        assert response.status_code == 200, response.text
        assert [c["id"] for c in response.json()] == [rows[1]["id"]]
