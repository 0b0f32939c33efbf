from __future__ import annotations

import pytest

from connectwise.checks.plans import (
    PlannedOperation,
    UnresolvedReference,
    apply_operation,
    plan_step,
    resolve_refs,
    resolve_text,
)
from connectwise.checks.runner import TenantChoices
from connectwise.errors import BadRequest, ErrorDetail

from .fakes import healthy_client


def _op(**kw):
    base = dict(
        method="PATCH", path="procurement/types/1", body=[], finding_code="x", subject="s", description="d"
    )
    return PlannedOperation(**{**base, **kw})


def test_a_healthy_tenant_has_empty_plans_and_steps_without_repairs_have_none():
    client = healthy_client()
    for key in ("catalog", "setup_tables", "agreements", "connection", "security_role", "customers"):
        assert plan_step(client, TenantChoices(), key) == []
    assert not any(m != "GET" for m, _ in client.calls)


def test_unknown_steps_are_refused():
    with pytest.raises(KeyError):
        plan_step(healthy_client(), TenantChoices(), "nope")


def test_placeholders_resolve_from_created_ids():
    # created_ids has one key type, the seq as an int; a stored placeholder names it as a string ("1", as
    # operations.ref writes it) or a number, both read the same.
    body = {"name": "x", "category": {"id": {"$ref": "1"}}, "list": [{"$ref": 2}]}
    assert resolve_refs(body, {1: 7, 2: 8}) == {"name": "x", "category": {"id": 7}, "list": [8]}
    assert resolve_text("category/id = {$ref:1}", {1: 7}) == "category/id = 7"
    with pytest.raises(UnresolvedReference):
        resolve_refs(body, {1: 7})  # operation 2 has not created its record
    with pytest.raises(UnresolvedReference):
        resolve_refs({"$ref": "x"}, {1: 7})


def test_an_operation_round_trips_through_a_dict():
    op = _op(lookup={"path": "p", "conditions": "c"}, before={"inactiveFlag": True})
    assert PlannedOperation.from_dict(op.to_dict()) == op


def test_a_patch_compares_references_by_id_and_treats_absent_false_as_false():
    client = healthy_client()
    client.records["finance/agreements"][0]["billingCycle"] = {"id": 1, "name": "Monthly"}
    op = _op(
        path="finance/agreements/10", body=[{"op": "replace", "path": "billingCycle", "value": {"id": 1}}]
    )
    assert apply_operation(client, op).status == "already"
    del client.records["procurement/types"][0]["inactiveFlag"]
    op = _op(body=[{"op": "replace", "path": "inactiveFlag", "value": False}])
    assert apply_operation(client, op).status == "already"
    assert client.calls_to("PATCH", "procurement/types/1") == 0


def test_a_create_error_other_than_object_exists_is_raised():
    client = healthy_client()

    def refuse(path, body):
        raise BadRequest("400", errors=[ErrorDetail(code="OutOfRange", field="name")], status=400)

    client.create = refuse
    op = _op(method="POST", path="procurement/types", body={"name": "Miscellaneous 2"}, lookup=None)
    with pytest.raises(BadRequest):
        apply_operation(client, op)


def test_only_creates_and_patches_are_applied():
    with pytest.raises(ValueError):
        apply_operation(healthy_client(), _op(method="DELETE"))
