"""How the sandbox decides a 403: the API member's security role (Add/Edit/Delete/Inquire levels per module and
function, Inquire "My" = only the member's own records) and the Agreements "Access Allowed" list
(docs/connectwise/REFERENCE.md §2). ``access_allowed_rows`` hides agreements of types the role lacks.
"""

from __future__ import annotations

from .resources import (
    AGREEMENTS_CUSTOMIZE,
    SECURITY_ROLES,
    TABLE_SETUP_CUSTOMIZE,
    ResourceSpec,
    get_path,
)
from .store import Table
from .wire import ApiError, Request

LEVEL_FOR_METHOD = {
    "GET": "inquireLevel",
    "POST": "addLevel",
    "PUT": "editLevel",
    "PATCH": "editLevel",
    "DELETE": "deleteLevel",
}


LEVEL_LABEL = {"inquireLevel": "Inquire", "addLevel": "Add", "editLevel": "Edit", "deleteLevel": "Delete"}


def access_allowed_rows(
    request: Request, spec: ResourceSpec, rows: list[dict], table: Table | None = None
) -> list[dict]:
    """Reads show only the agreements whose type is in the role's Agreements "Access Allowed" list.

    ConnectWise does not show a member agreements of types its role's Access Allowed list lacks (issue 17, from
    sync vendors' reports; REFERENCE §2 names the list): lists, ``/count`` and a GET by id (404) all hide them.
    Writes to such an agreement are refused with 403 by ``_guard_agreement_type``. Other resources pass through.
    With ``table`` (a query's whole view), the result is cached per query and role until the table changes: the
    pages of a large list are served concurrently and would each filter every record again.
    """
    if spec.path != "finance/agreements":
        return rows
    tenant, role = request.tenant, request.role
    verdict: dict[str, bool] = {}

    def visible(record: dict) -> bool:
        type_name = get_path(record, "type/name")
        if not type_name:
            return True
        if type_name not in verdict:
            verdict[type_name] = tenant.has_item(role, AGREEMENTS_CUSTOMIZE, type_name)
        return verdict[type_name]

    if table is None:
        return [r for r in rows if visible(r)]
    key = (
        "access-allowed",
        request.query.get("conditions") or "",
        request.query.get("orderby") or "",
        f"{role.get('id')}:{id(role)}",
    )
    return table.view(key, lambda _all: [r for r in rows if visible(r)], tenant.lock)


def is_owned(request: Request, record: dict) -> bool:
    """One of the calling member's "my" records: its ``_info.enteredBy`` is the API member's identifier (the
    sandbox's ownership rule, docs/connectwise/REFERENCE.md §2; assumption, not confirmed)."""
    info = record.get("_info")
    entered_by = info.get("enteredBy") if isinstance(info, dict) else None
    identifier = (request.member or {}).get("identifier") or ""
    return bool(entered_by) and str(entered_by).casefold() == identifier.casefold()


def own_rows(request: Request, level: str, rows: list[dict]) -> list[dict]:
    """Inquire level "My" limits an answer to the member's own records; "All" answers every record."""
    if level != "My":
        return rows
    return [r for r in rows if is_owned(request, r)]


class GuardMixin:
    """The ``SandboxApp`` methods of this module (mixed into ``app.SandboxApp``)."""

    # ------------------------------------------------------------------------------------------- security
    def _guard(self, request: Request, spec: ResourceSpec, method: str) -> str:
        """403 where the role's level for the method is None; returns the level ("All" or "My")."""
        role = request.role
        tenant = request.tenant
        level_field = LEVEL_FOR_METHOD[method]
        module, function = spec.guard
        level = tenant.level(role, spec.guard, level_field)
        if level == "None":  # "My" limits the records instead: see own_rows
            raise ApiError(
                403,
                "Forbidden",
                f"You do not have permission to perform this action: {module} > {function} "
                f"{LEVEL_LABEL[level_field]} level is None.",
            )
        if spec.customize_item and not tenant.has_item(role, TABLE_SETUP_CUSTOMIZE, spec.customize_item):
            raise ApiError(
                403,
                "Forbidden",
                f"You do not have permission to perform this action: Table Setup (customize) > Access Allowed "
                f"does not include {spec.customize_item!r}.",
            )
        return level

    def _guard_agreement_type(self, request: Request, record: dict) -> None:
        """Writes to an agreement need its type in the role's Agreements "Access Allowed" list (docs/connectwise/REFERENCE.md §2)."""
        type_name = get_path(record, "type/name")
        if type_name and not request.tenant.has_item(request.role, AGREEMENTS_CUSTOMIZE, type_name):
            raise ApiError(
                403,
                "Forbidden",
                f"You do not have permission to perform this action: Agreements (customize) > Access Allowed "
                f"does not include the agreement type {type_name!r}.",
            )

    def _guard_system(self, request: Request, level_field: str) -> None:
        if request.tenant.level(request.role, SECURITY_ROLES, level_field) == "None":
            raise ApiError(
                403,
                "Forbidden",
                f"You do not have permission to perform this action: System > Security Roles "
                f"{LEVEL_LABEL[level_field]} level is None.",
            )
