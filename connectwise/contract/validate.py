"""Validation against the contract: how a record, a request body or an answer differs from what the API has.

Every function returns ``list[Problem]`` (empty when the value conforms). It uses the ``jsonschema`` library
(Draft 7, the dialect the SPEC's OpenAPI 3.0 schemas are closest to) on "closed" copies of the schemas: an object
may carry only the properties its schema lists, because the API serialises its own model and never adds fields.
A compiled yes/no checker runs first; jsonschema only describes the problems of a value that fails it.
"""

from __future__ import annotations

import copy
import json
import re
from dataclasses import dataclass
from functools import cache
from typing import Any

from jsonschema import Draft7Validator

from .spec import document, resource, resources, schema, system_paths


@dataclass(frozen=True)
class Problem:
    """One way a value breaks the contract.

    ``path``: the JSON path inside the checked value as a list of keys and indexes (``["company", "id"]``);
    ``kind``: the failed JSON Schema keyword (``type``, ``required``, ``enum``, ``maxLength``,
    ``additionalProperties``, ...); ``message``: plain words; ``expected``: for ``type``, the schema the value
    should have converted to (``CompanyReference``, ``Boolean``, ...).
    """

    path: tuple[Any, ...]
    kind: str
    message: str
    expected: str = ""
    value: Any = None  # the offending value, for ``type`` problems

    def where(self, root: str = "$") -> str:
        """The JSON path as text: ``$.company.id``, ``$[3].name``."""
        out = root
        for part in self.path:
            out += f"[{part}]" if isinstance(part, int) else f".{part}"
        return out


BODY, RECORD, PARTIAL = "body", "record", "partial"


def _closed(node: Any, *, mode: str) -> Any:
    """A copy where every object schema with properties refuses other properties. ``required`` by ``mode``:
    BODY keeps the SPEC's list; RECORD keeps its non-reference fields (assumption: a reference required on
    create, such as an agreement's contact, can be absent from an answer once the record it pointed to is
    gone); PARTIAL (an answer narrowed with ``fields=``) drops it."""
    if isinstance(node, list):
        return [_closed(n, mode=mode) for n in node]
    if not isinstance(node, dict):
        return node
    out = {k: _closed(v, mode=mode) for k, v in node.items() if not k.startswith("x-")}
    if "properties" in out:
        out.setdefault("type", "object")
        out.setdefault("additionalProperties", False)
    if mode == PARTIAL:
        out.pop("required", None)
    elif mode == RECORD and "required" in out:
        props = out.get("properties", {})
        out["required"] = [r for r in out["required"] if "$ref" not in props.get(r, {})]
    return out


@cache
def _root(mode: str) -> dict:
    schemas = copy.deepcopy(document()["components"]["schemas"])
    return {"components": {"schemas": _closed(schemas, mode=mode)}}


@cache
def _validator(shape: str, mode: str) -> Draft7Validator:
    """``shape`` is a schema name, ``[Name]`` for an array of it."""
    root = dict(_root(mode))
    if shape.startswith("["):
        root.update(type="array", items={"$ref": f"#/components/schemas/{shape[1:-1]}"})
    else:
        root["$ref"] = f"#/components/schemas/{shape}"
    return Draft7Validator(root)


_PRIMITIVE = {"boolean": "Boolean", "integer": "Int32", "number": "Decimal", "string": "String"}


def _expected(error, root: dict) -> str:
    """What a value of the wrong JSON type should have been, in .NET's words (what ConnectWise reports): the
    name of the object schema (the last ``$ref`` on the way down) or the primitive type."""
    types = error.schema.get("type")
    if isinstance(types, list):
        types = next((t for t in types if t != "null"), "")
    if types == "object":
        return _last_ref(error, root) or "Object"
    if types == "array":
        return "List"
    return _PRIMITIVE.get(types, "Object")


def _last_ref(error, root: dict) -> str | None:
    """The schema name of the object that failed: walk the schema path, following each ``$ref`` on the way
    (jsonschema's paths leave the ``$ref`` steps out)."""
    schemas = root["components"]["schemas"]
    node: Any = root
    name = None

    def deref(node: Any) -> Any:
        nonlocal name
        while isinstance(node, dict) and "$ref" in node:
            name = str(node["$ref"]).rsplit("/", 1)[-1]
            node = schemas.get(name, {})
        return node

    for part in list(error.absolute_schema_path)[:-1]:  # the last step is the failed keyword
        node = deref(node)
        try:
            node = node[part]
        except (KeyError, IndexError, TypeError):
            return name
    deref(node)
    return name


_PY_TYPES = {
    "integer": (int,),
    "number": (int, float),
    "string": (str,),
    "boolean": (bool,),
    "object": (dict,),
    "array": (list,),
    "null": (type(None),),
}


def _checker(node: dict, schemas: dict, memo: dict) -> Any:
    """Compile a closed schema into a fast yes/no function (the keywords the contract uses). Large scenarios
    hold tens of thousands of records; jsonschema runs only when this says no, to describe the problems."""
    while "$ref" in node:
        name = node["$ref"].rsplit("/", 1)[-1]
        if name in memo:
            return lambda v, _n=name: memo[_n](v)
        memo[name] = None  # placeholder against recursion
        memo[name] = _checker(schemas[name], schemas, memo)
        return memo[name]
    types = node.get("type")
    if isinstance(types, str):
        types = (types,)
    allowed = tuple(t for name in types or () for t in _PY_TYPES[name])
    bool_ok = types is None or "boolean" in types
    enum = node.get("enum")
    max_length = node.get("maxLength")
    props = {k: _checker(v, schemas, memo) for k, v in (node.get("properties") or {}).items()}
    extra = node.get("additionalProperties", True)
    extra_check = _checker(extra, schemas, memo) if isinstance(extra, dict) else None
    required = tuple(node.get("required", ()))
    items = _checker(node["items"], schemas, memo) if "items" in node else None

    def check(value: Any) -> bool:
        if types is not None and (
            not isinstance(value, allowed) or (value is True or value is False) and not bool_ok
        ):
            return False
        if enum is not None and value not in enum:
            return False
        if max_length is not None and isinstance(value, str) and len(value) > max_length:
            return False
        if isinstance(value, dict):
            for name in required:
                if name not in value:
                    return False
            for key, item in value.items():
                sub = props.get(key)
                if sub is None:
                    if extra is False or (extra_check is not None and not extra_check(item)):
                        return False
                elif not sub(item):
                    return False
        elif items is not None and isinstance(value, list):
            return all(items(item) for item in value)
        return True

    return check


@cache
def _fast(shape: str, mode: str) -> Any:
    validator = _validator(shape, mode)
    return _checker(validator.schema, validator.schema["components"]["schemas"], {})


def _problems(shape: str, value: Any, mode: str) -> list[Problem]:
    out = []
    validator = _validator(shape, mode)
    if _fast(shape, mode)(value):
        return out
    for err in validator.iter_errors(value):
        kind = str(err.validator)
        if kind == "additionalProperties":
            extra = sorted(set(err.instance) - set(err.schema.get("properties", {})))
            for name in extra:
                out.append(
                    Problem(
                        tuple(err.absolute_path) + (name,),
                        kind,
                        f"unknown field {name!r}: the API has no such field here",
                    )
                )
            continue
        if kind == "required":
            missing = re.findall(r"'([^']+)' is a required property", err.message)
            name = missing[0] if missing else ""
            out.append(Problem(tuple(err.absolute_path) + ((name,) if name else ()), kind, "required"))
            continue
        if kind == "type":
            expected = _expected(err, validator.schema)
            out.append(
                Problem(
                    tuple(err.absolute_path),
                    kind,
                    f"must be {_a(expected)}, not {_json_type(err.instance)}",
                    expected,
                    err.instance,
                )
            )
            continue
        if kind == "enum":
            allowed = ", ".join(str(v) for v in err.validator_value if v is not None)
            out.append(
                Problem(
                    tuple(err.absolute_path),
                    kind,
                    f"must be one of {allowed}, not {json.dumps(err.instance)}",
                )
            )
            continue
        if kind == "maxLength":
            out.append(
                Problem(
                    tuple(err.absolute_path),
                    kind,
                    f"is {len(err.instance)} characters long; the API allows at most {err.validator_value}",
                )
            )
            continue
        out.append(Problem(tuple(err.absolute_path), kind, err.message))
    out.sort(key=lambda p: [str(x) for x in p.path])
    return out


def _a(expected: str) -> str:
    article = "an" if expected[:1].lower() in "aeiou" else "a"
    return f"{article} {expected}"


def _json_type(value: Any) -> str:
    if value is None:
        return "null"
    return {bool: "a boolean", int: "a number", float: "a number", str: "a string", list: "an array"}.get(
        type(value), "an object"
    )


def record_problems(path: str, record: Any, *, full: bool = True) -> list[Problem]:
    """How ``record`` differs from what the API returns for ``path``. ``full``: a whole record (its required
    fields present); False for an answer narrowed with ``fields=``. Empty when it conforms."""
    return _problems(resource(path).schema, record, RECORD if full else PARTIAL)


def record_problems_of(schema_name: str, record: Any) -> list[Problem]:
    """``record_problems`` for a schema that is not a resource path (``MySecurityCustomizeItem``)."""
    return _problems(schema_name, record, RECORD)


def body_problems(method: str, path: str, body: Any) -> list[Problem]:
    """How a request body for ``METHOD path`` breaks the contract: POST/PUT take the resource's schema with its
    required fields, PATCH an array of PatchOperation whose paths name fields of the resource."""
    res = resource(path)
    method = method.upper()
    if method == "PATCH":
        problems = _problems("[PatchOperation]", body, BODY)
        if problems or not isinstance(body, list):
            return problems
        for i, op in enumerate(body):
            field = str(op.get("path", "")).strip("/").split("/")[0]
            if field.lower() not in {p.lower() for p in res.properties}:
                problems.append(Problem((i, "path"), "enum", f"unknown field {field!r} for {res.schema}"))
                continue
            value_problems = patch_value_problems(res.schema, op["path"], op.get("value"))
            problems.extend(
                Problem((i, "value", *p.path), p.kind, p.message, p.expected, p.value) for p in value_problems
            )
        return problems
    # POST and PUT: the record minus what the server fills in itself
    return _problems(res.schema, body, BODY)


def patch_value_problems(schema_name: str, op_path: str, value: Any) -> list[Problem]:
    """Whether ``value`` fits the field ``op_path`` names (``inactiveFlag``, ``billingCycle``,
    ``billingCycle/id``). The SPEC types ``PatchOperation.value`` as ``object`` (any JSON, assumption in
    docs/connectwise/REFERENCE.md §5); we check it against the field it replaces."""
    parts = [p for p in op_path.strip("/").split("/") if p]
    props = schema(schema_name).get("properties", {})
    canonical = {k.lower(): k for k in props}
    head = canonical.get(parts[0].lower()) if parts else None
    if head is None:
        return [Problem((), "enum", f"unknown field {op_path!r}")]
    wrapper = {head: value} if len(parts) == 1 else {head: {parts[1]: value}}
    return [
        Problem(p.path[1:] if len(parts) == 1 else p.path[2:], p.kind, p.message, p.expected, p.value)
        for p in _problems(schema_name, wrapper, PARTIAL)
    ]


def answer_problems(
    method: str, api_path: str, status: int, body: Any, *, fields: str | None = None
) -> list[Problem]:
    """How one answer of the API (or the sandbox) breaks the contract. ``api_path`` is the concrete path after
    ``apis/3.0/`` (``finance/agreements/12``) or ``login/companyinfo/x``; ``fields`` the request's ``fields=``."""
    if status >= 400:
        return _problems("ErrorResponse", body, BODY)
    if status == 204:
        return [] if body in (None, b"", "") else [Problem((), "type", "a 204 answer has no body")]
    shape, full = answer_shape(method, api_path)
    return _problems(shape, body, RECORD if full and not fields else PARTIAL)


def answer_shape(method: str, api_path: str) -> tuple[str, bool]:
    """The schema an answer to ``METHOD api_path`` has (``[Name]`` for a list) and whether records are full."""
    path = api_path.strip("/")
    low = path.lower()
    if low.startswith("login/companyinfo/"):
        return "CompanyInfo", True
    for sys_path, entry in system_paths().items():
        if low == sys_path.lower():
            resp = entry["response"]
            return (f"[{resp['array']}]" if isinstance(resp, dict) else resp), True
        if low == sys_path.lower() + "/count":
            return "Count", True
    parts = path.split("/")
    for res in resources().values():  # nested resources: finance/agreements/{parentId}/additions
        template = res.api_path.lower().split("/") if res.api_path else None
        if (
            template
            and len(parts) >= len(template)
            and all(
                t == p.lower() or (t.startswith("{") and p.isdigit())
                for t, p in zip(template, parts, strict=False)
            )
        ):
            tail = parts[len(template) :]
            if not tail:
                return (f"[{res.schema}]" if method.upper() == "GET" else res.schema), True
            return ("Count" if tail == ["count"] else res.schema), True
    for n in range(len(parts), 0, -1):
        head = "/".join(parts[:n]).lower()
        match = next((r for p, r in resources().items() if p.lower() == head), None)
        if match is None:
            continue
        tail = parts[n:]
        if not tail:
            return (f"[{match.schema}]" if method.upper() == "GET" else match.schema), True
        if tail == ["count"]:
            return "Count", True
        return match.schema, True
    raise KeyError(f"{method} {api_path} is not in the contract")
