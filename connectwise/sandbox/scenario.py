"""Scenario files: one partner's ConnectWise as JSON (the format in PRODUCT.md "The ConnectWise sandbox").

The format is a contract other tools write to: extend it, never change what it says. Extensions made here, all
optional with defaults that keep older files meaning the same:

- ``company``: ``versionNumber``, ``siteUrl`` (default: the host the request came to), ``serverTimeZone``,
  ``cloudRegion``, ``serverName`` (the ``x-server-name`` header), ``mySecurityReadable`` (false: ``system/mySecurity``
  and its customize items answer 403, for the ``role.unreadable`` finding).
- ``securityRoles[]``: ``id``; ``mySecurityReadable`` as above for one role; settings rows may carry
  ``moduleIdentifier`` / ``moduleFunctionIdentifier`` (derived from the names when absent, not confirmed values).
- ``apiMembers[]``: ``id``, ``firstName``, ``lastName``.
- ``faults``: see ``scenario_faults.parse_faults``.

Since 2026-11-30 (issue 11; docs/connectwise/REFERENCE.md §2):

- ``records``: each record must be one the real API could return: only the fields of its SPEC schema, with their
  JSON types, enum values, maximum lengths and the non-reference fields the SPEC requires (``connectwise.contract``).
- ``records[...][]._info.enteredBy``: the identifier of the member who entered the record. With Inquire (or Edit)
  level "My" on the function that guards a path, the sandbox answers (or lets the member change) only the records
  whose ``enteredBy`` is the calling API member's ``identifier``; records the member creates are stamped so.
- ``securityRoles[].customizeItems[].customizeIdentifier``: the SPEC's enum value (``SystemTableSetup``,
  ``FinanceAgreements``, ...); the older spellings ``TableSetup`` / ``Table Setup`` / ``Agreements`` still load
  and are rewritten.

``load_scenario(path)`` / ``parse_scenario(data)`` return a ``Scenario`` or raise ``ScenarioError`` whose message
starts with the JSON path of the first problem: ``$.records["finance/agreements"][3].company.id: required``.
This module reads the company and the records; the roles and members are read in ``scenario_security``, the
faults in ``scenario_faults``, with the value readers of ``scenario_values``.
"""

from __future__ import annotations

import copy
import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from connectwise import contract

from .resources import ADDITIONS_PATH, RESOURCES
from .scenario_faults import parse_faults
from .scenario_security import parse_members, parse_roles
from .scenario_values import ScenarioError, as_list, as_object, child, fail, flag, text, type_name

DEFAULT_CODEBASE = "v4_6_release/"
DEFAULT_VERSION_CODE = "v2025.8"
TOP_LEVEL_KEYS = {"company", "apiMembers", "securityRoles", "records", "faults", "description"}


@dataclass
class Scenario:
    """A validated scenario. ``records`` is the pristine data a reset returns to (never mutated)."""

    company: dict[str, Any]
    api_members: list[dict[str, Any]]
    security_roles: list[dict[str, Any]]
    records: dict[str, list[dict[str, Any]]]
    faults: dict[str, Any]
    description: str = ""
    source: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def id(self) -> str:
        return self.company["id"]

    @property
    def codebase(self) -> str:
        return self.company["codebase"]

    def role(self, name: str) -> dict[str, Any] | None:
        wanted = name.casefold()
        return next((r for r in self.security_roles if r["name"].casefold() == wanted), None)


def load_scenario(path: str | Path) -> Scenario:
    """Read and validate a scenario file."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ScenarioError("$", f"cannot read the file ({exc.strerror or exc})", str(path)) from None
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ScenarioError(
            "$", f"not valid JSON: {exc.msg} at line {exc.lineno} column {exc.colno}", str(path)
        ) from None
    try:
        scenario = parse_scenario(data)
    except ScenarioError as exc:
        raise ScenarioError(exc.path, exc.problem, str(path)) from None
    scenario.source = str(path)
    return scenario


# -------------------------------------------------------------------------------------------------- parsing
def parse_scenario(data: Any) -> Scenario:
    """Validate a scenario (already parsed JSON) and return it with defaults filled in. ``data`` is not mutated."""
    root = as_object(data, "$")
    for key in root:
        if key not in TOP_LEVEL_KEYS and not key.startswith(("_", "x-")):
            fail(child("$", key), f"unknown key (expected one of {', '.join(sorted(TOP_LEVEL_KEYS))})")
    data = copy.deepcopy(root)
    company = _parse_company(data.get("company"), "$.company")
    roles = parse_roles(data.get("securityRoles", []), "$.securityRoles")
    members = parse_members(data.get("apiMembers", []), "$.apiMembers", roles)
    records = parse_records(data.get("records", {}), "$.records")
    faults = parse_faults(data.get("faults") or {}, "$.faults")
    description = data.get("description") or ""
    if not isinstance(description, str):
        fail("$.description", "must be a string")
    extra = {k: v for k, v in data.items() if k.startswith(("_", "x-"))}
    return Scenario(company, members, roles, records, faults, description, extra=extra)


def _parse_company(value: Any, path: str) -> dict:
    if value is None:
        fail(path, "required")
    obj = as_object(value, path)
    company_id = text(obj, "id", path)
    if not re.fullmatch(r"[A-Za-z0-9_.-]+", company_id):
        fail(child(path, "id"), "may hold only letters, digits, '_', '.' and '-' (it is a URL segment)")
    codebase = text(obj, "codebase", path, required=False, default=DEFAULT_CODEBASE)
    if not re.fullmatch(r"[A-Za-z0-9_.-]+/", codebase):
        fail(
            child(path, "codebase"),
            f"must look like {DEFAULT_CODEBASE!r} (one path segment and a trailing slash)",
        )
    version_code = text(obj, "versionCode", path, required=False, default=DEFAULT_VERSION_CODE)
    out = dict(obj)
    out.update(
        id=company_id,
        name=text(obj, "name", path),
        codebase=codebase,
        versionCode=version_code,
        versionNumber=text(obj, "versionNumber", path, required=False, default=f"{version_code}.0.1"),
        isCloud=flag(obj, "isCloud", path, True),
        siteUrl=text(obj, "siteUrl", path, required=False),
        serverTimeZone=text(obj, "serverTimeZone", path, required=False, default="Eastern Standard Time"),
        cloudRegion=text(obj, "cloudRegion", path, required=False, default="NA"),
        serverName=text(obj, "serverName", path, required=False, default="cw-sandbox-01"),
        mySecurityReadable=flag(obj, "mySecurityReadable", path, True),
    )
    return out


def parse_records(value: Any, path: str) -> dict[str, list[dict]]:
    obj = as_object(value, path)
    records: dict[str, list[dict]] = {}
    for key, rows in obj.items():
        spec = RESOURCES.get(key) or RESOURCES.get(key.rstrip("/"))
        if spec is None:
            fail(child(path, key), f"unknown API path (expected one of {', '.join(RESOURCES)})")
        rp = child(path, key)
        if spec.path in records:
            fail(rp, f"{spec.path!r} is given twice (with and without the trailing slash)")
        ids: dict[int, int] = {}
        clean: list[dict] = []
        for i, row in enumerate(as_list(rows, rp)):
            p = child(rp, i)
            row = as_object(row, p)
            rid = row.get("id")
            if rid is None:
                fail(child(p, "id"), "required")
            if not isinstance(rid, int) or isinstance(rid, bool) or rid < 1:
                fail(child(p, "id"), f"must be a positive integer, not {json.dumps(rid)}")
            if rid in ids:
                fail(child(p, "id"), f"duplicate id {rid} (also at {child(rp, ids[rid])})")
            ids[rid] = i
            for req in spec.scenario_required:
                _required(row, req, p)
            # A record the real API could not return (docs/connectwise/REFERENCE.md, connectwise/contract).
            problems = contract.record_problems(spec.path, row)
            if problems:
                first = problems[0]
                fail(first.where(p), first.message)
            for name, allowed in spec.enums.items():
                if row.get(name) is not None and row[name] not in allowed:
                    fail(child(p, name), f"must be one of {', '.join(allowed)}, not {json.dumps(row[name])}")
            for name in spec.refs:
                ref = row.get(name)
                if ref is None:
                    continue
                if not isinstance(ref, dict):
                    fail(child(p, name), f'must be a reference object like {{"id": 1}}, not {type_name(ref)}')
                if not isinstance(ref.get("id"), int) or isinstance(ref.get("id"), bool):
                    fail(child(child(p, name), "id"), "required" if "id" not in ref else "must be an integer")
            clean.append(dict(row))
        records[spec.path] = clean
    _check_references(records, path)
    validate_additions(records, path)
    return records


def _required(row: dict, req: str, p: str) -> None:
    parts = req.split("/")
    value: Any = row
    here = p
    for part in parts:
        here = child(here, part)
        if not isinstance(value, dict) or value.get(part) in (None, ""):
            fail(here, "required")
        value = value[part]


def _check_references(records: dict[str, list[dict]], path: str) -> None:
    """References point at existing records when the target collection is in the scenario; names are filled."""
    by_id = {key: {r["id"]: r for r in rows} for key, rows in records.items()}
    for key, rows in records.items():
        spec = RESOURCES[key]
        for i, row in enumerate(rows):
            for name, ref in spec.refs.items():
                value = row.get(name)
                if not isinstance(value, dict) or ref.target not in by_id:
                    continue
                target = by_id[ref.target].get(value["id"])
                p = child(child(child(path, key), i), name)
                if target is None:
                    fail(
                        child(p, "id"),
                        f"no record with id {value['id']} in $.records[{json.dumps(ref.target)}]",
                    )
                for copied in ref.copy:
                    if copied not in value and target.get(copied) is not None:
                        value[copied] = target[copied]


def validate_additions(records: dict[str, list[dict]], path: str) -> None:
    """Scenario check: every addition names an agreement of the scenario by ``agreementId`` (an integer)."""
    rows = records.get(ADDITIONS_PATH)
    if not rows:
        return
    agreements = {r["id"] for r in records.get("finance/agreements", [])}
    for i, row in enumerate(rows):
        p = child(child(child(path, ADDITIONS_PATH), i), "agreementId")
        value = row.get("agreementId")
        if not isinstance(value, int) or isinstance(value, bool):
            raise ScenarioError(p, f"must be an integer, not {json.dumps(value)}")
        if value not in agreements:
            raise ScenarioError(p, f'no record with id {value} in $.records["finance/agreements"]')
