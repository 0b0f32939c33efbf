"""The control endpoints outside ``apis/3.0`` (``/_sandbox/reset``, ``/faults``, ``/requests``, ``/security``) and
``describe()``: never faulted, no auth; for tests and benchmarks.
"""

from __future__ import annotations

from .scenario_values import ScenarioError
from .wire import API_VERSION, ApiError, Request, Response, bad_request, require_method


class ControlMixin:
    """The ``SandboxApp`` methods of this module (mixed into ``app.SandboxApp``)."""

    # ------------------------------------------------------------------------------------------- control
    def _control(self, request: Request) -> Response:
        sub = request.path[len("/_sandbox") :].strip("/")
        method = request.method
        company = request.query.get("company")
        try:
            if sub == "":
                require_method(method, "GET")
                return Response(200, self.describe(request))
            if sub == "reset":
                require_method(method, "POST")
                return Response(200, {"reset": self.reset(company)})
            if sub == "faults":
                if method == "GET":
                    return Response(200, {t.id: t.faults for t in self._select(company)})
                require_method(method, "POST")
                body = request.body_json()
                if not isinstance(body, dict):
                    raise bad_request("Send the faults as a JSON object.")
                company = body.get("company", company)
                try:
                    ids = self.set_faults({k: v for k, v in body.items() if k != "company"}, company)
                except ScenarioError as exc:
                    raise bad_request(str(exc)) from None
                return Response(
                    200, {"faults": self.tenant(ids[0]).faults if ids else None, "companies": ids}
                )
            if sub == "concurrency":
                if method == "GET":
                    return Response(200, self.concurrency())
                require_method(method, "DELETE")
                self.reset_concurrency()
                return Response(204)
            if sub == "security":
                require_method(method, "POST")
                body = request.body_json()
                if not isinstance(body, dict) or not body.get("company"):
                    raise bad_request(
                        "Send {company, role or publicKey, setting?, customizeItem?} as a JSON object."
                    )
                company = str(body["company"])
                role_name = body.get("role")
                if not role_name and body.get("publicKey"):  # the role of that API member
                    member = self.tenant(company).members_by_public.get(str(body["publicKey"]))
                    role_name = member["securityRole"] if member else None
                if not role_name:
                    raise ApiError(404, "NotFound", "No such security role or API member.")
                try:
                    role = self.change_role(
                        company,
                        str(role_name),
                        setting=body.get("setting"),
                        customize_item=body.get("customizeItem"),
                    )
                except ScenarioError as exc:
                    raise bad_request(str(exc)) from None
                return Response(200, {"company": self.tenant(company).id, "role": role})
            if sub == "requests":
                if method == "GET":
                    return Response(200, self.request_counts(company))
                require_method(method, "DELETE")
                self.clear_requests(company)
                return Response(204)
        except KeyError:
            raise ApiError(404, "NotFound", f"No company {company!r} is served here.") from None
        raise ApiError(404, "NotFound", f"No control endpoint {request.path}.")

    def describe(self, request: Request | None = None) -> dict:
        base = request.url_base().split("/_sandbox")[0] if request else ""
        companies = []
        for tenant in self.tenants.values():
            c = tenant.company
            with tenant.lock:
                counts = {path: len(table.rows) for path, table in tenant.tables.items()}
            companies.append(
                {
                    "id": c["id"],
                    "name": c["name"],
                    "codebase": c["codebase"],
                    "apiBase": f"{base}/{c['codebase']}apis/3.0/",
                    "apiMembers": [m["identifier"] for m in tenant.scenario.api_members],
                    "records": counts,
                    "source": tenant.scenario.source,
                }
            )
        return {
            "sandbox": "ConnectWise PSA sandbox",
            "apiVersion": API_VERSION,
            "companies": companies,
            "control": [
                "POST /_sandbox/reset",
                "GET|POST /_sandbox/faults",
                "GET|DELETE /_sandbox/requests",
                "GET|DELETE /_sandbox/concurrency",
                "POST /_sandbox/security",
            ],
        }
