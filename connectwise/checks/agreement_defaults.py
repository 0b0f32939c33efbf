"""Defaults per billing motion for the agreements the product creates (issue 18).

The partner admin sets them once (the agreements page, or ``repair_tenant --defaults FILE``): for each motion the
agreement type, a name pattern, the start date and, for annual, the one-time setting. The agreements step turns a
chosen company without a fitting active agreement into one create from its motion's defaults.

Stored shape (``Tenant.agreement_defaults``, plain JSON), per motion key ``monthly`` / ``azure`` / ``annual``::

    {"type_id": 3, "type_name": "O365", "name": "{company} - Microsoft 365", "start": "2026-12-01" or "",
     "one_time": true}   # one_time: annual only

``start`` empty means "the first day of the month the plan is built in". Everything here is plain data: no
ConnectWise call, no Django.
"""

from __future__ import annotations

import string
from datetime import date, datetime
from typing import Any

from .choices import MOTIONS

NAME_MAX = (
    100  # SPEC 2025.8 components.schemas.Agreement.name: maxLength 100 (docs/connectwise/REFERENCE.md §3)
)
PLACEHOLDERS = ("company", "identifier")  # the company's name and its ConnectWise identifier
DEFAULT_NAMES = {
    "monthly": "{company} - Microsoft 365",
    "azure": "{company} - Azure Plan",
    "annual": "{company} - Annual seats",
}


class DefaultsError(ValueError):
    """The defaults are refused; ``.problems`` lists every reason (``"monthly.type: ..."``), nothing was saved."""

    def __init__(self, problems: list[str]):
        super().__init__("; ".join(problems))
        self.problems = problems


def type_options(agreement_types: list[dict], allowed: set[str] | None, allowed_fn=None) -> list[dict]:
    """``[{id, name, allowed, one_time, inactive}]`` for every agreement type (SPEC ``AgreementType``: ``name``,
    ``inactiveFlag``, ``billOneTimeFlag``, ``oneTimeFlag``). ``allowed_fn(name) -> bool`` says whether the API
    member's role lists the type under Agreements (customize) > Access Allowed; None when that list is unreadable
    (then every type counts as allowed, and the check says the list was not read)."""
    out = []
    for t in agreement_types:
        name = t.get("name") or ""
        out.append(
            {
                "id": t.get("id"),
                "name": name,
                "allowed": True if allowed_fn is None else bool(allowed_fn(name)),
                "one_time": bool(t.get("billOneTimeFlag") or t.get("oneTimeFlag")),
                "inactive": bool(t.get("inactiveFlag")),
            }
        )
    return out


def selectable(options: list[dict]) -> list[dict]:
    """The types a partner may pick: active and allowed by the role's Access Allowed list."""
    return [o for o in options if o["allowed"] and not o["inactive"]]


def validate(raw: Any, options: list[dict]) -> dict[str, dict]:
    """Check defaults given as ``{"monthly": {"type": "O365" or 3, "name": "...", "start": "YYYY-MM-DD",
    "one_time": true}, ...}`` (any subset of the motions) against the tenant's agreement types (``type_options``).

    Returns the stored shape. Raises ``DefaultsError`` naming every problem: an unknown motion or key, a type that
    does not exist, is inactive or is not in the role's Access Allowed list (ConnectWise would refuse the create),
    a name pattern with unknown placeholders or whose fixed text alone is over 100 characters, a date that is not
    YYYY-MM-DD.
    """
    problems: list[str] = []
    if not isinstance(raw, dict):
        raise DefaultsError(['the defaults must be a JSON object keyed by "monthly", "azure", "annual"'])
    out: dict[str, dict] = {}
    for motion, spec in raw.items():
        where = str(motion)
        if motion not in MOTIONS:
            problems.append(f"{where}: unknown motion (use {', '.join(MOTIONS)})")
            continue
        if not isinstance(spec, dict):
            problems.append(f"{where}: must be an object with type, name, start")
            continue
        extra = set(spec) - {"type", "name", "start", "one_time"}
        if extra:
            problems.append(f"{where}: unknown key(s) {', '.join(sorted(map(str, extra)))}")
        option, why = _find_type(spec.get("type"), options)
        if option is None:
            problems.append(f"{where}.type: {why}")
        elif motion != "annual" and option["one_time"]:
            problems.append(
                f'{where}.type: "{option["name"]}" bills one time; {motion} seats need a recurring agreement type'
            )
        name = spec.get("name") or DEFAULT_NAMES[motion]
        name_problem = pattern_problem(name) if isinstance(name, str) else "must be text"
        if name_problem:
            problems.append(f"{where}.name: {name_problem}")
        start = spec.get("start") or ""
        if not isinstance(start, str) or (start and _parse_date(start) is None):
            problems.append(f"{where}.start: must be a date as YYYY-MM-DD (or empty: the first of the month)")
        one_time = spec.get("one_time", True)
        if not isinstance(one_time, bool):
            problems.append(f"{where}.one_time: must be true or false")
        elif motion != "annual" and "one_time" in spec and one_time:
            problems.append(f"{where}.one_time: only annual agreements bill one time")
        if option is not None and not name_problem and isinstance(start, str):
            entry = {"type_id": option["id"], "type_name": option["name"], "name": name, "start": start}
            if motion == "annual":
                entry["one_time"] = bool(one_time)
            out[motion] = entry
    if problems:
        raise DefaultsError(problems)
    return out


def _find_type(value: Any, options: list[dict]) -> tuple[dict | None, str]:
    if value is None or value == "":
        return None, "is required (an agreement type name or id)"
    if isinstance(value, bool):
        return None, "must be an agreement type name or id"
    if isinstance(value, int) or (isinstance(value, str) and value.strip().isdigit()):
        found = [o for o in options if o["id"] == int(value)]
    elif isinstance(value, str):
        key = value.strip().casefold()
        found = [o for o in options if (o["name"] or "").strip().casefold() == key]
    else:
        return None, "must be an agreement type name or id"
    if not found:
        known = ", ".join(f'"{o["name"]}" (id {o["id"]})' for o in selectable(options)) or "none"
        return None, f"no agreement type {value!r} in ConnectWise (types you can use: {known})"
    option = found[0]
    if option["inactive"]:
        return None, f'the agreement type "{option["name"]}" is inactive'
    if not option["allowed"]:
        return None, (
            f'the agreement type "{option["name"]}" is not in the API member\'s Access Allowed list '
            "(System > Security Roles > the role > customize next to Agreements): ConnectWise refuses to create it"
        )
    return option, ""


def pattern_problem(pattern: str) -> str:
    """Why a name pattern cannot be used, or "" when it can."""
    if not pattern.strip():
        return "must not be empty"
    try:
        fields = [f for _, f, _, _ in string.Formatter().parse(pattern) if f is not None]
    except ValueError as exc:
        return f"is not a valid pattern ({exc})"
    unknown = [f for f in fields if f not in PLACEHOLDERS]
    if unknown:
        return f"unknown placeholder(s) {', '.join('{' + f + '}' for f in unknown)} (use {{company}}, {{identifier}})"
    fixed = render(pattern, company="", identifier="", limit=None)
    if len(fixed) >= NAME_MAX:
        return f"its fixed text is {len(fixed)} characters; ConnectWise allows {NAME_MAX} for the whole name"
    return ""


def render(pattern: str, *, company: str, identifier: str, limit: int | None = NAME_MAX) -> str:
    """The agreement name for one company, never over ``limit`` characters: when it would be, the company's
    name (and identifier) are shortened and the pattern's own text is kept."""
    values = {"company": company or "", "identifier": identifier or ""}
    text = pattern.format(**values)
    if limit is None or len(text) <= limit:
        return text.strip()
    over = len(text) - limit
    for key in ("company", "identifier"):
        if over <= 0:
            break
        uses = pattern.count("{" + key + "}")
        if not uses or not values[key]:
            continue
        cut = min(len(values[key]), -(-over // uses))
        values[key] = values[key][: len(values[key]) - cut].rstrip()
        text = pattern.format(**values)
        over = len(text) - limit
    return text[:limit].strip()


def start_date(entry: dict, today: date | datetime) -> str:
    """The agreement's ``startDate`` as ConnectWise writes date-times (``2026-11-01T00:00:00Z``): the stored date,
    or the first day of ``today``'s month."""
    day = _parse_date(entry.get("start") or "") or date(today.year, today.month, 1)
    return f"{day.isoformat()}T00:00:00Z"


def _parse_date(text: str) -> date | None:
    try:
        return date.fromisoformat(text.strip())
    except (TypeError, ValueError):
        return None


def describe(defaults: dict[str, dict]) -> list[dict]:
    """One line per motion for the summary page: ``[{motion, type, name, start, one_time}]``."""
    out = []
    for motion in MOTIONS:
        entry = defaults.get(motion)
        if entry:
            out.append(
                {
                    "motion": motion,
                    "type": f"{entry.get('type_name')} (id {entry.get('type_id')})",
                    "name": entry.get("name"),
                    "start": entry.get("start") or "first day of the current month",
                    "one_time": entry.get("one_time") if motion == "annual" else None,
                }
            )
    return out
