"""Agreement additions: a nested resource, ``finance/agreements/{parentId}/additions`` (SPEC tag AgreementAdditions).

The SPEC has no cross-agreement endpoint for additions: list, ``/count``, create, and one addition by id (GET,
PUT, PATCH, DELETE) all live under one agreement. Scenarios keep every addition in one flat collection,
``records["finance/agreements/additions"]``, each record carrying its ``agreementId`` (a SPEC field of
``Addition``); the sandbox serves an agreement's share of it under the agreement's path. There is no flat
``finance/agreements/additions`` route: ConnectWise would read "additions" as an agreement id.

Guard: Finance > Agreements (PRODUCT.md, "Which security module function guards which path": ``finance/*``), and
writes also need the parent agreement's type in the role's Agreements "Access Allowed" list, as agreement writes do.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

from .conditions import parse_datetime
from .guard import is_owned, own_rows
from .listing import filter_rows, order_rows, project_record
from .resources import ADDITIONS
from .resources import ADDITIONS_PATH as PATH
from .wire import ApiError, Response, bad_request, invalid_error, not_allowed, not_found, parse_record_id
from .writes import apply_defaults, apply_patch, check_body, validate_record

if TYPE_CHECKING:
    from .app import SandboxApp
    from .wire import Request


def route(app: SandboxApp, request: Request, lower: list[str]) -> Response | None:
    """The answer for ``finance/agreements/{id}/additions[...]``; None when the path is not an additions path."""
    if lower[:2] != ["finance", "agreements"] or len(lower) < 3:
        return None
    if lower[2] == "additions":  # no cross-agreement endpoint in the SPEC
        raise ApiError(
            404, "NotFound", "No resource at finance/agreements/additions: use /{parentId}/additions."
        )
    if len(lower) < 4 or lower[3] != "additions":
        return None
    tenant = request.tenant
    parent_id = parse_record_id(lower[2], None)
    method = request.method
    level = app._guard(
        request, ADDITIONS, method if method in ("GET", "POST", "PUT", "PATCH", "DELETE") else "GET"
    )
    parent = tenant.tables["finance/agreements"].rows.get(parent_id)
    if parent is None:
        raise ApiError(404, "NotFound", f"Agreement with id {parent_id} not found.")
    table = tenant.tables[PATH]
    tail = lower[4:]
    if not tail:
        if method == "GET":
            rows = own_rows(request, level, _view(request, tenant, table, parent_id))
            return app._list(request, table.known_fields, rows, ADDITIONS, filtered=True)
        if method == "POST":
            app._guard_agreement_type(request, parent)
            return _create(request, table, parent_id)
        raise not_allowed("GET, POST")
    if tail == ["count"]:
        if method != "GET":
            raise not_allowed("GET")
        return Response(
            200, {"count": len(own_rows(request, level, _view(request, tenant, table, parent_id)))}
        )
    if len(tail) == 1:
        return _one(app, request, table, parent, parse_record_id(tail[0], ADDITIONS), level)
    raise ApiError(404, "NotFound", f"No resource at {request.rest}.")


def _view(request: Request, tenant, table, parent_id: int) -> list[dict]:
    order = request.query.get("orderby") or ""
    key = ("additions", parent_id, request.query.get("conditions") or "", order)

    def compute(rows: list[dict]) -> list[dict]:
        rows = [r for r in rows if r.get("agreementId") == parent_id]
        rows = filter_rows(request, table.known_fields, rows, ADDITIONS)
        return order_rows(rows, order, table.known_fields, ADDITIONS) if order else rows

    return table.view(key, compute, tenant.lock)


def _create(request: Request, table, parent_id: int) -> Response:
    body = request.body_json()
    if not isinstance(body, dict):
        raise bad_request("Addition must be a JSON object.")
    body = check_body(ADDITIONS, "POST", body)
    tenant = request.tenant
    with tenant.lock:
        record: dict[str, Any] = {k: v for k, v in body.items() if k not in ("id", "_info")}
        record["agreementId"] = parent_id  # the path decides the agreement
        validate_record(tenant, ADDITIONS, record, creating=True)
        _check_dates(record)
        apply_defaults(tenant, ADDITIONS, record)
        # who entered it: what makes it one of the member's "my" records (docs/connectwise/REFERENCE.md §2)
        record["_info"] = {
            "enteredBy": (request.member or {}).get("identifier", ""),
            "dateEntered": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        }
        record = table.insert(record)
    return Response(201, record, {"Location": f"{request.url_base().rstrip('/')}/{record['id']}"})


def _one(app: SandboxApp, request: Request, table, parent: dict, addition_id: int, level: str) -> Response:
    tenant = request.tenant
    method = request.method
    current = table.rows.get(addition_id)
    if current is None or current.get("agreementId") != parent["id"]:
        raise not_found(ADDITIONS, addition_id)
    if level == "My" and not is_owned(request, current):
        if method == "GET":
            raise not_found(ADDITIONS, addition_id)  # not one of "my" records: invisible (as app._route)
        raise ApiError(
            403,
            "Forbidden",
            "You do not have permission to perform this action: Finance > Agreements level is My and this "
            "record is not yours.",
        )
    if method == "GET":
        return Response(200, project_record(current, request.query.get("fields"), table.known_fields))
    if method not in ("PUT", "PATCH", "DELETE"):
        raise not_allowed("GET, PUT, PATCH, DELETE")
    app._guard_agreement_type(request, parent)
    if method == "DELETE":
        with tenant.lock:
            table.delete(addition_id)
        return Response(204)
    body = request.body_json()
    if method == "PATCH" or isinstance(body, dict):
        body = check_body(ADDITIONS, method, body)
    with tenant.lock:
        current = table.rows.get(addition_id)
        if current is None:
            raise not_found(ADDITIONS, addition_id)
        if method == "PATCH":
            record = apply_patch(tenant, ADDITIONS, current, body)
            validate_record(tenant, ADDITIONS, record, creating=False)
        else:
            if not isinstance(body, dict):
                raise bad_request("Addition must be a JSON object.")
            record = {k: v for k, v in body.items() if k not in ("id", "_info")}
            validate_record(tenant, ADDITIONS, record, creating=True)
            record["id"] = addition_id
        _check_dates(record)
        record["agreementId"] = parent["id"]  # an addition never moves to another agreement
        table.replace(record)
    return Response(200, record)


def _check_dates(record: dict) -> None:
    """``effectiveDate`` and ``cancelledDate`` are SPEC ``date-time`` strings (or null)."""

    for name in ("effectiveDate", "cancelledDate"):
        value = record.get(name)
        if value is None:
            continue
        if not isinstance(value, str) or parse_datetime(value) is None:
            raise invalid_error(
                ADDITIONS,
                [
                    {
                        "code": "InvalidField",
                        "message": f"{name} must be a date-time like 2026-12-31T00:00:00Z.",
                        "resource": ADDITIONS.resource,
                        "field": name,
                    }
                ],
            )
