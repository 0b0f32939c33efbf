"""The ``system/`` endpoints: ``info``, ``mySecurity`` (+ ``customizeItems``) and ``securityRoles``."""

from __future__ import annotations

from .store import Tenant
from .wire import ApiError, Request, Response, bad_request, not_allowed, parse_record_id, require_method


def _role_ref(tenant: Tenant, name: str) -> dict:
    role = next((r for r in tenant.roles if r["name"].casefold() == name.casefold()), None)
    return {"id": role["id"], "name": role["name"]} if role else {"name": name}


class SystemMixin:
    """The ``SandboxApp`` methods of this module (mixed into ``app.SandboxApp``)."""

    # -------------------------------------------------------------------------------------------- system
    def _system(self, request: Request, parts: list[str], lower: list[str]) -> Response:
        tenant, role, method = request.tenant, request.role, request.method
        sub = lower[1:]
        if sub == ["info"]:
            require_method(method, "GET")
            c = tenant.company
            return Response(
                200,
                {
                    "version": c["versionNumber"],
                    "isCloud": c["isCloud"],
                    "serverTimeZone": c["serverTimeZone"],
                    "licenseBits": [{"name": "PSA", "activeFlag": True}],
                    "cloudRegion": c["cloudRegion"],
                },
            )
        if sub[:1] == ["mysecurity"] and sub[1:] in (
            [],
            ["count"],
            ["customizeitems"],
            ["customizeitems", "count"],
        ):
            require_method(method, "GET")
            if not (tenant.company.get("mySecurityReadable", True) and role.get("mySecurityReadable", True)):
                raise ApiError(403, "Forbidden", "You do not have permission to view security settings.")
            if "customizeitems" in sub:
                # SPEC MySecurityCustomizeItem: id, customizeIdentifier, itemIdentifier (no securityRole)
                rows = [
                    {
                        "id": i + 1,
                        "customizeIdentifier": item["customizeIdentifier"],
                        "itemIdentifier": item["itemIdentifier"],
                    }
                    for i, item in enumerate(role["customizeItems"])
                ]
            else:
                rows = [{"id": i + 1, **row} for i, row in enumerate(tenant.security_rows(role))]
            return self._list_or_count(request, rows, sub[-1] == "count")
        if sub[:1] == ["securityroles"]:
            return self._security_roles(request, sub[1:])
        if sub[:1] == ["apimembers"]:
            members = [
                {
                    "id": m["id"],
                    "identifier": m["identifier"],
                    "firstName": m.get("firstName") or m["identifier"],
                    "lastName": m.get("lastName") or "API",
                    "securityRole": _role_ref(tenant, m["securityRole"]),
                    "inactiveFlag": m["inactiveFlag"],
                }
                for m in tenant.scenario.api_members
            ]
            require_method(method, "GET")
            if sub[1:] in ([], ["count"]):
                return self._list_or_count(request, members, sub[1:] == ["count"])
            if len(sub) == 2:
                member_id = parse_record_id(sub[1], None)
                found = next((m for m in members if m["id"] == member_id), None)
                if found is None:
                    raise ApiError(404, "NotFound", f"Member with id {member_id} not found.")
                return Response(200, found)
        raise ApiError(404, "NotFound", f"No resource at {'/'.join(parts)}.")

    def _security_roles(self, request: Request, sub: list[str]) -> Response:
        tenant, method = request.tenant, request.method

        def public(role: dict) -> dict:
            return {"id": role["id"], "name": role["name"], "roleType": role.get("roleType", "Corporate")}

        if not sub or sub == ["count"]:
            if method == "GET":
                with tenant.lock:
                    rows = [public(r) for r in tenant.roles]
                return self._list_or_count(request, rows, bool(sub))
            if method == "POST" and not sub:
                self._guard_system(request, "addLevel")
                body = request.body_json()
                name = body.get("name") if isinstance(body, dict) else None
                if not isinstance(name, str) or not name.strip():
                    raise bad_request("name is required.", "name", "MissingRequiredField", "securityRole")
                with tenant.lock:
                    if any(r["name"].casefold() == name.strip().casefold() for r in tenant.roles):
                        raise bad_request(
                            f"A security role named {name!r} already exists.",
                            "name",
                            "ObjectExists",
                            "securityRole",
                        )
                    role = {
                        "id": tenant.next_role_id,
                        "name": name.strip(),
                        "roleType": body.get("roleType", "Corporate"),
                        "settings": [],
                        "customizeItems": [],
                        "mySecurityReadable": True,
                    }
                    tenant.next_role_id += 1
                    tenant.roles.append(role)
                return Response(201, public(role))
            raise not_allowed("GET, POST")
        role_id = parse_record_id(sub[0], None)
        with tenant.lock:
            role = next((r for r in tenant.roles if r["id"] == role_id), None)
        if role is None:
            raise ApiError(404, "NotFound", f"Security role with id {role_id} not found.")
        if len(sub) == 1:
            if method == "GET":
                return Response(200, public(role))
            if method == "DELETE":
                self._guard_system(request, "deleteLevel")
                with tenant.lock:
                    if any(
                        m["securityRole"].casefold() == role["name"].casefold()
                        for m in tenant.scenario.api_members
                    ):
                        raise bad_request(
                            "The security role is assigned to members and cannot be deleted.",
                            "id",
                            "InUse",
                            "securityRole",
                        )
                    tenant.roles = [r for r in tenant.roles if r["id"] != role_id]
                return Response(204)
            # docs/connectwise/REFERENCE.md §2: roles are GET, POST, DELETE only; their settings cannot be changed over the API.
            raise not_allowed("GET, DELETE")
        if sub[1:] in (["settings"], ["settings", "count"]):
            require_method(method, "GET")
            rows = [
                {"id": i + 1, "securityRole": {"id": role["id"], "name": role["name"]}, **row}
                for i, row in enumerate(tenant.security_rows(role))
            ]
            return self._list_or_count(request, rows, sub[-1] == "count")
        raise ApiError(404, "NotFound", "No resource at that path.")
