from __future__ import annotations

import pytest

from connectwise.checks import codes
from connectwise.checks.base import Status
from connectwise.checks.plans import UnresolvedReference, apply_operation, plan_step
from connectwise.checks.runner import TenantChoices
from connectwise.errors import Forbidden

from .fakes import codes_of, healthy_client, healthy_records, run_check


def _client(**changes):
    records = healthy_records()
    for path, rows in changes.items():
        records["procurement/" + path] = rows
    return healthy_client(records=records)


def test_it_passes_when_all_four_records_exist_and_are_active():
    outcome = run_check("setup_tables", _client())
    assert outcome.status == Status.PASS
    assert outcome.facts["uom"] == {"id": 1, "name": "Each", "inactive": False}


def test_it_flags_inactive_uom():
    outcome = run_check(
        "setup_tables", _client(unitOfMeasures=[{"id": 4, "name": "Each", "inactiveFlag": True}])
    )
    assert outcome.status == Status.FAIL
    assert codes_of(outcome) == [codes.TABLES_UOM_INACTIVE]
    f = outcome.findings[0]
    assert f.subject == 'UOM "Each" (id 4)'
    assert f.record == {"path": "procurement/unitOfMeasures", "id": 4}
    assert "System > Setup Tables" in f.fix and "untick Inactive" in f.fix


def test_it_flags_each_missing_table_item():
    outcome = run_check("setup_tables", _client(categories=[], subcategories=[], types=[], unitOfMeasures=[]))
    assert codes_of(outcome) == [
        codes.TABLES_CATEGORY_MISSING,
        codes.TABLES_SUBCATEGORY_MISSING,
        codes.TABLES_PRODUCT_TYPE_MISSING,
        codes.TABLES_UOM_MISSING,
    ]
    assert all(f.repairable for f in outcome.findings)


def test_a_subcategory_under_another_category_does_not_count():
    outcome = run_check(
        "setup_tables",
        _client(
            subcategories=[{"id": 9, "name": "Miscellaneous", "category": {"id": 77}, "inactiveFlag": False}]
        ),
    )
    assert codes_of(outcome) == [codes.TABLES_SUBCATEGORY_MISSING]
    assert outcome.findings[0].data["elsewhere"] == [9]


def test_it_prefers_the_active_record_when_there_are_several():
    outcome = run_check(
        "setup_tables",
        _client(
            types=[
                {"id": 1, "name": "Miscellaneous", "inactiveFlag": True},
                {"id": 2, "name": "miscellaneous", "inactiveFlag": False},
            ]
        ),
    )
    assert outcome.status == Status.PASS
    assert outcome.facts["product_type"]["id"] == 2


def test_it_plans_creates_in_order_with_a_category_placeholder():
    client = _client(
        categories=[], subcategories=[], types=[{"id": 5, "name": "Miscellaneous", "inactiveFlag": True}]
    )
    plan = plan_step(client, TenantChoices(), "setup_tables")
    assert [(op.method, op.path, op.finding_code) for op in plan] == [
        ("POST", "procurement/categories", codes.TABLES_CATEGORY_MISSING),
        ("POST", "procurement/subcategories", codes.TABLES_SUBCATEGORY_MISSING),
        ("PATCH", "procurement/types/5", codes.TABLES_PRODUCT_TYPE_INACTIVE),
    ]
    assert plan[1].body == {"name": "Miscellaneous", "category": {"id": {"$ref": "1"}}}
    assert plan[1].lookup["conditions"] == 'name = "Miscellaneous" and category/id = {$ref:1}'
    assert plan[2].before == {"inactiveFlag": True}
    with pytest.raises(UnresolvedReference):
        apply_operation(client, plan[1], {})

    created: dict = {}
    results = []
    for seq, op in enumerate(plan, start=1):
        result = apply_operation(client, op, created)
        created[seq] = result.id
        results.append(result.status)
    assert results == ["done", "done", "done"]
    assert client.records["procurement/subcategories"][0]["category"] == {"id": created[1]}
    assert run_check("setup_tables", client).status == Status.PASS

    # applying the same plan again (a retry after a crash) writes nothing
    writes = [c for c in client.calls if c[0] != "GET"]
    again = [apply_operation(client, op, created).status for op in plan]
    assert again == ["already", "already", "already"]
    assert [c for c in client.calls if c[0] != "GET"] == writes


def test_object_exists_counts_as_already_done():
    client = _client(categories=[])
    plan = plan_step(client, TenantChoices(), "setup_tables")
    client.records["procurement/categories"].append(
        {"id": 42, "name": "Miscellaneous", "inactiveFlag": False}
    )
    lookups = []
    original = client.list

    def blind_first_lookup(
        path, **kw
    ):  # the lookup misses it (e.g. replication lag), the POST says it exists
        lookups.append(path)
        return [] if len(lookups) == 1 else original(path, **kw)

    client.list = blind_first_lookup
    result = apply_operation(client, plan[0], {})
    assert result.status == "already" and result.id == 42


def test_a_refused_table_read_is_an_error_naming_the_role_function():
    client = healthy_client(forbidden=("procurement/unitOfMeasures",))
    outcome = run_check("setup_tables", client)
    assert outcome.status == Status.ERROR
    assert codes_of(outcome) == [codes.STEP_READ_FORBIDDEN]
    f = outcome.findings[0]
    assert (
        f.data["role_function"]
        == 'System > Table Setup: Inquire (and the Table Setup customize item "Product / UOM")'
    )
    assert "System > Security Roles" in f.fix


def test_build_plan_raises_the_read_error():
    client = healthy_client(forbidden=("procurement/categories",))
    with pytest.raises(Forbidden):
        plan_step(client, TenantChoices(), "setup_tables")
