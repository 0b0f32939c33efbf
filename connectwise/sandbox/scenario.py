"""Scenario files: one partner's ConnectWise as JSON (the format in PRODUCT.md "The ConnectWise sandbox").

The format is a contract other tools write to: extend it, never change what it says. Extensions made here, all
optional with defaults that keep older files meaning the same:

- ``company``: ``versionNumber``, ``siteUrl`` (default: the host the request came to), ``serverTimeZone``,
  ``cloudRegion``, ``serverName`` (the ``x-server-name`` header), ``mySecurityReadable`` (false: ``system/mySecurity``
  and its customize items answer 403, for the ``role.unreadable`` finding).
- ``securityRoles[]``: ``id``; ``mySecurityReadable`` as above for one role; settings rows may carry
  ``moduleIdentifier`` / ``moduleFunctionIdentifier`` (derived from the names when absent, not confirmed values).
- ``apiMembers[]``: ``id``, ``firstName``, ``lastName``.
- ``faults``: see ``parse_faults``.

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
"""

from __future__ import annotations

import copy
import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from connectwise import contract

from .resources import ADDITIONS_PATH, LEGACY_CUSTOMIZE_IDENTIFIERS, LEVEL_FIELDS, LEVELS, RESOURCES

DEFAULT_CODEBASE = "v4_6_release/"
DEFAULT_VERSION_CODE = "v2025.8"
FAULT_KINDS = ("429", "500", "503", "reset", "resetAfter", "slow")
TOP_LEVEL_KEYS = {"company", "apiMembers", "securityRoles", "records", "faults", "description"}


class ScenarioError(ValueError):
    """A scenario that cannot be served. ``path`` is the JSON path of the first problem."""

    def __init__(self, path: str, problem: str, source: str | None = None) -> None:
        self.path = path
        self.problem = problem
        self.source = source
        where = f"{source}: " if source else ""
        super().__init__(f"{where}{path}: {problem}")


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


# ------------------------------------------------------------------------------------------- JSON path helpers
_IDENT = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


def child(path: str, key: str | int) -> str:
    if isinstance(key, int):
        return f"{path}[{key}]"
    if _IDENT.match(key):
        return f"{path}.{key}"
    return f"{path}[{json.dumps(key)}]"


def _fail(path: str, problem: str):
    raise ScenarioError(path, problem)


def _obj(value: Any, path: str) -> dict:
    if not isinstance(value, dict):
        _fail(path, f"must be an object, not {_type(value)}")
    return value


def _list(value: Any, path: str) -> list:
    if not isinstance(value, list):
        _fail(path, f"must be an array, not {_type(value)}")
    return value


def _str(obj: dict, key: str, path: str, required: bool = True, default: str | None = None) -> str | None:
    if key not in obj or obj[key] is None:
        if required:
            _fail(child(path, key), "required")
        return default
    value = obj[key]
    if not isinstance(value, str) or (required and not value.strip()):
        _fail(child(path, key), f"must be a non-empty string, not {_type(value)}")
    return value


def _bool(obj: dict, key: str, path: str, default: bool) -> bool:
    if key not in obj or obj[key] is None:
        return default
    if not isinstance(obj[key], bool):
        _fail(child(path, key), f"must be true or false, not {_type(obj[key])}")
    return obj[key]


def _number(obj: dict, key: str, path: str, default: float, minimum: float = 0, maximum: float | None = None):
    if key not in obj or obj[key] is None:
        return default
    value = obj[key]
    if isinstance(value, bool) or not isinstance(value, int | float):
        _fail(child(path, key), f"must be a number, not {_type(value)}")
    if value < minimum or (maximum is not None and value > maximum):
        bound = f"between {minimum} and {maximum}" if maximum is not None else f"at least {minimum}"
        _fail(child(path, key), f"must be {bound}, not {value}")
    return value


def _type(value: Any) -> str:
    if value is None:
        return "null"
    return {
        bool: "a boolean",
        int: "a number",
        float: "a number",
        str: "a string",
        list: "an array",
        dict: "an object",
    }.get(type(value), type(value).__name__)


# -------------------------------------------------------------------------------------------------- parsing
def parse_scenario(data: Any) -> Scenario:
    """Validate a scenario (already parsed JSON) and return it with defaults filled in. ``data`` is not mutated."""
    root = _obj(data, "$")
    for key in root:
        if key not in TOP_LEVEL_KEYS and not key.startswith(("_", "x-")):
            _fail(child("$", key), f"unknown key (expected one of {', '.join(sorted(TOP_LEVEL_KEYS))})")
    data = copy.deepcopy(root)
    company = _parse_company(data.get("company"), "$.company")
    roles = _parse_roles(data.get("securityRoles", []), "$.securityRoles")
    members = _parse_members(data.get("apiMembers", []), "$.apiMembers", roles)
    records = parse_records(data.get("records", {}), "$.records")
    faults = parse_faults(data.get("faults") or {}, "$.faults")
    description = data.get("description") or ""
    if not isinstance(description, str):
        _fail("$.description", "must be a string")
    extra = {k: v for k, v in data.items() if k.startswith(("_", "x-"))}
    return Scenario(company, members, roles, records, faults, description, extra=extra)


def _parse_company(value: Any, path: str) -> dict:
    if value is None:
        _fail(path, "required")
    obj = _obj(value, path)
    company_id = _str(obj, "id", path)
    if not re.fullmatch(r"[A-Za-z0-9_.-]+", company_id):
        _fail(child(path, "id"), "may hold only letters, digits, '_', '.' and '-' (it is a URL segment)")
    codebase = _str(obj, "codebase", path, required=False, default=DEFAULT_CODEBASE)
    if not re.fullmatch(r"[A-Za-z0-9_.-]+/", codebase):
        _fail(
            child(path, "codebase"),
            f"must look like {DEFAULT_CODEBASE!r} (one path segment and a trailing slash)",
        )
    version_code = _str(obj, "versionCode", path, required=False, default=DEFAULT_VERSION_CODE)
    out = dict(obj)
    out.update(
        id=company_id,
        name=_str(obj, "name", path),
        codebase=codebase,
        versionCode=version_code,
        versionNumber=_str(obj, "versionNumber", path, required=False, default=f"{version_code}.0.1"),
        isCloud=_bool(obj, "isCloud", path, True),
        siteUrl=_str(obj, "siteUrl", path, required=False),
        serverTimeZone=_str(obj, "serverTimeZone", path, required=False, default="Eastern Standard Time"),
        cloudRegion=_str(obj, "cloudRegion", path, required=False, default="NA"),
        serverName=_str(obj, "serverName", path, required=False, default="cw-sandbox-01"),
        mySecurityReadable=_bool(obj, "mySecurityReadable", path, True),
    )
    return out


def _identifier_for(name: str) -> str:
    return "".join(ch for ch in name.title() if ch.isalnum())


def parse_roles(value: Any, path: str) -> list[dict]:
    """Security roles as a scenario lists them (``securityRoles``), validated and normalised; ScenarioError names
    the JSON path of the first problem. The sandbox's role control uses it too."""
    return _parse_roles(value, path)


def _parse_roles(value: Any, path: str) -> list[dict]:
    roles: list[dict] = []
    seen: dict[str, int] = {}
    for i, item in enumerate(_list(value, path)):
        p = child(path, i)
        obj = _obj(item, p)
        name = _str(obj, "name", p)
        if name.casefold() in seen:
            _fail(child(p, "name"), f"duplicate role name (also at {child(path, seen[name.casefold()])})")
        seen[name.casefold()] = i
        role_id = obj.get("id", i + 1)
        if not isinstance(role_id, int) or isinstance(role_id, bool):
            _fail(child(p, "id"), "must be an integer")
        settings = []
        functions: dict[tuple[str, str], int] = {}
        for j, row in enumerate(_list(obj.get("settings", []), child(p, "settings"))):
            rp = child(child(p, "settings"), j)
            row = _obj(row, rp)
            module = _str(row, "moduleName", rp)
            function = _str(row, "moduleFunctionName", rp)
            key = (module.casefold(), function.casefold())
            if key in functions:
                _fail(rp, f"{module} > {function} is listed twice (also at [{functions[key]}])")
            functions[key] = j
            clean = dict(row)
            for level in LEVEL_FIELDS:
                v = row.get(level, "None")
                if v not in LEVELS:
                    _fail(child(rp, level), f"must be one of {', '.join(LEVELS)}, not {json.dumps(v)}")
                clean[level] = v
            clean.setdefault("moduleIdentifier", _identifier_for(module))
            clean.setdefault("moduleFunctionIdentifier", _identifier_for(function))
            settings.append(clean)
        items = []
        for j, row in enumerate(_list(obj.get("customizeItems", []), child(p, "customizeItems"))):
            rp = child(child(p, "customizeItems"), j)
            row = _obj(row, rp)
            identifier = _customize_identifier(
                _str(row, "customizeIdentifier", rp), child(rp, "customizeIdentifier")
            )
            _str(row, "itemIdentifier", rp)
            items.append({**row, "customizeIdentifier": identifier})
        role = dict(obj)
        role.update(
            id=role_id,
            name=name,
            settings=settings,
            customizeItems=items,
            mySecurityReadable=_bool(obj, "mySecurityReadable", p, True),
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
        _fail(
            path,
            f"must be one of {', '.join(allowed)} (SPEC MySecurityCustomizeItem), not {json.dumps(value)}",
        )
    return value


def _parse_members(value: Any, path: str, roles: list[dict]) -> list[dict]:
    members: list[dict] = []
    public_keys: dict[str, int] = {}
    role_names = {r["name"].casefold() for r in roles}
    for i, item in enumerate(_list(value, path)):
        p = child(path, i)
        obj = _obj(item, p)
        identifier = _str(obj, "identifier", p)
        public = _str(obj, "publicKey", p)
        _str(obj, "privateKey", p)
        if public in public_keys:
            _fail(child(p, "publicKey"), f"duplicate public key (also at {child(path, public_keys[public])})")
        public_keys[public] = i
        role = _str(obj, "securityRole", p)
        if role.casefold() not in role_names:
            _fail(child(p, "securityRole"), f"no security role named {role!r} in $.securityRoles")
        member = dict(obj)
        member.update(
            id=obj.get("id", i + 1), identifier=identifier, inactiveFlag=_bool(obj, "inactiveFlag", p, False)
        )
        members.append(member)
    return members


def parse_records(value: Any, path: str) -> dict[str, list[dict]]:
    obj = _obj(value, path)
    records: dict[str, list[dict]] = {}
    for key, rows in obj.items():
        spec = RESOURCES.get(key) or RESOURCES.get(key.rstrip("/"))
        if spec is None:
            _fail(child(path, key), f"unknown API path (expected one of {', '.join(RESOURCES)})")
        rp = child(path, key)
        if spec.path in records:
            _fail(rp, f"{spec.path!r} is given twice (with and without the trailing slash)")
        ids: dict[int, int] = {}
        clean: list[dict] = []
        for i, row in enumerate(_list(rows, rp)):
            p = child(rp, i)
            row = _obj(row, p)
            rid = row.get("id")
            if rid is None:
                _fail(child(p, "id"), "required")
            if not isinstance(rid, int) or isinstance(rid, bool) or rid < 1:
                _fail(child(p, "id"), f"must be a positive integer, not {json.dumps(rid)}")
            if rid in ids:
                _fail(child(p, "id"), f"duplicate id {rid} (also at {child(rp, ids[rid])})")
            ids[rid] = i
            for req in spec.scenario_required:
                _required(row, req, p)
            # A record the real API could not return (docs/connectwise/REFERENCE.md, connectwise/contract).
            problems = contract.record_problems(spec.path, row)
            if problems:
                first = problems[0]
                _fail(first.where(p), first.message)
            for name, allowed in spec.enums.items():
                if row.get(name) is not None and row[name] not in allowed:
                    _fail(child(p, name), f"must be one of {', '.join(allowed)}, not {json.dumps(row[name])}")
            for name in spec.refs:
                ref = row.get(name)
                if ref is None:
                    continue
                if not isinstance(ref, dict):
                    _fail(child(p, name), f'must be a reference object like {{"id": 1}}, not {_type(ref)}')
                if not isinstance(ref.get("id"), int) or isinstance(ref.get("id"), bool):
                    _fail(
                        child(child(p, name), "id"), "required" if "id" not in ref else "must be an integer"
                    )
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
            _fail(here, "required")
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
                    _fail(
                        child(p, "id"),
                        f"no record with id {value['id']} in $.records[{json.dumps(ref.target)}]",
                    )
                for copied in ref.copy:
                    if copied not in value and target.get(copied) is not None:
                        value[copied] = target[copied]


def parse_faults(value: Any, path: str = "$.faults") -> dict[str, Any]:
    """Faults, with defaults. Keys (all optional):

    - ``latencyMs``: sleep before every API and discovery answer.
    - ``seed``: the seed of the per-scenario ``random.Random`` that draws one number per API request.
    - ``rates``: probability per request of ``429`` (with ``Retry-After``), ``500``, ``503`` (with ``Retry-After``),
      ``reset`` (connection closed abruptly before the request is handled), ``resetAfter`` (the request is handled,
      a write applied, then the connection is closed without an answer) and ``slow`` (a slow body); their sum
      must not exceed 1.
    - ``slowBodyMs``: how long a slow body takes to trickle out (in 4 chunks). When set without ``rates.slow``,
      every API response is slow.
    - ``retryAfterSeconds``: the ``Retry-After`` value of 429 and 503 (default 1).
    - ``paths``: only requests whose API path starts with one of these prefixes get faults (latency still applies).
    - ``methods``: only requests with one of these HTTP methods get faults (e.g. ``["POST"]`` to hit creates
      but not the look-ups before them).
    - ``queue``: fault kinds forced, in order, on the next API requests before any random draw (e.g.
      ``["429", "reset"]``): exact sequences for retry tests.
    - ``includeDiscovery``: also draw faults for ``/login/companyinfo`` (default false).
    - ``errorBody``: the body of the ``500`` and ``503`` faults instead of the sandbox's own, e.g.
      ``{"code": "ConnectWiseApi", "message": "String was not recognized as a valid Boolean."}`` (how
      ConnectWise answers, on every try, a list whose data it cannot read; issue 11). With ``paths`` and
      ``rates: {"500": 1}`` a path answers that error every time.
    """
    obj = _obj(value, path)
    known = {
        "latencyMs",
        "seed",
        "rates",
        "slowBodyMs",
        "retryAfterSeconds",
        "paths",
        "methods",
        "queue",
        "includeDiscovery",
        "errorBody",
        "company",
    }
    for key in obj:
        if key not in known and not key.startswith("_"):
            _fail(child(path, key), f"unknown key (expected one of {', '.join(sorted(known - {'company'}))})")
    rates_in = _obj(obj.get("rates") or {}, child(path, "rates"))
    rates: dict[str, float] = {}
    for key in rates_in:
        if key not in FAULT_KINDS:
            _fail(
                child(child(path, "rates"), key), f"unknown fault (expected one of {', '.join(FAULT_KINDS)})"
            )
        rates[key] = float(_number(rates_in, key, child(path, "rates"), 0.0, 0.0, 1.0))
    if sum(v for k, v in rates.items()) > 1.0 + 1e-9:
        _fail(child(path, "rates"), "the rates add up to more than 1")
    seed = obj.get("seed", 1)
    if isinstance(seed, bool) or not isinstance(seed, int | str):
        _fail(child(path, "seed"), "must be an integer or a string")
    paths = obj.get("paths")
    if paths is not None:
        for i, prefix in enumerate(_list(paths, child(path, "paths"))):
            if not isinstance(prefix, str):
                _fail(child(child(path, "paths"), i), "must be a string")
        paths = [p.strip("/") for p in paths]
    methods = obj.get("methods")
    if methods is not None:
        methods = [str(m).upper() for m in _list(methods, child(path, "methods"))]
        for i, m in enumerate(methods):
            if m not in {"GET", "POST", "PUT", "PATCH", "DELETE"}:
                _fail(child(child(path, "methods"), i), "must be GET, POST, PUT, PATCH or DELETE")
    queue = []
    for i, kind in enumerate(_list(obj.get("queue") or [], child(path, "queue"))):
        kind = str(kind)
        if kind not in FAULT_KINDS:
            _fail(child(child(path, "queue"), i), f"unknown fault (expected one of {', '.join(FAULT_KINDS)})")
        queue.append(kind)
    slow_ms = _number(obj, "slowBodyMs", path, 0, 0, 600_000)
    if slow_ms and "slow" not in rates:
        rates["slow"] = 1.0 - sum(rates.values())
    for kind in FAULT_KINDS:
        rates.setdefault(kind, 0.0)
    return {
        "latencyMs": _number(obj, "latencyMs", path, 0, 0, 600_000),
        "seed": seed,
        "rates": rates,
        "slowBodyMs": slow_ms,
        "retryAfterSeconds": _number(obj, "retryAfterSeconds", path, 1, 0, 3600),
        "paths": paths,
        "methods": methods,
        "queue": queue,
        "includeDiscovery": _bool(obj, "includeDiscovery", path, False),
        "errorBody": _error_body(obj.get("errorBody"), child(path, "errorBody")),
    }


def _error_body(value: Any, path: str) -> dict[str, str] | None:
    """``{"code": str, "message": str}`` (both required, non-empty), or None when absent."""
    if value is None:
        return None
    obj = _obj(value, path)
    for key in obj:
        if key not in ("code", "message"):
            _fail(child(path, key), "unknown key (expected code, message)")
    for key in ("code", "message"):
        if not isinstance(obj.get(key), str) or not obj[key].strip():
            _fail(child(path, key), "must be a non-empty string")
    return {"code": obj["code"], "message": obj["message"]}


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
