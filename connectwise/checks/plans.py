"""Repairs as data: a plan is the exact list of API writes that fixes a step's repairable findings.

``plan_step`` re-runs the step's check and asks the step module (repairs live next to the check they fix) to
turn its repairable findings into ``PlannedOperation``s. The partner admin approves the plan; a background job
calls ``apply_operation`` for one operation at a time, in order.

Applying is idempotent (PRODUCT.md "Repairs"): a create re-queries with its ``lookup`` first and treats a found
record, or ConnectWise's ``ObjectExists``, as already done; a PATCH re-reads the record and does nothing when it
already has the target values. So a plan applied twice, or resumed after a crash halfway, changes nothing twice.

Placeholders: an operation's ``body`` (and its lookup ``conditions``) may refer to the id created by an earlier
operation of the same plan: ``{"$ref": "2"}`` in a body, ``{$ref:2}`` in a conditions string, where 2 is that
operation's ``seq``, its 1-based position in the plan (stored as a string; a number is read the same).
``created_ids`` maps seq (int) -> the created record's id as operations are applied.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from connectwise.errors import BadRequest

from . import catalog, setup_tables
from .base import ConnectWiseApi
from .context import ResourceError, RunContext
from .operations import (
    NOT_REPAIRABLE,
    PATCH,
    POST,
    PlannedOperation,
    not_repairable,
    ops_from_patch_findings,
    patch_description,
    ref,
    skip_repair,
    text_ref,
    unrepairable,
)
from .registry import get_step, step_module
from .runner import limit_repairs_to_role


@dataclass
class AppliedResult:
    status: str  # "done" (we wrote it) or "already" (nothing to do: the record was already as planned)
    record: dict[str, Any] = field(default_factory=dict)

    @property
    def id(self) -> Any:
        return self.record.get("id")


class UnresolvedReference(ValueError):
    """A placeholder names an operation that has not been applied (apply in order)."""


def plan_step(
    client: ConnectWiseApi, choices: Any, step_key: str, options: dict[str, Any] | None = None
) -> list[PlannedOperation]:
    """The writes that would fix ``step_key``'s repairable findings, after re-checking the step. ``options`` are
    passed to the step's ``plan_operations`` as keywords (existing_billing: ``addition_ids``, the additions to end).

    Raises the ConnectWise error when a read the plan needs fails (the caller shows it; nothing was written).
    """
    return build_plan_report(client, choices, step_key, options).operations


@dataclass
class PlanReport:
    """A plan's operations and the findings it leaves out, each with the reason (``unrepairable`` rows)."""

    operations: list[PlannedOperation]
    skipped: list[dict[str, str]]


def build_plan_report(
    client: ConnectWiseApi, choices: Any, step_key: str, options: dict[str, Any] | None = None
) -> PlanReport:
    """Like ``plan_step`` (``options`` too), and also why each not-repaired finding of the step is left out."""
    get_step(step_key)
    module = step_module(step_key)
    if not hasattr(module, "plan_operations"):
        return PlanReport([], [])
    ctx = RunContext(client, choices)
    try:
        ctx.prefetch(set(module.needs(choices)) | {"my_security"})
        outcome = limit_repairs_to_role(module.check(ctx), ctx)
        ops = list(module.plan_operations(ctx, outcome, **(options or {})))
    except ResourceError as exc:
        raise exc.cause from None
    return PlanReport(ops, unrepairable(outcome.findings) + list(ctx.memo.get("plan_skipped", [])))


COMBINED = "all"  # RepairPlan.step of "Fix everything that can be fixed"
# Dependency order: the misc product refers to the setup-table records, agreements stand alone.
COMBINED_STEPS = ("setup_tables", "catalog", "agreements")
# Advisory: ending existing additions changes what is billed, so it joins only once the partner chose a cutover.
CUTOVER_STEP = "existing_billing"


def combined_steps(choices: Any) -> tuple[str, ...]:
    """The steps "Fix everything that can be fixed" repairs: ``COMBINED_STEPS``, then existing_billing's cutover
    repair only when the partner chose a cutover date (``choices.cutover``)."""
    if getattr(choices, "cutover", None) is not None:
        return (*COMBINED_STEPS, CUTOVER_STEP)
    return COMBINED_STEPS


def build_combined_report(
    client: ConnectWiseApi, choices: Any, steps: tuple[str, ...] | None = None
) -> PlanReport:
    """One plan across the repairable steps (``combined_steps``), in dependency order (setup tables, catalog,
    agreements, then existing_billing when a cutover was chosen): every
    operation carries its ``step``; ``skipped`` rows carry their ``step`` too. One ConnectWise read per resource
    for the whole plan (one shared RunContext). A catalog product created by this plan refers to the setup-table
    records created earlier in it by placeholder, so nothing is planned twice.

    Raises the ConnectWise error when a read the plan needs fails (nothing was written)."""

    available = combined_steps(choices)
    wanted = [s for s in available if steps is None or s in steps]
    ctx = RunContext(client, choices)
    needs: set[str] = {"my_security"}
    for key in wanted:
        needs |= set(step_module(key).needs(choices))
    if "catalog" in wanted:
        needs |= set(setup_tables.needs(choices))
    ops: list[PlannedOperation] = []
    skipped: list[dict] = []
    table_ids = None
    try:
        ctx.prefetch(needs)
        for key in wanted:
            module = step_module(key)
            ctx.memo.pop("plan_skipped", None)
            outcome = limit_repairs_to_role(module.check(ctx), ctx)
            start = len(ops) + 1
            if key == "setup_tables":
                step_ops, table_ids = setup_tables.plan_with_ids(ctx, outcome, start=start)
            elif key == "catalog":
                step_ops = catalog.plan_operations(ctx, outcome, start=start, table_ids=table_ids)
            else:
                step_ops = list(module.plan_operations(ctx, outcome))
            for op in step_ops:
                op.step = key
            ops.extend(step_ops)
            for row in unrepairable(outcome.findings) + list(ctx.memo.get("plan_skipped", [])):
                skipped.append({**row, "step": key})
    except ResourceError as exc:
        raise exc.cause from None
    return PlanReport(ops, skipped)


def apply_operation(
    client: ConnectWiseApi, op: PlannedOperation, created_ids: dict[int, Any] | None = None
) -> AppliedResult:
    """Apply one operation idempotently; see the module docstring. ``created_ids``: seq -> id of the records the
    plan's earlier operations created. Raises ``UnresolvedReference`` for a placeholder of an operation that has
    not created its record, and the ConnectWise error of a failed write."""
    created_ids = created_ids or {}
    body = resolve_refs(op.body, created_ids)
    path = resolve_text(op.path, created_ids)
    method = op.method.upper()
    if method == POST:
        return _create(client, path, body, op.lookup, created_ids)
    if method == PATCH:
        return _patch(client, path, body)
    raise ValueError(f"plans only create (POST) and update (PATCH), not {op.method}")


def _find(client: ConnectWiseApi, lookup: dict | None, created_ids: dict[int, Any]) -> dict | None:
    if not lookup:
        return None
    rows = client.list(
        lookup["path"], conditions=resolve_text(lookup.get("conditions"), created_ids) or None, page_size=25
    )
    return rows[0] if rows else None


def _create(
    client: ConnectWiseApi, path: str, body: dict, lookup: dict | None, created_ids: dict[int, Any]
) -> AppliedResult:
    existing = _find(client, lookup, created_ids)
    if existing is not None:
        return AppliedResult("already", existing)
    try:
        record = client.create(path, body)
    except BadRequest as exc:
        if not exc.object_exists:
            raise
        # ConnectWise says it exists (created meanwhile, or our lookup could not see it): done, find its id.
        return AppliedResult("already", _find(client, lookup, created_ids) or {})
    return AppliedResult("done", record)


def _patch(client: ConnectWiseApi, path: str, operations: list[dict]) -> AppliedResult:
    current = client.get(path)
    if isinstance(current, dict) and all(_has_value(current, o) for o in operations):
        return AppliedResult("already", current)
    return AppliedResult("done", client.patch(path, operations))


def _has_value(record: dict, operation: dict) -> bool:
    if operation.get("op") != "replace":
        return False
    value = record
    for part in str(operation["path"]).strip("/").split("/"):
        if not isinstance(value, dict):
            return False
        value = value.get(part)
    target = operation.get("value")
    if isinstance(target, dict) and "id" in target:  # a reference: compare ids only
        return isinstance(value, dict) and value.get("id") == target["id"]
    if target is False:  # ConnectWise omits false flags from some records: absent means false
        return value in (False, None)
    return value == target


def resolve_refs(value: Any, created_ids: dict[int, Any]) -> Any:
    """Replace ``{"$ref": seq}`` with the id created by operation ``seq`` (``created_ids``: seq -> id)."""
    if isinstance(value, dict):
        if set(value) == {"$ref"}:
            return _lookup_id(value["$ref"], created_ids)
        return {k: resolve_refs(v, created_ids) for k, v in value.items()}
    if isinstance(value, list):
        return [resolve_refs(v, created_ids) for v in value]
    return value


_TEXT_REF = re.compile(r"\{\$ref:(\d+)\}")


def resolve_text(text: str | None, created_ids: dict[int, Any]) -> str | None:
    """Replace ``{$ref:seq}`` in a conditions string or path with the id created by operation ``seq``."""
    if text is None:
        return None
    return _TEXT_REF.sub(lambda m: str(_lookup_id(m.group(1), created_ids)), text)


def _lookup_id(seq: Any, created_ids: dict[int, Any]) -> Any:
    try:
        created = created_ids.get(int(seq))
    except (TypeError, ValueError):
        created = None
    if created is None:
        raise UnresolvedReference(f"operation {seq} has not created its record yet: apply the plan in order")
    return created


__all__ = [
    "NOT_REPAIRABLE",
    "PATCH",
    "POST",
    "ops_from_patch_findings",
    "patch_description",
    "ref",
    "skip_repair",
    "text_ref",
    "AppliedResult",
    "PlannedOperation",
    "RunContext",
    "UnresolvedReference",
    "apply_operation",
    "plan_step",
    "build_plan_report",
    "build_combined_report",
    "not_repairable",
    "unrepairable",
]
