"""The security part of a scenario: its security roles (settings, customize items) and its API members.

A role's settings rows carry the four levels (``LEVELS``); customize items take the SPEC's
``customizeIdentifier`` enum, older spellings rewritten (the format is a contract: old files still load).
"""

from __future__ import annotations

import json
from typing import Any

from connectwise import contract

from .resources import LEGACY_CUSTOMIZE_IDENTIFIERS, LEVEL_FIELDS, LEVELS
from .scenario_values import as_list, as_object, child, fail, flag, text


def _identifier_for(name: str) -> str:
    return "".join(ch for ch in name.title() if ch.isalnum())


def parse_roles(value: Any, path: str) -> list[dict]:
    """Security roles as a scenario lists them (``securityRoles``), validated and normalised; ScenarioError names
    the JSON path of the first problem. The sandbox's role control uses it too."""
    roles: list[dict] = []
    seen: dict[str, int] = {}
    for i, item in enumerate(as_list(value, path)):
        p = child(path, i)
        obj = as_object(item, p)
        name = text(obj, "name", p)
        if name.casefold() in seen:
            fail(child(p, "name"), f"duplicate role name (also at {child(path, seen[name.casefold()])})")
        seen[name.casefold()] = i
        role_id = obj.get("id", i + 1)
        if not isinstance(role_id, int) or isinstance(role_id, bool):
            fail(child(p, "id"), "must be an integer")
        settings = []
        functions: dict[tuple[str, str], int] = {}
        for j, row in enumerate(as_list(obj.get("settings", []), child(p, "settings"))):
            rp = child(child(p, "settings"), j)
            row = as_object(row, rp)
            module = text(row, "moduleName", rp)
            function = text(row, "moduleFunctionName", rp)
            key = (module.casefold(), function.casefold())
            if key in functions:
                fail(rp, f"{module} > {function} is listed twice (also at [{functions[key]}])")
            functions[key] = j
            clean = dict(row)
            for level in LEVEL_FIELDS:
                v = row.get(level, "None")
                if v not in LEVELS:
                    fail(child(rp, level), f"must be one of {', '.join(LEVELS)}, not {json.dumps(v)}")
                clean[level] = v
            clean.setdefault("moduleIdentifier", _identifier_for(module))
            clean.setdefault("moduleFunctionIdentifier", _identifier_for(function))
            settings.append(clean)
        items = []
        for j, row in enumerate(as_list(obj.get("customizeItems", []), child(p, "customizeItems"))):
            rp = child(child(p, "customizeItems"), j)
            row = as_object(row, rp)
            identifier = _customize_identifier(
                text(row, "customizeIdentifier", rp), child(rp, "customizeIdentifier")
            )
            text(row, "itemIdentifier", rp)
            items.append({**row, "customizeIdentifier": identifier})
        role = dict(obj)
        role.update(
            id=role_id,
            name=name,
            settings=settings,
            customizeItems=items,
            mySecurityReadable=flag(obj, "mySecurityReadable", p, True),
        )
        roles.append(role)
    return roles


def _customize_identifier(value: str, path: str) -> str:
    """The SPEC's enum value (``SystemTableSetup``); the older spellings ``TableSetup`` / ``Table Setup`` /
    ``Agreements`` are rewritten (the scenario format is a contract: files written before 2026-11-30 still load)."""
    squashed = "".join(ch for ch in value.casefold() if ch.isalnum())
    value = LEGACY_CUSTOMIZE_IDENTIFIERS.get(squashed, value)
    allowed = [
        v
        for v in contract.schema("MySecurityCustomizeItem")["properties"]["customizeIdentifier"]["enum"]
        if v
    ]
    if value not in allowed:
        fail(
            path,
            f"must be one of {', '.join(allowed)} (SPEC MySecurityCustomizeItem), not {json.dumps(value)}",
        )
    return value


def parse_members(value: Any, path: str, roles: list[dict]) -> list[dict]:
    """API members as a scenario lists them (``apiMembers``), each with a unique public key and an existing
    security role; ``id`` and ``inactiveFlag`` filled in."""
    members: list[dict] = []
    public_keys: dict[str, int] = {}
    role_names = {r["name"].casefold() for r in roles}
    for i, item in enumerate(as_list(value, path)):
        p = child(path, i)
        obj = as_object(item, p)
        identifier = text(obj, "identifier", p)
        public = text(obj, "publicKey", p)
        text(obj, "privateKey", p)
        if public in public_keys:
            fail(child(p, "publicKey"), f"duplicate public key (also at {child(path, public_keys[public])})")
        public_keys[public] = i
        role = text(obj, "securityRole", p)
        if role.casefold() not in role_names:
            fail(child(p, "securityRole"), f"no security role named {role!r} in $.securityRoles")
        member = dict(obj)
        member.update(
            id=obj.get("id", i + 1), identifier=identifier, inactiveFlag=flag(obj, "inactiveFlag", p, False)
        )
        members.append(member)
    return members
