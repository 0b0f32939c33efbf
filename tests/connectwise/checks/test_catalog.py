from __future__ import annotations

import pytest

from connectwise.checks import codes
from connectwise.checks.base import Status
from connectwise.checks.plans import apply_operation, plan_step
from connectwise.checks.runner import TenantChoices

from .fakes import codes_of, healthy_client, healthy_records, run_check


def _records(catalog=None, **tables):
    records = healthy_records()
    if catalog is not None:
        records["procurement/catalog"] = catalog
    for path, rows in tables.items():
        records[path.replace("__", "/")] = rows
    return records


def test_it_passes_with_an_active_misc_product_and_reads_only_misc_items():
    client = healthy_client()
    outcome = run_check("catalog", client)
    assert outcome.status == Status.PASS
    assert [p["identifier"] for p in outcome.facts["products"]] == ["misc"]


def test_it_flags_every_inactive_misc_product():
    catalog = [
        {"id": 12, "identifier": "misc-seat", "description": "Seats", "inactiveFlag": True},
        {"id": 14, "identifier": "MISC", "description": "Misc", "inactiveFlag": False},
        {"id": 15, "identifier": "miscellany", "description": "Other", "inactiveFlag": True},
    ]
    outcome = run_check("catalog", healthy_client(records=_records(catalog)))
    assert outcome.status == Status.FAIL
    assert codes_of(outcome) == [codes.CATALOG_MISC_INACTIVE] * 2
    first = outcome.findings[0]
    assert first.subject == 'Product "misc-seat" (id 12)'
    assert first.record == {"path": "procurement/catalog", "id": 12}
    assert first.repairable
    assert "Procurement > Product Catalog" in first.fix and "ACTIVATE" in first.fix


def test_it_flags_a_missing_misc_product():
    outcome = run_check("catalog", healthy_client(records=_records([{"id": 13, "identifier": "laptop"}])))
    assert codes_of(outcome) == [codes.CATALOG_MISC_MISSING]
    assert outcome.findings[0].repairable


def test_it_activates_inactive_misc_products_idempotently():
    client = healthy_client(
        records=_records(
            [{"id": 12, "identifier": "misc-seat", "description": "Seats", "inactiveFlag": True}]
        )
    )
    plan = plan_step(client, TenantChoices(), "catalog")
    assert [(op.method, op.path, op.body) for op in plan] == [
        ("PATCH", "procurement/catalog/12", [{"op": "replace", "path": "inactiveFlag", "value": False}])
    ]
    assert plan[0].before == {"inactiveFlag": True}
    assert plan[0].description == 'Activate the product "misc-seat" (id 12): Inactive Yes -> No'
    assert apply_operation(client, plan[0], {}).status == "done"
    assert apply_operation(client, plan[0], {}).status == "already"
    assert client.calls_to("PATCH", "procurement/catalog/12") == 1
    assert run_check("catalog", client).status == Status.PASS


def test_it_creates_a_misc_product_with_the_setup_table_records():
    client = healthy_client(records=_records([]))
    plan = plan_step(client, TenantChoices(), "catalog")
    assert len(plan) == 1
    op = plan[0]
    assert (op.method, op.path) == ("POST", "procurement/catalog")
    assert op.body["identifier"] == "misc" and op.body["customerDescription"]
    assert op.body["subcategory"] == {"id": 1} and op.body["unitOfMeasure"] == {"id": 1}
    assert op.lookup == {"path": "procurement/catalog", "conditions": 'identifier = "misc"'}
    assert apply_operation(client, op, {}).status == "done"
    assert apply_operation(client, op, {}).status == "already"
    assert client.calls_to("POST", "procurement/catalog") == 1
    assert run_check("catalog", client).status == Status.PASS


def test_it_plans_the_missing_setup_tables_before_the_product():
    client = healthy_client(
        records=_records([], procurement__categories=[], procurement__subcategories=[], procurement__types=[])
    )
    plan = plan_step(client, TenantChoices(), "catalog")
    assert [(op.method, op.path) for op in plan] == [
        ("POST", "procurement/categories"),
        ("POST", "procurement/subcategories"),
        ("POST", "procurement/types"),
        ("POST", "procurement/catalog"),
    ]
    assert plan[1].body["category"] == {"id": {"$ref": "1"}}
    assert plan[3].body["category"] == {"id": {"$ref": "1"}}
    assert plan[3].body["subcategory"] == {"id": {"$ref": "2"}}
    assert plan[3].body["unitOfMeasure"] == {"id": 1}
    created: dict = {}
    for seq, op in enumerate(plan, start=1):
        created[seq] = apply_operation(client, op, created).id
    product = client.records["procurement/catalog"][-1]
    assert product["subcategory"] == {"id": created[2]}
    assert run_check("catalog", client).status == Status.PASS
    assert run_check("setup_tables", client).status == Status.PASS


@pytest.mark.parametrize(
    ("flags", "summary"),
    [
        ([False, True], "1 of 2 misc products is active."),
        ([True, True], "0 of 2 misc products are active."),
        ([False, False], "2 of 2 misc products are active."),
        ([False], "1 of 1 misc product is active."),
    ],
)
def test_the_summary_agrees_with_the_number_active(flags, summary):
    """The screenshot walk read "1 of 2 misc products are active": the verb agrees with the active count."""
    catalog = [
        {"id": i, "identifier": f"misc-{i}", "description": "Seats", "inactiveFlag": flag}
        for i, flag in enumerate(flags, start=1)
    ]
    assert run_check("catalog", healthy_client(records=_records(catalog))).summary == summary
