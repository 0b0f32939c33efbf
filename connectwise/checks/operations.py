"""A repair as data: ``PlannedOperation`` (one API write of a plan) and the helpers step modules use to build them.

The leaf of the repair side: step modules import it to describe their writes; ``checks.plans`` builds and applies
plans from them. It imports no step module (see docs/ARCHITECTURE.md, "Direction of imports").
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

from .context import RunContext

PATCH = "PATCH"
POST = "POST"


@dataclass
class PlannedOperation:
    method: str  # "POST" (create) or "PATCH" (an operation array)
    path: str  # relative to .../apis/3.0/, e.g. "procurement/catalog/12"
    body: Any  # a record (POST) or [{"op": "replace", "path": ..., "value": ...}] (PATCH)
    finding_code: str
    subject: str
    description: str  # one sentence for the approval page
    before: dict[str, Any] | None = None  # the record's relevant fields before (None for a create)
    lookup: dict[str, Any] | None = None  # {"path", "conditions"}: how a create re-queries first
    step: str = ""  # the step whose finding this fixes (set in combined plans: issue 18)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> PlannedOperation:
        names = {f for f in cls.__dataclass_fields__}
        return cls(**{k: v for k, v in d.items() if k in names})


NOT_REPAIRABLE = "not_repairable"  # Finding.data key: why a finding of a repairable kind is not offered


def not_repairable(reason: str) -> dict[str, str]:
    """``{"not_repairable": reason}`` for a finding's data (empty when there is no reason): a finding that could be
    repairable but is not says why (issue 17), and the plan page and ``repair_tenant`` show it."""
    return {NOT_REPAIRABLE: reason} if reason else {}


def skip_repair(ctx: RunContext, finding: Any, reason: str) -> None:
    """Record, while building a plan, that a repairable finding gets no operation and why."""
    ctx.remember("plan_skipped", list).append(
        {"code": finding.code, "subject": finding.subject, "reason": reason}
    )


def unrepairable(findings: list) -> list[dict[str, str]]:
    """``[{"code", "subject", "reason"}]`` for the findings (``Finding`` or stored dicts) that carry a reason why
    they are not repaired."""
    out = []
    for f in findings:
        data = f.get("data") if isinstance(f, dict) else f.data
        code = f.get("code") if isinstance(f, dict) else f.code
        subject = f.get("subject") if isinstance(f, dict) else f.subject
        reason = (data or {}).get(NOT_REPAIRABLE)
        if reason:
            out.append({"code": code, "subject": subject, "reason": reason})
    return out


def ref(seq: int) -> dict[str, str]:
    """The body placeholder for the id that operation ``seq`` creates."""
    return {"$ref": str(seq)}


def text_ref(seq: int) -> str:
    return "{$ref:" + str(seq) + "}"


def patch_description(field_label: str, what: str, before: str, after: str) -> str:
    return f'Set "{field_label}" on {what}: {before} -> {after}'


def patch_operation(finding: Any, description: str, path: str | None = None) -> PlannedOperation:
    """The PATCH that repairs ``finding`` (its ``data["patch"]`` operations on its record, ``data["before"]`` kept
    for the approval page). ``path`` defaults to the finding's record (``record["path"]/record["id"]``). The one
    place a patch finding becomes an operation."""
    return PlannedOperation(
        method=PATCH,
        path=path or f"{finding.record['path']}/{finding.record['id']}",
        body=finding.data["patch"],
        finding_code=finding.code,
        subject=finding.subject,
        description=description,
        before=finding.data.get("before"),
    )


def ops_from_patch_findings(outcome: Any, *, what=None) -> list[PlannedOperation]:
    """A PATCH per repairable finding whose ``data`` carries ``patch`` (and ``before``)."""
    ops = []
    for f in outcome.findings:
        if not f.repairable or not f.data.get("patch") or not f.record:
            continue
        label = what(f) if what else f.subject
        description = patch_description(
            f.data.get("field_label", "Inactive"),
            label,
            f.data.get("before_label", "on"),
            f.data.get("after_label", "off"),
        )
        ops.append(patch_operation(f, description))
    return ops
