"""Reads: resource matching, ``conditions`` / ``childConditions`` / ``customFieldConditions`` filtering, ``orderBy``,
``fields`` projection, paging with ``Link`` headers and ``/count`` (docs/connectwise/REFERENCE.md §4).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable
from typing import Any
from urllib.parse import unquote

from connectwise import contract

from .condition_eval import compile_conditions, path_getter
from .conditions import ConditionError, fields_of, parse_datetime
from .conditions import parse as parse_conditions
from .resources import (
    RESOURCES,
    ResourceSpec,
)
from .store import Table, Tenant
from .wire import DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE, Request, Response, bad_request, resource_name


# ------------------------------------------------------------------------------------------------- helpers
def match_resource(lower: list[str]) -> tuple[ResourceSpec | None, list[str]]:
    """The resource a lower-cased API path names (the longest matching resource path) and the path segments after it;
    ``(None, [])`` when none matches."""
    best: tuple[ResourceSpec | None, list[str]] = (None, [])
    best_len = 0
    for spec in RESOURCES.values():
        segs = _SEGMENTS[spec.path]
        n = len(segs)
        if n > best_len and lower[:n] == segs:
            best, best_len = (spec, lower[n:]), n
    return best


_SEGMENTS = {path: path.lower().split("/") for path in RESOURCES}


def _snapshot(tenant: Tenant, table: Table) -> list[dict]:
    with tenant.lock:
        return list(table.rows.values())


def table_view(request: Request, tenant: Tenant, table: Table) -> list[dict]:
    """The table's rows that match the request's conditions, computed once per query and table version (the
    same list serves /count and every page of it)."""
    order = request.query.get("orderby") or ""
    key = (
        request.query.get("conditions") or "",
        request.query.get("childconditions") or "",
        request.query.get("customfieldconditions") or "",
        order,
    )

    def compute(rows: list[dict]) -> list[dict]:
        rows = filter_rows(request, table.known_fields, rows, table.spec)
        return order_rows(rows, order, table.known_fields, table.spec) if order else rows

    return table.view(key, compute, tenant.lock)


def filter_rows(
    request: Request, known: Iterable[str], rows: list[dict], spec: ResourceSpec | None
) -> list[dict]:
    """The rows matching ``conditions``, ``childConditions`` and ``customFieldConditions`` (docs/connectwise/REFERENCE.md §4).

    For a table, the fields a condition may name are the contract's (``contract.condition_fields``: every
    non-array field of the SPEC schema and a reference's sub-fields). ``childConditions`` and
    ``customFieldConditions`` filter the collections records carry (``types``, ``customFields``) and are refused
    with a 400 naming the parameter where the resource has none: never ignored, since answering more than was
    asked is the worst failure for a check."""
    for param, label in (("conditions", "conditions"), ("childconditions", "childConditions")):
        text = request.query.get(param)
        if text and text.strip():
            rows = _apply_conditions(rows, text, label, known, spec)
    text = request.query.get("customfieldconditions")
    if text and text.strip():
        rows = _apply_conditions(rows, text, "customFieldConditions", known, spec)
    return rows


def _apply_conditions(
    rows: list[dict], text: str, label: str, known: Iterable[str], spec: ResourceSpec | None
) -> list[dict]:
    try:
        if label == "conditions":
            if spec is not None:
                _check_condition_fields(text, spec.schema)
                known = spec.fields
            predicate = compile_conditions(text, known)
        elif label == "childConditions":
            predicate = _child_predicate(text, spec)
        else:
            predicate = _custom_field_predicate(text, spec)
    except ConditionError as exc:
        raise bad_request(f"{label}: {exc}", label, "InvalidConditions", resource_name(spec)) from None
    return [r for r in rows if predicate(r)]


def _check_condition_fields(text: str, schema: str) -> None:
    for name in fields_of(parse_conditions(text)):
        if not contract.condition_field_allowed(schema, name):
            raise ConditionError(f"Unknown field '{name}'")


def _child_predicate(text: str, spec: ResourceSpec | None):
    """``childConditions=types/id=99``: a record matches when one element of the named collection does. One
    collection per query (assumption: docs/connectwise/REFERENCE.md §4 says no more)."""
    collections = contract.collections(spec.schema) if spec is not None else {}
    collections = {k: v for k, v in collections.items() if k != "customFields"}
    if not collections:
        raise ConditionError("this resource has no child collections to filter")
    heads = {name.split("/")[0].lower() for name in fields_of(parse_conditions(text))}
    canonical = {k.lower(): k for k in collections}
    unknown = sorted(h for h in heads if h not in canonical)
    if unknown:
        raise ConditionError(
            f"Unknown collection '{unknown[0]}' (this resource has {', '.join(sorted(collections))})"
        )
    if len(heads) != 1:
        raise ConditionError("name one collection at a time")
    collection = canonical[heads.pop()]
    item_schema = collections[collection]
    for name in fields_of(parse_conditions(text)):
        sub = name.split("/", 1)[1] if "/" in name else ""
        if not sub or not contract.condition_field_allowed(item_schema, sub):
            raise ConditionError(f"Unknown field '{name}'")
    inner = compile_conditions(text)

    def test(record: dict) -> bool:
        items = record.get(collection) or []
        return any(inner({collection: item}) for item in items if isinstance(item, dict))

    return test


def _custom_field_predicate(text: str, spec: ResourceSpec | None):
    """``customFieldConditions=caption="Billing ID" and value="42"``: a record matches when one of its
    ``customFields`` entries does (fields of the SPEC's CustomFieldValue)."""
    if spec is None or "customFields" not in contract.collections(spec.schema):
        raise ConditionError("this resource has no custom fields")
    for name in fields_of(parse_conditions(text)):
        if not contract.condition_field_allowed("CustomFieldValue", name):
            raise ConditionError(f"Unknown field '{name}'")
    inner = compile_conditions(text, contract.top_level_fields("CustomFieldValue"))

    def test(record: dict) -> bool:
        return any(inner(item) for item in record.get("customFields") or [] if isinstance(item, dict))

    return test


def _int_param(query: dict, key: str, default: int, spec: ResourceSpec | None) -> int:
    value = query.get(key)
    if value is None or value == "":
        return default
    try:
        return int(value)
    except ValueError:
        name = {"pagesize": "pageSize", "pageid": "pageId"}.get(key, key)
        raise bad_request(
            f"{name} must be a whole number.", name, "InvalidValue", resource_name(spec)
        ) from None


def _id_key(record: dict) -> int:
    return record["id"]


def _sort_key(getter: Callable[[dict], Any]) -> Callable[[dict], tuple]:
    def key(record: dict) -> tuple:
        value = getter(record)
        if value is None:
            return (0, 0)  # SQL Server sorts NULL first in ascending order
        if isinstance(value, bool | int | float):
            return (1, value)
        if isinstance(value, str):
            when = parse_datetime(value) if len(value) >= 10 and value[4:5] == "-" else None
            return (2, when) if when is not None else (3, value.casefold())
        return (4, json.dumps(value, sort_keys=True))

    return key


def order_rows(rows: list[dict], order: str, known: Iterable[str], spec: ResourceSpec | None) -> list[dict]:
    """``rows`` sorted by an ``orderBy`` text (``"name asc, id desc"``, fields of ``known``, docs/connectwise/REFERENCE.md
    §4); raises a 400 ApiError (InvalidValue / InvalidField) like ConnectWise."""
    canonical = {k.lower(): k for k in known}
    keys = []
    for item in order.split(","):
        words = item.split()
        if not words:
            continue
        if len(words) > 2 or (len(words) == 2 and words[1].lower() not in ("asc", "desc")):
            raise bad_request(
                f"orderBy: cannot read {item.strip()!r}.", "orderBy", "InvalidValue", resource_name(spec)
            )
        parts = words[0].split("/")
        head = canonical.get(parts[0].lower())
        if head is None:
            raise bad_request(
                f"orderBy: Unknown field '{words[0]}'.", "orderBy", "InvalidField", resource_name(spec)
            )
        parts[0] = head
        keys.append((_sort_key(path_getter("/".join(parts))), len(words) == 2 and words[1].lower() == "desc"))
    if [(w.split()[0].lower(), w.split()[1:]) for w in order.split(",") if w.strip()] in (
        [("id", [])],
        [("id", ["asc"])],
    ):
        return rows  # tables and system lists are kept in id order already
    out = list(rows)
    for key, desc in reversed(keys):  # stable sorts, least significant key first
        out.sort(key=key, reverse=desc)
    return out


def _projector(fields: str, known: Iterable[str]) -> Callable[[dict], dict]:
    """``fields=id,name,status/id`` -> a function returning only those (nested) fields of a record."""
    canonical = {k.lower(): k for k in known}
    tree: dict[str, Any] = {}
    for item in fields.split(","):
        parts = [p.strip() for p in item.strip().split("/") if p.strip()]
        if not parts:
            continue
        parts[0] = canonical.get(parts[0].lower(), parts[0])
        node = tree
        for i, p in enumerate(parts):
            if i == len(parts) - 1:
                node[p] = None
            else:
                sub = node.get(p)
                if sub is None and p in node:
                    break  # the whole field is already selected
                node = node.setdefault(p, {})

    def pick(value: dict, node: dict) -> dict:
        out = {}
        for key, sub in node.items():
            if key not in value:
                continue
            v = value[key]
            if sub is None:
                out[key] = v
            elif isinstance(v, dict):
                out[key] = pick(v, sub)
            elif v is None:
                out[key] = None
        return out

    return lambda record: pick(record, tree)


def project_record(record: dict, fields: str | None, known: Iterable[str]) -> dict:
    """``record`` cut down to the ``fields`` parameter (``"id,name,company/id"``), or whole without one."""
    return _projector(fields, known)(record) if fields else record


def _link(request: Request, drop: str, name: str, value: int) -> str:
    """The request's URL with its other parameters first, as sent, and ``name=value`` last (docs/connectwise/REFERENCE.md §4)."""
    kept = [
        part
        for part in request.query_string.split("&")
        if part and unquote(part.split("=", 1)[0]).lower() not in (drop, "page", "pageid")
    ]
    kept.append(f"{name}={value}")
    return f"{request.url_base()}?{'&'.join(kept)}"


class ListingMixin:
    """The ``SandboxApp`` methods of this module (mixed into ``app.SandboxApp``)."""

    # ------------------------------------------------------------------------------------------- listing
    def _list(
        self,
        request: Request,
        known: Iterable[str],
        rows: list[dict],
        spec: ResourceSpec | None,
        *,
        filtered: bool = False,
    ) -> Response:
        query = request.query
        page_size = _int_param(query, "pagesize", DEFAULT_PAGE_SIZE, spec)
        if page_size < 1 or page_size > MAX_PAGE_SIZE:
            raise bad_request(
                f"pageSize must be between 1 and {MAX_PAGE_SIZE}.",
                "pageSize",
                "OutOfRange",
                resource_name(spec),
            )
        if not filtered:
            rows = filter_rows(request, known, rows, spec)
        forward = (request.header("pagination-type") or "").lower() == "forward-only"
        links: list[tuple[str, str]] = []
        if forward:
            # docs/connectwise/REFERENCE.md §4: forward-only paging walks by id; pageId acts as "id > pageId".
            after = _int_param(query, "pageid", 0, spec)
            rows = sorted((r for r in rows if isinstance(r.get("id"), int) and r["id"] > after), key=_id_key)
            page_rows = rows[:page_size]
            if len(rows) > page_size:
                links.append(("next", _link(request, "pageid", "pageId", page_rows[-1]["id"])))
        else:
            page = _int_param(query, "page", 1, spec)
            if page < 1:
                raise bad_request("page must be 1 or more.", "page", "OutOfRange", resource_name(spec))
            order = query.get("orderby")
            if order and not filtered:  # a table view is already ordered
                rows = order_rows(rows, order, known, spec)
            last = max(1, -(-len(rows) // page_size))
            start = (page - 1) * page_size
            page_rows = rows[start : start + page_size]
            if page > 1:
                links.append(("first", _link(request, "page", "page", 1)))
                links.append(("prev", _link(request, "page", "page", page - 1)))
            if page < last:
                links.append(("next", _link(request, "page", "page", page + 1)))
                links.append(("last", _link(request, "page", "page", last)))
        fields = query.get("fields") or None
        project = _projector(fields, known) if fields else None
        headers = {"Link": ", ".join(f'<{url}>; rel="{rel}"' for rel, url in links)} if links else {}
        if spec is not None:
            # Table records are copy-on-write, so each one's JSON can be cached per fields selection: pages of
            # 1000 records then cost a join instead of an encode (many pages are served concurrently).
            return Response(
                200, headers=headers, raw=request.tenant.encode_rows(spec.path, page_rows, fields, project)
            )
        if project:
            page_rows = [project(r) for r in page_rows]
        return Response(200, page_rows, headers)

    def _list_or_count(self, request: Request, rows: list[dict], count: bool) -> Response:
        known = set().union(*(r.keys() for r in rows)) if rows else {"id"}
        if count:
            return Response(200, {"count": len(filter_rows(request, known, rows, None))})
        return self._list(request, known, rows, None)
