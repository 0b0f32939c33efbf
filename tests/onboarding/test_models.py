"""onboarding.models: row-level rules that are not a service's."""

from __future__ import annotations

from dataclasses import fields

import pytest

from connectwise.checks.operations import PlannedOperation
from onboarding.models import RepairOperation, RepairPlan

pytestmark = pytest.mark.django_db


def test_a_planned_operation_is_stored_and_read_back_whole(tenant_a):
    plan = RepairPlan.objects.create(tenant=tenant_a, step="all")
    planned = PlannedOperation(
        method="POST",
        path="procurement/subcategories",
        body={"name": "Miscellaneous", "category": {"id": {"$ref": "1"}}},
        finding_code="tables.subcategory_missing",
        subject='Subcategory "Miscellaneous"',
        description="Create the subcategory Miscellaneous",
        before=None,
        lookup={"path": "procurement/subcategories", "conditions": 'name="Miscellaneous"'},
        step="setup_tables",
    )
    # every field is set to something other than its default, so a field the copy forgets is seen
    assert all(getattr(planned, f.name) != f.default for f in fields(PlannedOperation) if f.name != "before")
    row = RepairOperation.from_planned(plan, 3, planned)
    row.save()
    stored = RepairOperation.objects.get(pk=row.pk)
    assert stored.seq == 3 and stored.as_planned() == planned


def test_a_stored_operation_takes_the_plans_step_and_fits_its_columns(tenant_a):
    plan = RepairPlan.objects.create(tenant=tenant_a, step="catalog")
    planned = PlannedOperation(
        method="PATCH",
        path="procurement/catalog/1",
        body=[],
        finding_code="x",
        subject="s" * 400,
        description="d",
    )
    row = RepairOperation.from_planned(plan, 1, planned)
    assert row.step == "catalog" and len(row.subject) == 300
