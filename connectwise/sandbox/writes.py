"""Writes: POST/PUT/PATCH/DELETE of records, validated as ConnectWise does (create-required fields, types, lengths,
references that exist, uniqueness, defaults; error shapes of docs/connectwise/REFERENCE.md §6).
"""

from __future__ import annotations

import json
import time
from typing import Any

from connectwise import contract

from .resources import (
    RESOURCES,
    ResourceSpec,
    get_path,
)
from .store import Table, Tenant
from .wire import ApiError, Request, Response, bad_request, field_error, invalid_error, not_found


def check_body(spec: ResourceSpec, method: str, body: Any) -> Any:
    """The request body against the contract (the SPEC schema of the resource), before anything is applied.

    A JSON value of the wrong type fails where ConnectWise's JSON reader fails, with its top-level shape and no
    ``errors`` array (issue 11; docs/connectwise/REFERENCE.md §6): ``{"code": "ConnectWiseApi", "message": "Error converting value 1
    to type 'CompanyReference'. Path 'company'..."}``. Fields the SPEC does not have are dropped, as .NET's
    reader ignores unknown members (assumption, not confirmed). Too long, or not one of an enum's values:
    ``InvalidObject`` with the field named. Returns the body without the unknown fields."""
    problems = contract.body_problems(method, spec.path, body)
    for problem in problems:
        if problem.kind == "type":
            raise ApiError(400, "ConnectWiseApi", _conversion_message(problem))
    if method != "PATCH" and isinstance(body, dict):
        unknown = {p.path[0] for p in problems if p.kind == "additionalProperties" and len(p.path) == 1}
        body = {k: v for k, v in body.items() if k not in unknown}
    errors = [
        field_error(
            spec,
            "InvalidField",
            ".".join(str(x) for x in problem.path if not isinstance(x, int)) or "body",
            f"{'.'.join(str(x) for x in problem.path)} {problem.message}",
        )
        for problem in problems
        if problem.kind in ("maxLength", "enum", "minimum", "maximum", "format")
    ]
    if errors:
        raise invalid_error(spec, errors)
    return body


def _conversion_message(problem: contract.Problem) -> str:
    """Json.NET's words for a value it cannot convert, which ConnectWise answers verbatim (issue 11:
    ``Error converting value 1 to type '...CompanyReference'. Path 'company', line 1, position 13.``; the
    namespace and position are left out)."""
    where = "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in problem.path).lstrip(".")
    value = json.dumps(problem.value, separators=(",", ":"))
    return f"Error converting value {value} to type '{problem.expected}'. Path '{where}'."


def validate_record(tenant: Tenant, spec: ResourceSpec, record: dict, creating: bool) -> None:
    """Required fields (on create and PUT), enum values, and references resolved with their names filled in."""
    errors: list[dict] = []
    if creating:
        for req in spec.required:
            if get_path(record, req) in (None, ""):
                field = req.split("/")[0]
                errors.append(field_error(spec, "MissingRequiredField", field, f"{field} is required."))
    for field, allowed in spec.enums.items():
        value = record.get(field)
        if value is not None and value not in allowed:
            errors.append(
                field_error(spec, "InvalidField", field, f"{field} must be one of {', '.join(allowed)}.")
            )
    for field, ref in spec.refs.items():
        value = record.get(field)
        if value is None:
            continue
        if (
            not isinstance(value, dict)
            or not isinstance(value.get("id"), int)
            or isinstance(value.get("id"), bool)
        ):
            errors.append(
                field_error(spec, "InvalidField", field, f'{field} must be a reference like {{"id": 1}}.')
            )
            continue
        target = tenant.tables[ref.target].rows.get(value["id"])
        if target is None:
            errors.append(
                field_error(spec, "InvalidField", field, f"{field} with id {value['id']} was not found.")
            )
            continue
        record[field] = _reference(target, ref.copy)
    if errors:
        raise invalid_error(spec, errors)


def _check_agreement_contact(tenant: Tenant, spec: ResourceSpec, record: dict) -> None:
    """A new agreement's contact must be one of its company's contacts, as the agreement screen offers them.
    Assumption (no public source states ConnectWise's answer): refused like another invalid field."""
    contact = tenant.tables["company/contacts"].rows.get(get_path(record, "contact/id")) or {}
    owner = get_path(contact, "company/id")
    if owner is not None and owner != get_path(record, "company/id"):
        raise invalid_error(
            spec,
            [
                field_error(
                    spec,
                    "InvalidField",
                    "contact",
                    f"contact with id {contact.get('id')} is not a contact of company "
                    f"{get_path(record, 'company/id')}.",
                )
            ],
        )


def _reference(target: dict, copy_fields: tuple[str, ...]) -> dict:
    ref = {"id": target["id"]}
    for name in copy_fields:
        if target.get(name) is not None:
            ref[name] = target[name]
    if "name" in copy_fields and "name" not in ref and "firstName" in target:  # contacts
        ref["name"] = " ".join(p for p in (target.get("firstName"), target.get("lastName")) if p)
    return ref


def apply_defaults(tenant: Tenant, spec: ResourceSpec, record: dict) -> None:
    """Fill what ConnectWise fills on create: an agreement's billing set-up from its type and its start date, a
    catalog item's category from its subcategory."""
    if spec.path == "finance/agreements":
        # A new agreement takes its billing set-up from its type, as the ConnectWise screen does.
        agreement_type = tenant.tables["finance/agreements/types"].rows.get(get_path(record, "type/id")) or {}
        for key in ("billingCycle", "invoicingCycle", "prorateFlag", "billOneTimeFlag"):
            if key not in record and agreement_type.get(key) is not None:
                record[key] = agreement_type[key]
        record.setdefault("startDate", time.strftime("%Y-%m-%dT00:00:00Z", time.gmtime()))
    if spec.path == "procurement/catalog" and record.get("category") is None:
        sub = tenant.tables["procurement/subcategories"].rows.get(get_path(record, "subcategory/id"))
        if sub and isinstance(sub.get("category"), dict):
            record["category"] = dict(sub["category"])
    for key, value in spec.defaults.items():
        record.setdefault(key, value)


def _unique_key(spec: ResourceSpec, record: dict) -> tuple | None:
    if not spec.unique:
        return None
    values = []
    for path in spec.unique:
        value = get_path(record, path)
        if value is None:
            return None
        values.append(" ".join(value.split()).casefold() if isinstance(value, str) else value)
    return tuple(values)


def _check_unique(table: Table, record: dict, own_id: int | None) -> None:
    spec = table.spec
    key = _unique_key(spec, record)
    if key is None:
        return
    for other in table.rows.values():
        if other["id"] != own_id and _unique_key(spec, other) == key:
            field = spec.unique[-1].split("/")[0]
            raise invalid_error(
                spec,
                [
                    field_error(
                        spec,
                        "ObjectExists",
                        field,
                        f"The {field} {get_path(record, spec.unique[-1])!r} already exists (id {other['id']}).",
                    )
                ],
            )


def apply_patch(tenant: Tenant, spec: ResourceSpec, current: dict, ops: Any) -> dict:
    """docs/connectwise/REFERENCE.md §5: a JSON array of ``{"op", "path", "value"}``; a new dict is returned (copy-on-write)."""
    if isinstance(ops, dict):
        ops = [ops]
    if not isinstance(ops, list) or not ops:
        raise bad_request('PATCH takes a JSON array of operations like [{"op": "replace", ...}].')
    record = dict(current)
    known = {f.lower(): f for f in set(spec.fields) | set(current)}
    for i, op in enumerate(ops):
        if not isinstance(op, dict):
            raise bad_request(f"Operation {i} must be an object.")
        kind = str(op.get("op", "")).lower()
        path = str(op.get("path", "")).strip("/")
        if kind not in ("replace", "add", "remove"):
            raise bad_request(
                f"Operation {i}: op must be replace, add or remove.", "op", "InvalidField", spec.resource
            )
        parts = [p for p in path.split("/") if p]
        if not parts or parts[0].lower() not in known:
            raise invalid_error(spec, [field_error(spec, "InvalidField", path, f"Unknown field '{path}'.")])
        parts[0] = known[parts[0].lower()]
        if parts[0] in ("id", "_info"):
            raise invalid_error(
                spec, [field_error(spec, "InvalidField", parts[0], f"{parts[0]} cannot be changed.")]
            )
        field = parts[0]
        if kind == "remove":
            if len(parts) == 1:
                record.pop(field, None)
            elif isinstance(record.get(field), dict):
                record[field] = {k: v for k, v in record[field].items() if k != parts[1]}
            continue
        if "value" not in op:
            raise bad_request(
                f"Operation {i}: value is required.", "value", "MissingRequiredField", spec.resource
            )
        value = op["value"]
        if len(parts) == 1:
            record[field] = value
        elif field in spec.refs and parts[1:] == ["id"]:
            record[field] = {"id": value}  # "billingCycle/id" = 2 sets the reference
        else:
            nested = dict(record.get(field) or {})
            nested[parts[1]] = value
            record[field] = nested
    return record


class WritesMixin:
    """The ``SandboxApp`` methods of this module (mixed into ``app.SandboxApp``)."""

    # -------------------------------------------------------------------------------------------- writes
    def _create(self, request: Request, table: Table) -> Response:
        spec = table.spec
        body = request.body_json()
        if not isinstance(body, dict):
            raise bad_request(f"{spec.label} must be a JSON object.")
        body = check_body(spec, "POST", body)
        tenant = request.tenant
        with tenant.lock:
            record = {k: v for k, v in body.items() if k not in ("id", "_info")}
            validate_record(tenant, spec, record, creating=True)
            apply_defaults(tenant, spec, record)
            if spec is RESOURCES["finance/agreements"]:
                _check_agreement_contact(tenant, spec, record)
                self._guard_agreement_type(request, record)
            _check_unique(table, record, None)
            # who entered it: what makes a record one of the member's "my" records (docs/connectwise/REFERENCE.md §2)
            record["_info"] = {
                "enteredBy": request.member.get("identifier", ""),
                "dateEntered": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            }
            record = table.insert(record)
        return Response(201, record, {"Location": f"{request.url_base().rstrip('/')}/{record['id']}"})

    def _update(self, request: Request, table: Table, record_id: int, patch: bool) -> Response:
        spec = table.spec
        body = request.body_json()
        if patch or isinstance(body, dict):
            body = check_body(spec, "PATCH" if patch else "PUT", body)
        tenant = request.tenant
        with tenant.lock:
            current = table.rows.get(record_id)
            if current is None:
                raise not_found(spec, record_id)
            if patch:
                record = apply_patch(tenant, spec, current, body)
                validate_record(tenant, spec, record, creating=False)
            else:
                if not isinstance(body, dict):
                    raise bad_request(f"{spec.label} must be a JSON object.")
                record = {k: v for k, v in body.items() if k not in ("id", "_info")}
                validate_record(tenant, spec, record, creating=True)
                apply_defaults(tenant, spec, record)
                record["id"] = record_id
            if spec is RESOURCES["finance/agreements"]:
                self._guard_agreement_type(request, current)
                self._guard_agreement_type(request, record)
            _check_unique(table, record, record_id)
            table.replace(record)
        return Response(200, record)

    def _delete(self, request: Request, table: Table, record_id: int) -> Response:
        tenant = request.tenant
        with tenant.lock:
            current = table.rows.get(record_id)
            if current is None:
                raise not_found(table.spec, record_id)
            if table.spec is RESOURCES["finance/agreements"]:
                self._guard_agreement_type(request, current)
            table.delete(record_id)
        return Response(204)
