"""Step 4, setup_tables: category "Miscellaneous", its subcategory "Miscellaneous", product type "Miscellaneous"
and unit of measure "Each" exist and are active.

The misc catalog product (step 3) points at all four, and a subcategory points at its parent category
(docs/connectwise/REFERENCE.md §2), so creates run in the order category, subcategory, product type (then UOM).
"""

from __future__ import annotations

from dataclasses import dataclass

from connectwise.client import replace_operation
from connectwise.labels import field_label
from connectwise.query import cond

from . import codes
from .base import Finding, Severity, StepOutcome
from .context import RunContext, ref_id, same_name
from .operations import PlannedOperation, patch_operation, ref, text_ref

KEY = "setup_tables"
MISC = "Miscellaneous"
EACH = "Each"


@dataclass(frozen=True)
class Table:
    kind: str  # "category", "subcategory", "product_type", "uom"
    resource: str  # RunContext resource key
    path: str
    item: str  # the record's name
    label: str  # the table's name under System > Setup Tables (docs/connectwise/REFERENCE.md §8)
    missing_code: str
    inactive_code: str


TABLES: tuple[Table, ...] = (
    Table(
        "category",
        "categories",
        "procurement/categories",
        MISC,
        "Category",
        codes.TABLES_CATEGORY_MISSING,
        codes.TABLES_CATEGORY_INACTIVE,
    ),
    Table(
        "subcategory",
        "subcategories",
        "procurement/subcategories",
        MISC,
        "Subcategory",
        codes.TABLES_SUBCATEGORY_MISSING,
        codes.TABLES_SUBCATEGORY_INACTIVE,
    ),
    Table(
        "product_type",
        "product_types",
        "procurement/types",
        MISC,
        "Product Type",
        codes.TABLES_PRODUCT_TYPE_MISSING,
        codes.TABLES_PRODUCT_TYPE_INACTIVE,
    ),
    Table(
        "uom",
        "uoms",
        "procurement/unitOfMeasures",
        EACH,
        "UOM",
        codes.TABLES_UOM_MISSING,
        codes.TABLES_UOM_INACTIVE,
    ),
)
TABLE_BY_KIND = {t.kind: t for t in TABLES}
WHAT = {
    "category": "product category",
    "subcategory": "product subcategory",
    "product_type": "product type",
    "uom": "unit of measure",
}


def needs(choices) -> frozenset[str]:
    return frozenset(t.resource for t in TABLES)


def _active(record: dict) -> bool:
    return not record.get("inactiveFlag")


def resolve(ctx: RunContext) -> dict[str, dict | None]:
    """The record the sync uses from each table (None when missing); active ones preferred. The category is
    the Miscellaneous one that has a Miscellaneous subcategory, when several exist."""

    def build() -> dict[str, dict | None]:
        named = {t.kind: [r for r in ctx.get(t.resource) if same_name(r.get("name"), t.item)] for t in TABLES}
        subs = named["subcategory"]

        def category_rank(c: dict):
            has_sub = [s for s in subs if ref_id(s, "category") == c["id"]]
            return (not any(_active(s) for s in has_sub), not has_sub, not _active(c), c["id"])

        category = min(named["category"], key=category_rank, default=None)
        under = [s for s in subs if category is not None and ref_id(s, "category") == category["id"]]
        return {
            "category": category,
            "subcategory": _pick(under),
            "product_type": _pick(named["product_type"]),
            "uom": _pick(named["uom"]),
        }

    return ctx.remember("setup_tables", build)


def _pick(rows: list[dict]) -> dict | None:
    return min(rows, key=lambda r: (not _active(r), r["id"]), default=None)


def check(ctx: RunContext) -> StepOutcome:
    records = resolve(ctx)
    findings: list[Finding] = []
    for table in TABLES:
        record = records[table.kind]
        if record is None:
            findings.append(_missing(ctx, table, records))
        elif not _active(record):
            findings.append(_inactive(table, record))
    facts = {
        kind: ({"id": r["id"], "name": r.get("name"), "inactive": bool(r.get("inactiveFlag"))} if r else None)
        for kind, r in records.items()
    }
    ok = sum(1 for t in TABLES if records[t.kind] and _active(records[t.kind]))
    return StepOutcome.from_findings(
        KEY, findings, f"{ok} of {len(TABLES)} setup table items are ready.", **facts
    )


def _subject(table: Table, record: dict | None) -> str:
    if record is None:
        return f'{table.label} "{table.item}"'
    return f'{table.label} "{record.get("name")}" (id {record["id"]})'


def _missing(ctx: RunContext, table: Table, records: dict) -> Finding:
    where = ""
    extra = {}
    if table.kind == "subcategory":
        category = records["category"]
        others = [s for s in ctx.get("subcategories") if same_name(s.get("name"), MISC)]
        where = ' under the category "Miscellaneous"'
        extra = {"category_id": (category or {}).get("id"), "elsewhere": [s["id"] for s in others]}
    explanation = (
        f'There is no {WHAT[table.kind]} "{table.item}"{where}. The misc product the sync bills with must use it, '
        "so the product cannot be set up."
    )
    if table.kind == "subcategory" and extra["elsewhere"]:
        explanation += ' (A "Miscellaneous" subcategory exists, but under another category.)'
    fix = (
        f'In ConnectWise go to System > Setup Tables > search "{table.label}" > open the table > + > Name '
        f'"{table.item}"'
        + (' > Category "Miscellaneous"' if table.kind == "subcategory" else "")
        + " > Save."
    )
    if table.kind in ("category", "subcategory", "product_type"):
        fix += " Create missing items in the order category, subcategory, product type."
    return Finding(
        table.missing_code,
        Severity.ERROR,
        subject=_subject(table, None),
        explanation=explanation,
        fix=fix,
        repairable=True,
        data={"table": table.kind, **extra},
    )


def _inactive(table: Table, record: dict) -> Finding:
    return Finding(
        table.inactive_code,
        Severity.ERROR,
        subject=_subject(table, record),
        explanation=(
            f'The {WHAT[table.kind]} "{record.get("name")}" exists but is inactive, so products that use it cannot '
            "be billed."
        ),
        fix=(
            f'In ConnectWise go to System > Setup Tables > search "{table.label}" > open the table > open '
            f'"{record.get("name")}" > untick Inactive > Save.'
        ),
        repairable=True,
        record={"path": table.path, "id": record["id"]},
        data={
            "table": table.kind,
            "patch": [replace_operation("inactiveFlag", False)],
            "before": {"inactiveFlag": True},
            "field_label": field_label("inactiveFlag"),
            "before_label": "on",
            "after_label": "off",
        },
    )


# -- repairs -----------------------------------------------------------------------------------------------


def write_needs(finding: Finding) -> tuple[tuple[str, str], str] | None:
    """The security-role right a repair of ``finding`` writes with (docs/connectwise/REFERENCE.md §2, PRODUCT.md's
    guard table): a missing table entry is added (Add), a wrong one edited (Edit)."""
    if not finding.repairable:
        return None
    return ("System", "Table Setup"), "addLevel" if finding.code.endswith("_missing") else "editLevel"


def plan_operations(ctx: RunContext, outcome: StepOutcome, start: int = 1) -> list[PlannedOperation]:
    """Creates and reactivations in table order; a subcategory created with a category created by this plan
    refers to it by placeholder. ``start`` is the seq of the first operation (when another plan embeds this)."""
    plan, _ = plan_with_ids(ctx, outcome, start)
    return plan


def plan_with_ids(
    ctx: RunContext, outcome: StepOutcome, start: int = 1
) -> tuple[list[PlannedOperation], dict]:
    """The plan, and for each table the id to use in later bodies: a record id, or a ``{"$ref": seq}``."""
    records = resolve(ctx)
    by_code = {f.code: f for f in outcome.findings if f.repairable}
    ops: list[PlannedOperation] = []
    ids: dict[str, object] = {k: (r or {}).get("id") for k, r in records.items()}
    for table in TABLES:
        seq = start + len(ops)
        if table.missing_code in by_code:
            body: dict = {"name": table.item}
            conditions = str(cond.eq("name", table.item))
            if table.kind == "subcategory":
                category_id = ids["category"]
                if category_id is None:
                    continue  # cannot happen: a missing category is planned first
                body["category"] = {"id": category_id}
                cat_text = (
                    text_ref(int(category_id["$ref"])) if isinstance(category_id, dict) else str(category_id)
                )
                conditions = f"{conditions} and category/id = {cat_text}"
            ops.append(
                PlannedOperation(
                    method="POST",
                    path=table.path,
                    body=body,
                    finding_code=table.missing_code,
                    subject=_subject(table, None),
                    description=f'Create the {WHAT[table.kind]} "{table.item}"'
                    + (
                        f' under the category "Miscellaneous" ({_id_label(ids["category"])})'
                        if table.kind == "subcategory"
                        else ""
                    ),
                    before=None,
                    lookup={"path": table.path, "conditions": conditions},
                )
            )
            ids[table.kind] = ref(seq)
        elif table.inactive_code in by_code:
            f = by_code[table.inactive_code]
            ops.append(
                patch_operation(
                    f,
                    f'Activate the {WHAT[table.kind]} "{records[table.kind].get("name")}" '
                    f"(id {f.record['id']}): Inactive Yes -> No",
                    path=f"{table.path}/{f.record['id']}",
                )
            )
    return ops, ids


def _id_label(record_id: object) -> str:
    """``id 7``, or ``created by change 1`` for a record this plan creates first: records are named by id too."""
    if isinstance(record_id, dict) and "$ref" in record_id:
        return f"created by change {record_id['$ref']}"
    return f"id {record_id}"
