"""Step 3, catalog: every product whose identifier starts with "misc" is active, and there is at least one.

The sync writes its agreement additions with a misc product. ConnectWise lists inactive catalog items only when
the query does not filter them out, so the read asks for ``identifier like "misc%"`` with every status
(docs/connectwise/REFERENCE.md §8: "Status All").
"""

from __future__ import annotations

from connectwise.client import replace_operation
from connectwise.labels import field_label
from connectwise.query import cond

from . import codes, setup_tables
from .base import Finding, Severity, StepOutcome
from .context import RunContext
from .operations import PlannedOperation, patch_operation

KEY = "catalog"
PATH = "procurement/catalog"
MISC_PREFIX = "misc"
NEW_PRODUCT = {
    "identifier": "misc",
    "description": "Miscellaneous",
    "customerDescription": "Miscellaneous",
}


def needs(choices) -> frozenset[str]:
    return frozenset({"misc_catalog"})


def misc_items(ctx: RunContext) -> list[dict]:
    # Filter again here: a server whose "like" is case-sensitive or ignores the wildcard must not make a
    # "miscellany-fee" product look like the misc product, nor hide "MISC".
    return [
        p
        for p in ctx.get("misc_catalog")
        if str(p.get("identifier") or "").casefold().startswith(MISC_PREFIX)
    ]


def describe(product: dict) -> str:
    return f'Product "{product.get("identifier")}" (id {product["id"]})'


def check(ctx: RunContext) -> StepOutcome:
    items = misc_items(ctx)
    findings: list[Finding] = []
    if not items:
        findings.append(
            Finding(
                codes.CATALOG_MISC_MISSING,
                Severity.ERROR,
                subject='Product "misc"',
                explanation=(
                    'Your product catalog has no product whose Product ID starts with "misc". The sync adds seats '
                    "to agreements as a misc product, so it has nothing to bill with."
                ),
                fix=(
                    "In ConnectWise go to Procurement > Product Catalog > + > Product ID misc, Description "
                    "Miscellaneous, Category Miscellaneous, Subcategory Miscellaneous, Product Type Miscellaneous, "
                    "Unit of Measure Each > Save. The setup tables step makes sure those exist first."
                ),
                repairable=True,
                data={"depends_on": "setup_tables"},
            )
        )
    for product in items:
        if product.get("inactiveFlag"):
            findings.append(
                Finding(
                    codes.CATALOG_MISC_INACTIVE,
                    Severity.ERROR,
                    subject=describe(product),
                    explanation=(
                        f'The product "{product.get("identifier")}" ({product.get("description") or "no description"}) '
                        "is inactive. The sync may use any misc product, and an inactive one cannot be added to "
                        "an agreement."
                    ),
                    fix=(
                        'In ConnectWise go to Procurement > Product Catalog > filter Product ID on "misc" with Status '
                        f'All > open "{product.get("identifier")}" > ACTIVATE.'
                    ),
                    repairable=True,
                    record={"path": PATH, "id": product["id"]},
                    data={
                        "patch": [replace_operation("inactiveFlag", False)],
                        "before": {"inactiveFlag": True},
                        "field_label": field_label("inactiveFlag"),
                        "before_label": "on",
                        "after_label": "off",
                    },
                )
            )
    active = sum(1 for p in items if not p.get("inactiveFlag"))
    return StepOutcome.from_findings(
        KEY,
        findings,
        (
            f"{active} of {len(items)} misc product{'s' if len(items) != 1 else ''} "
            f"{'is' if active == 1 else 'are'} active."
            if items
            else "No misc product exists."
        ),
        products=[
            {"id": p["id"], "identifier": p.get("identifier"), "inactive": bool(p.get("inactiveFlag"))}
            for p in items
        ],
    )


def write_needs(finding: Finding) -> tuple[tuple[str, str], str] | None:
    """The security-role right a repair of ``finding`` writes with (docs/connectwise/REFERENCE.md §2, PRODUCT.md's
    guard table): a missing product is added (Add), a wrong one edited (Edit)."""
    if not finding.repairable:
        return None
    return ("Procurement", "Product Catalog"), "addLevel" if finding.code.endswith(
        "_missing"
    ) else "editLevel"


def plan_operations(
    ctx: RunContext, outcome: StepOutcome, start: int = 1, table_ids: dict | None = None
) -> list[PlannedOperation]:
    """Activate inactive misc products; create one when none exists. ``start`` is the seq of the first operation
    (when a combined plan embeds this one) and ``table_ids`` the setup-table ids (or placeholders) an earlier part
    of that plan provides; without them the table creates the product needs are planned here first."""
    ops = [
        patch_operation(
            f,
            f"Activate the product {f.subject.removeprefix('Product ')}: Inactive Yes -> No",
            path=f"{PATH}/{f.record['id']}",
        )
        for f in outcome.findings
        if f.code == codes.CATALOG_MISC_INACTIVE and f.repairable
    ]
    if not any(f.code == codes.CATALOG_MISC_MISSING for f in outcome.findings):
        return ops
    if table_ids is not None:
        ids = table_ids
    else:
        # The new product refers to the four setup table records: plan their creates/reactivations first.
        ctx.prefetch(setup_tables.needs(ctx.choices))
        tables_outcome = setup_tables.check(ctx)
        table_ops, ids = setup_tables.plan_with_ids(ctx, tables_outcome, start=start + len(ops))
        ops.extend(table_ops)
    body = {
        **NEW_PRODUCT,
        "category": {"id": ids["category"]},
        "subcategory": {"id": ids["subcategory"]},
        "type": {"id": ids["product_type"]},
        "unitOfMeasure": {"id": ids["uom"]},
    }
    ops.append(
        PlannedOperation(
            method="POST",
            path=PATH,
            body=body,
            finding_code=codes.CATALOG_MISC_MISSING,
            subject='Product "misc"',
            description=(
                'Create the product "misc" (Miscellaneous) in category, subcategory and product type '
                '"Miscellaneous" with unit of measure "Each"'
            ),
            lookup={"path": PATH, "conditions": str(cond.eq("identifier", NEW_PRODUCT["identifier"]))},
        )
    )
    return ops
