"""Step 2, security_role: the API member's role grants what the sync needs, and nothing more.

Reads the caller's effective security (``/system/mySecurity`` and ``/system/mySecurity/customizeItems``) and
compares it with the one required matrix below (docs/connectwise/REFERENCE.md §2). Role settings cannot be changed over the API (the
settings endpoint is GET only), so nothing here is repairable: every finding carries the exact clicks.
"""

from __future__ import annotations

from connectwise.errors import ConnectWiseError, Forbidden, NotFound

from . import agreement_targets, codes
from .base import Finding, Severity, StepOutcome
from .context import RESOURCES, ResourceError, RunContext
from .role import (
    AGREEMENTS_CUSTOMIZE,
    RANK,
    ROLE_CLICKS,
    TABLE_SETUP_CUSTOMIZE,
    allowed_items,
    customize_key,
    item_key,
    level_of,
    text_key,
)

KEY = "security_role"

# The required matrix, the ONE place it is written down (docs/connectwise/REFERENCE.md §2). Matched on the display names
# (moduleName / moduleFunctionName): the literal moduleIdentifier strings are NOT confirmed by any public
# source, so they are never used. Levels not listed for a function must be None (least privilege).
REQUIRED_LEVELS: dict[tuple[str, str], dict[str, str]] = {
    ("Companies", "Company Maintenance"): {"inquireLevel": "All"},
    ("Finance", "Agreements"): {"addLevel": "All", "editLevel": "All", "inquireLevel": "All"},
    ("Procurement", "Product Catalog"): {"addLevel": "All", "editLevel": "All", "inquireLevel": "All"},
    ("Procurement", "Products"): {"addLevel": "All", "editLevel": "All", "inquireLevel": "All"},
    ("System", "Table Setup"): {"addLevel": "All", "editLevel": "All", "inquireLevel": "All"},
}
REQUIRED_CUSTOMIZE_ITEMS: dict[str, tuple[str, ...]] = {
    TABLE_SETUP_CUSTOMIZE: (
        "Company / Company Status",
        "Products / Category",
        "Products / Subcategories",
        "Product",
        "Product Type",
        "Product / UOM",
    ),
    # Agreements: the agreement types of the chosen companies' target agreements (worked out per run).
}

LEVELS = ("addLevel", "editLevel", "deleteLevel", "inquireLevel")
LEVEL_LABEL = {"addLevel": "Add", "editLevel": "Edit", "deleteLevel": "Delete", "inquireLevel": "Inquire"}

# Why the sync needs each function, for the explanations.
PURPOSE = {
    ("Companies", "Company Maintenance"): "find your customers' companies",
    ("Finance", "Agreements"): "write seat counts into your customers' agreements",
    ("Procurement", "Product Catalog"): "use the misc product for agreement additions",
    ("Procurement", "Products"): "add products to agreements",
    ("System", "Table Setup"): "read and fix the product category, subcategory, type and unit of measure",
}

# Read-only probes when mySecurity cannot be read: one /count per guarded path (constant cost). A resource the
# run already read successfully counts as a passed probe without a new call.
PROBES: tuple[tuple[str, tuple[str, str]], ...] = (
    ("companies", ("Companies", "Company Maintenance")),
    ("agreements", ("Finance", "Agreements")),
    ("misc_catalog", ("Procurement", "Product Catalog")),
    ("categories", ("System", "Table Setup")),
)


def needs(choices) -> frozenset[str]:
    keys = {"my_security", "customize_items"}
    if choices is not None and choices.companies:
        keys.add("agreements")  # the target agreements' types decide which Agreements items are needed
        keys |= {"agreement_types", "billing_cycles"}  # and the types the role hides from a chosen motion
    return frozenset(keys)


def check(ctx: RunContext) -> StepOutcome:
    findings: list[Finding] = []
    facts: dict = {}
    security_error = ctx.error_of("my_security")
    if security_error is not None:
        if not isinstance(security_error, Forbidden | NotFound):
            raise_resource(ctx, "my_security")
        findings.append(_unreadable("effective security settings (System > My Security)", security_error))
        findings.extend(_probe(ctx))
        facts["write_levels_verified"] = False
    else:
        rows = ctx.get("my_security")
        findings.extend(_compare_levels(rows))
        facts["write_levels_verified"] = True
        facts["functions_read"] = len(rows)

    items_error = ctx.error_of("customize_items")
    if items_error is not None:
        if not isinstance(items_error, Forbidden | NotFound):
            raise_resource(ctx, "customize_items")
        findings.append(_unreadable("customize items (the Access Allowed lists)", items_error))
        facts["customize_items_verified"] = False
    else:
        allowed = allowed_items(ctx)
        findings.extend(_compare_customize(ctx, allowed, facts))
        facts["customize_items_verified"] = True

    if not findings:
        summary = "The security role grants exactly what the sync needs."
    elif any(f.severity == Severity.ERROR for f in findings):
        summary = "The security role is missing permissions the sync needs."
    else:
        summary = "The security role works; see the notes."
    return StepOutcome.from_findings(KEY, findings, summary, **facts)


def raise_resource(ctx: RunContext, key: str) -> None:
    """Re-raise a failed read that is not a refusal: the runner reports step.check_failed."""
    ctx.get(key)


def _compare_levels(rows: list[dict]) -> list[Finding]:
    found: dict[tuple[str, str], dict] = {}
    display: dict[tuple[str, str], tuple[str, str]] = {}
    for row in rows:
        k = (text_key(row.get("moduleName")), text_key(row.get("moduleFunctionName")))
        found[k] = row
        display[k] = (row.get("moduleName") or "", row.get("moduleFunctionName") or "")
    findings: list[Finding] = []
    required_keys = {(text_key(m), text_key(f)): (m, f) for m, f in REQUIRED_LEVELS}
    for k, (module, function) in required_keys.items():
        row = found.get(k, {})
        for level, needed in REQUIRED_LEVELS[(module, function)].items():
            current = level_of(row.get(level))
            if RANK[current] < RANK[needed]:
                findings.append(_insufficient(module, function, level, current, needed))
    for k, row in found.items():
        module, function = display[k]
        required = REQUIRED_LEVELS.get(required_keys.get(k, ("", "")), {})
        excess = [lvl for lvl in LEVELS if RANK[level_of(row.get(lvl))] > 0 and lvl not in required]
        if excess:
            findings.append(_excess(module, function, {lvl: level_of(row.get(lvl)) for lvl in excess}))
    return findings


def _insufficient(module: str, function: str, level: str, current: str, needed: str, probed=False) -> Finding:
    label = LEVEL_LABEL[level]
    purpose = PURPOSE.get((module, function), "work")
    if probed:
        explanation = (
            f"ConnectWise refused to let the API member read {function}, so its {label} level is None (or a "
            f"customize item is missing). The billing sync needs {label} {needed} to {purpose}."
        )
    else:
        explanation = (
            f"The API member's security role has {function} {label} set to {current}. The billing sync needs "
            f"{label} {needed} to {purpose}."
        )
    return Finding(
        codes.ROLE_INSUFFICIENT_LEVEL,
        Severity.ERROR,
        subject=f"{module} > {function}: {label} is {current}, needs {needed}",
        explanation=explanation,
        fix=f"{ROLE_CLICKS} > section {module} > {function} > set {label} Level to {needed} > Save.",
        data={
            "module": module,
            "function": function,
            "level": label.lower(),
            "current": current,
            "required": needed,
            "probed": probed,
        },
    )


def _excess(module: str, function: str, levels: dict[str, str]) -> Finding:
    listed = ", ".join(f"{LEVEL_LABEL[lvl]} {value}" for lvl, value in levels.items())
    which = " and ".join(LEVEL_LABEL[lvl] for lvl in levels)
    return Finding(
        codes.ROLE_EXCESS_PERMISSION,
        Severity.WARNING,
        subject=f"{module} > {function}: {listed}",
        explanation=(
            f"The API member may {which.lower()} {function}, which the billing sync never needs. Keys that can "
            "do less do less harm if they leak: least privilege means every level the sync does not use is None."
        ),
        fix=f"{ROLE_CLICKS} > section {module} > {function} > set {which} to None > Save.",
        data={
            "module": module,
            "function": function,
            "levels": {LEVEL_LABEL[k].lower(): v for k, v in levels.items()},
        },
    )


def _unreadable(what: str, exc: ConnectWiseError) -> Finding:
    return Finding(
        codes.ROLE_UNREADABLE,
        Severity.WARNING,
        subject=f"Security role: {what}",
        explanation=(
            f"ConnectWise did not let us read the API member's {what} (HTTP {exc.status}). We checked read access "
            "with harmless test reads instead, but the Add and Edit levels (and the Access Allowed lists) could "
            "not be verified: if one is missing, the first sync or repair that writes will fail."
        ),
        fix=(
            f"{ROLE_CLICKS} and compare it by hand: Companies > Company Maintenance Inquire All; Finance > "
            "Agreements Add, Edit, Inquire All; Procurement > Product Catalog and Products Add, Edit, Inquire All; "
            "System > Table Setup Add, Edit, Inquire All; every other level None."
        ),
        data={"status": exc.status, "write_levels_verified": False},
    )


# A deliberate choice: role.unreadable is a WARNING, not an error. Some ConnectWise versions and roles refuse
# mySecurity while granting everything the sync needs; the probes still prove every read, and an error here
# would leave a working tenant "not ready" forever with nothing the partner could change. Missing reads found by
# the probes are errors as usual.
def _probe(ctx: RunContext) -> list[Finding]:
    findings: list[Finding] = []
    todo = [(key, mf) for key, mf in PROBES if not ctx.loaded_ok(key)]

    def count(item):
        key, _ = item
        resource = RESOURCES[key]
        try:
            ctx.client.count(resource.path, conditions=resource.conditions)
            return None
        except ConnectWiseError as exc:
            return exc

    results = ctx.client.map_concurrent(count, todo) if todo else []
    for (key, (module, function)), exc in zip(todo, results, strict=True):
        if exc is None:
            continue
        if isinstance(exc, Forbidden):
            findings.append(_insufficient(module, function, "inquireLevel", "None", "All", probed=True))
        else:
            raise ResourceError(RESOURCES[key], exc)
    return findings


def _compare_customize(ctx: RunContext, allowed: dict[str, set[str]], facts: dict) -> list[Finding]:
    findings: list[Finding] = []
    for customize, items in REQUIRED_CUSTOMIZE_ITEMS.items():
        have = allowed.get(customize_key(customize), set())
        for item in items:
            if item_key(item) not in have:
                findings.append(_missing_item(customize, item))

    types = agreement_targets.target_type_names(ctx)
    unread = ctx.error_of("agreements") if types is None else None
    if unread is not None and not isinstance(unread, Forbidden | NotFound):
        # The agreements could not be read for a passing reason: which agreement types the role must allow is
        # unknown, and leaving out their findings would pass over a gap silently (found by benchmark soak).
        raise_resource(ctx, "agreements")
    facts["agreement_types_needed"] = sorted(types) if types is not None else None
    types_unread = ctx.error_of("agreement_types") if ctx.choices.companies else None
    if types_unread is not None and not isinstance(types_unread, Forbidden | NotFound):
        # Likewise the agreement types: without them the types the role hides are unknown (benchmark soak).
        raise_resource(ctx, "agreement_types")
    have_agreements = allowed.get(customize_key(AGREEMENTS_CUSTOMIZE), set())
    # Types the role hides (ConnectWise does not show their agreements to the member) that a chosen company's
    # motion needs: the company has no visible agreement for it, or only another type's (issue 17).
    hidden = agreement_targets.hidden_types_needed(ctx)
    facts["agreement_types_hidden_needed"] = sorted(hidden)
    if types or hidden:
        for name in sorted(set(types or ()) | set(hidden)):
            if item_key(name) not in have_agreements:
                findings.append(_missing_item(AGREEMENTS_CUSTOMIZE, name, hidden.get(name)))
    elif not have_agreements:
        findings.append(_missing_item(AGREEMENTS_CUSTOMIZE, None))
    return findings


def _missing_item(customize: str, item: str | None, hidden_for: list[int] | None = None) -> Finding:
    if item is None:
        what = "at least one agreement type (for example the type of your Office 365 or Azure agreements)"
        subject = f"{customize} (customize) > Access Allowed: no agreement type"
        explanation = (
            "The API member's role allows no agreement type at all, so the sync cannot see or update any "
            "agreement. Choose your customers first to see exactly which types are needed."
        )
    else:
        what = f'"{item}"'
        subject = f'{customize} (customize) > Access Allowed: "{item}"'
        if customize == AGREEMENTS_CUSTOMIZE and hidden_for:
            listed = ", ".join(f"id {i}" for i in hidden_for[:10])
            explanation = (
                f'The API member\'s role does not allow the agreement type "{item}", and ConnectWise hides '
                f"agreements of that type from it. Chosen customers ({listed}) have no agreement we can see for "
                "their billing motion, so their agreement is probably of this type: the sync could neither see "
                "nor update it."
            )
        elif customize == AGREEMENTS_CUSTOMIZE:
            explanation = (
                f"A chosen customer's agreement is of type \"{item}\", which the API member's role does not "
                "allow, so the sync cannot update it."
            )
        else:
            explanation = (
                f'The API member\'s role does not allow the {customize} item "{item}", so the sync cannot read '
                "or fix it even with the right levels."
            )
    return Finding(
        codes.ROLE_MISSING_CUSTOMIZE_ITEM,
        Severity.ERROR,
        subject=subject,
        explanation=explanation,
        fix=(
            f'{ROLE_CLICKS} > the "customize" link next to {customize} > Access Allowed: add {what} > Save.'
        ),
        data={"customize": customize, "item": item, "hidden_for_companies": hidden_for or []},
    )
