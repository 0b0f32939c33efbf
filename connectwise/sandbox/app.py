"""The sandbox WSGI application: ConnectWise's REST API for the resources of docs/connectwise/REFERENCE.md §2, per scenario.

Routes:
- ``GET /login/companyinfo/{companyId}``: discovery, no auth (docs/connectwise/REFERENCE.md §1); unknown company -> 200 ``null``.
- ``/{codebase}apis/3.0/{path}``: the API, for the scenario whose company id is in the Basic-auth user name
  ``company+public`` (password: the private key). Paths match case-insensitively, as ASP.NET routing does.
- ``/_sandbox/...``: control endpoints for tests and benchmarks (never faulted, no auth).

Faults (``latencyMs``, 429/500/503/reset/slow, see ``scenario_faults.parse_faults``) apply to API requests only, and to
discovery when ``includeDiscovery`` is set (latency always applies to discovery: it is a network call too).
A connection reset raises ``SandboxReset``: the served mode closes the socket with an RST, ``sandbox_transport``
turns it into ``httpx.ReadError``.

This module is the WSGI entry and the router; each concern is one module, mixed into ``SandboxApp``:
``wire`` (Request, Response, ConnectWise-shaped errors), ``auth`` (Basic auth, clientId, discovery), ``faults``,
``guard`` (how a 403 is decided: role levels, Inquire "My", Access Allowed), ``listing`` (conditions, orderBy,
fields, paging, /count), ``writes`` (create/update/delete validated as the SPEC does), ``system`` (info,
mySecurity, securityRoles), ``control`` (``/_sandbox/``), ``additions`` (the nested agreement additions).
"""

from __future__ import annotations

import gzip
import json
import re
import threading
import time
import uuid
from collections.abc import Callable, Iterable
from http import HTTPStatus

from . import additions
from .auth import AuthMixin
from .control import ControlMixin
from .faults import FaultsMixin
from .guard import LEVEL_FOR_METHOD, LEVEL_LABEL, GuardMixin, access_allowed_rows, is_owned, own_rows
from .listing import ListingMixin, match_resource, project_record, table_view
from .resources import (
    LEVEL_FIELDS,
)
from .scenario import Scenario
from .scenario_faults import parse_faults
from .scenario_security import parse_roles
from .scenario_values import ScenarioError
from .store import Tenant
from .system import SystemMixin
from .wire import (
    API_VERSION,
    GZIP_MIN_BYTES,
    JSON_CONTENT_TYPE,
    ApiError,
    Request,
    Response,
    SandboxReset,
    not_allowed,
    not_found,
    parse_record_id,
    trickle,
)
from .writes import WritesMixin

_API = re.compile(r"^/(?P<codebase>(?:[^/]+/)*)apis/3\.0/(?P<rest>.*)$", re.IGNORECASE)
_COMPANYINFO = re.compile(r"^/login/companyinfo/(?P<company>[^/]+)/?$", re.IGNORECASE)


class SandboxApp(AuthMixin, FaultsMixin, GuardMixin, ListingMixin, WritesMixin, SystemMixin, ControlMixin):
    """A WSGI app serving one or more scenarios (one per ConnectWise company id).

    ``client_ids``: the accepted ``clientId`` header values; None accepts any GUID-looking value. ``sleep`` is
    injectable so tests with latency can stay instant. ``enable_faults=False`` ignores every fault setting.
    ``prerender=True`` keeps each GET answer of the API (status, headers, encoded body) after it was first
    rendered and serves it again for the same company, member, path and query until a write or reset of that
    company: benchmarks use it so that the sandbox's own CPU (filtering, encoding) stays out of the latency
    they measure. Authentication, latency, faults and the request log still apply to every request.
    """

    def __init__(
        self,
        scenarios: Iterable[Scenario] | Scenario,
        *,
        client_ids: Iterable[str] | None = None,
        sleep: Callable[[float], None] = time.sleep,
        enable_faults: bool = True,
        prerender: bool = False,
    ) -> None:
        if isinstance(scenarios, Scenario):
            scenarios = [scenarios]
        self.tenants: dict[str, Tenant] = {}
        for scenario in scenarios:
            self.add_scenario(scenario)
        self.client_ids = {c.strip("{}").lower() for c in client_ids} if client_ids is not None else None
        self.sleep = sleep
        self.enable_faults = enable_faults
        self._gzip_cache: dict[tuple[int, int], bytes] = {}
        self.prerender = prerender
        # Requests being answered right now (latency included), and the most there were at once since the last
        # reset: overall (this sandbox is one ConnectWise host) and per clientId header.
        self._in_flight = 0
        self._in_flight_by_client: dict[str, int] = {}
        self._peak = 0
        self._peak_by_client: dict[str, int] = {}
        self._concurrency_lock = threading.Lock()
        self._rendered: dict[tuple, Response] = {}
        self._rendered_lock = threading.Lock()

    # -------------------------------------------------------------------------------------------- public API
    def add_scenario(self, scenario: Scenario) -> Tenant:
        key = scenario.id.casefold()
        if key in self.tenants:
            raise ValueError(f"company id {scenario.id!r} is served twice")
        tenant = Tenant(scenario)
        self.tenants[key] = tenant
        return tenant

    def tenant(self, company_id: str) -> Tenant:
        return self.tenants[company_id.casefold()]

    def reset(self, company: str | None = None) -> list[str]:
        tenants = self._select(company)
        for tenant in tenants:
            tenant.reset()
            self._forget_rendered(tenant)
        return [t.id for t in tenants]

    def set_faults(self, faults: dict, company: str | None = None) -> list[str]:
        parsed = parse_faults(faults)
        tenants = self._select(company)
        for tenant in tenants:
            tenant.set_faults(parsed)
        return [t.id for t in tenants]

    def change_role(
        self, company: str, role_name: str, *, setting: dict | None = None, customize_item: dict | None = None
    ) -> dict:
        """Change one security role of ``company`` as a person would in ConnectWise (System > Security Roles):
        ``setting`` = ``{moduleName, moduleFunctionName, addLevel?, editLevel?, deleteLevel?, inquireLevel?}``
        sets those levels of that module function (added when the role does not list it); ``customize_item`` =
        ``{customizeIdentifier, itemIdentifier}`` ticks that item (e.g. an agreement type under Agreements >
        Access Allowed). The result is validated like a scenario's role (``ScenarioError`` names the field) and
        lasts until ``reset``. Returns the role as it is now. Raises KeyError for an unknown company or role."""
        tenant = self.tenant(company)
        with tenant.lock:
            index = next(
                (i for i, r in enumerate(tenant.roles) if r["name"].casefold() == role_name.casefold()), None
            )
            if index is None:
                raise KeyError(role_name)
            role = json.loads(json.dumps(tenant.roles[index]))  # a new object: the role index is per object
            if setting is not None:
                if not isinstance(setting, dict):
                    raise ScenarioError("$.setting", "must be an object")
                key = (
                    str(setting.get("moduleName", "")).casefold(),
                    str(setting.get("moduleFunctionName", "")).casefold(),
                )
                row = next(
                    (
                        r
                        for r in role["settings"]
                        if (r["moduleName"].casefold(), r["moduleFunctionName"].casefold()) == key
                    ),
                    None,
                )
                if row is None:
                    row = {
                        "moduleName": setting.get("moduleName"),
                        "moduleFunctionName": setting.get("moduleFunctionName"),
                    }
                    role["settings"].append(row)
                row.update({k: v for k, v in setting.items() if k in LEVEL_FIELDS})
            if customize_item is not None:
                if not isinstance(customize_item, dict):
                    raise ScenarioError("$.customizeItem", "must be an object")
                role["customizeItems"].append(
                    {k: customize_item.get(k) for k in ("customizeIdentifier", "itemIdentifier")}
                )
            parsed = parse_roles([role], "$.securityRoles")[0]
            # One tick per item: a second identical one changes nothing.
            seen, items = set(), []
            for item in parsed["customizeItems"]:
                marker = (item["customizeIdentifier"], item["itemIdentifier"].casefold())
                if marker not in seen:
                    seen.add(marker)
                    items.append(item)
            parsed["customizeItems"] = items
            tenant.roles[index] = parsed
            return parsed

    def request_counts(self, company: str | None = None) -> dict[str, dict[str, int]]:
        out = {}
        for tenant in self._select(company):
            with tenant.lock:
                out[tenant.id] = dict(sorted(tenant.requests.items()))
        return out

    def clear_requests(self, company: str | None = None) -> None:
        for tenant in self._select(company):
            with tenant.lock:
                tenant.requests.clear()

    def _select(self, company: str | None) -> list[Tenant]:
        if company is None:
            return list(self.tenants.values())
        tenant = self.tenants.get(company.casefold())
        if tenant is None:
            raise KeyError(company)
        return [tenant]

    # ----------------------------------------------------------------------------------------------- WSGI
    def concurrency(self) -> dict:
        """Calls being answered now and the peak at once since ``reset_concurrency``: ``{"now", "peak",
        "peakByClientId": {clientId: n}}`` (control requests are not counted)."""
        with self._concurrency_lock:
            return {"now": self._in_flight, "peak": self._peak, "peakByClientId": dict(self._peak_by_client)}

    def reset_concurrency(self) -> None:
        with self._concurrency_lock:
            self._peak = self._in_flight
            self._peak_by_client = {k: v for k, v in self._in_flight_by_client.items() if v}

    def __call__(self, environ: dict, start_response: Callable) -> Iterable[bytes]:
        path = environ.get("PATH_INFO", "") or "/"
        if path == "/_sandbox" or path.startswith("/_sandbox/"):
            return self._answer(environ, start_response)
        client = (environ.get("HTTP_CLIENTID") or "").strip("{} ").lower()
        with self._concurrency_lock:
            self._in_flight += 1
            self._peak = max(self._peak, self._in_flight)
            now = self._in_flight_by_client.get(client, 0) + 1
            self._in_flight_by_client[client] = now
            self._peak_by_client[client] = max(self._peak_by_client.get(client, 0), now)
        try:
            return self._answer(environ, start_response)
        finally:
            with self._concurrency_lock:
                self._in_flight -= 1
                self._in_flight_by_client[client] -= 1

    def _answer(self, environ: dict, start_response: Callable) -> Iterable[bytes]:
        request = Request(environ)
        slow_ms = 0.0
        try:
            path = request.path
            if path == "/_sandbox" or path.startswith("/_sandbox/"):
                response = self._control(request)
            elif m := _COMPANYINFO.match(path):
                response, slow_ms = self._companyinfo(request, m.group("company"))
            elif m := _API.match(path):
                request.rest = m.group("rest")
                response, slow_ms = self._api(request, m.group("codebase"))
            else:
                raise ApiError(404, "NotFound", f"No resource at {path}.")
        except ApiError as exc:
            response = Response(exc.status, exc.body, exc.headers)
        return self._send(request, response, start_response, slow_ms)

    def _forget_rendered(self, tenant: Tenant) -> None:
        if self.prerender:
            with self._rendered_lock:
                for key in [k for k in self._rendered if k[0] == tenant.id]:
                    del self._rendered[key]

    def _gzip(self, body: bytes) -> bytes:
        """Compressed bodies are cached by content: the pages of a large list are asked for again on every
        verify, and compressing them each time would make the sandbox, not the client, the bottleneck."""
        key = (len(body), hash(body))
        hit = self._gzip_cache.get(key)
        if hit is None:
            hit = gzip.compress(body, compresslevel=1, mtime=0)
            if len(self._gzip_cache) > 256:
                self._gzip_cache.clear()
            self._gzip_cache[key] = hit
        return hit

    def _send(self, request: Request, response: Response, start_response: Callable, slow_ms: float):
        body = response.encode()
        encoding = {}
        # Like the IIS servers in front of ConnectWise, compress larger answers for clients that accept gzip
        # (assumption: docs/connectwise/REFERENCE.md does not say; every HTTP client we use sends Accept-Encoding: gzip).
        if len(body) > GZIP_MIN_BYTES and "gzip" in (request.header("accept-encoding") or "").lower():
            body = self._gzip(body)
            encoding = {"Content-Encoding": "gzip", "Vary": "Accept-Encoding"}
        headers = {
            "Content-Type": JSON_CONTENT_TYPE,
            **encoding,
            "Content-Length": str(len(body)),
            "x-cw-request-id": str(uuid.uuid4()),
            "api-current-version": API_VERSION,
            "x-server-name": (request.tenant.company["serverName"] if request.tenant else "cw-sandbox-01"),
        }
        if response.status == 204:
            del headers["Content-Type"]
        headers.update(response.headers)
        status = f"{response.status} {HTTPStatus(response.status).phrase}"
        start_response(status, list(headers.items()))
        if slow_ms and body:
            return trickle(body, slow_ms / 1000.0, self.sleep)
        return [body]

    # ------------------------------------------------------------------------------------------------ API
    def _api(self, request: Request, codebase: str) -> tuple[Response, float]:
        tenant, member = self._authenticate(request)
        request.tenant, request.member = tenant, member
        rest = request.rest.strip("/")
        with tenant.lock:
            tenant.requests[f"{request.method} {rest}"] += 1
        self._latency(tenant)
        if codebase.lower() != tenant.codebase.lower():
            # A stale codebase: the client should re-read companyinfo (docs/connectwise/REFERENCE.md §1).
            raise ApiError(404, "NotFound", f"Unknown codebase {codebase!r} for this company.")
        self._check_credentials(request, tenant, member)
        slow_ms = self._faults(tenant, rest, method=request.method)
        request.role = tenant.role_of(member)
        if not self.prerender:
            response = self._route(request, rest)
        elif request.method == "GET":
            key = (
                tenant.id,
                request.header("Authorization"),
                request.header("Host"),
                rest,
                request.query_string,
            )
            response = self._rendered.get(key)
            if response is None:
                response = self._route(request, rest)
                response = Response(response.status, headers=dict(response.headers), raw=response.encode())
                with self._rendered_lock:
                    self._rendered[key] = response
        else:
            self._forget_rendered(tenant)
            try:
                response = self._route(request, rest)
            finally:
                self._forget_rendered(tenant)  # a GET rendered while the write ran is stale too
        if slow_ms < 0:
            raise SandboxReset(rest)  # the write above was applied; the answer is lost
        return response, slow_ms

    def _route(self, request: Request, rest: str) -> Response:
        parts = [p for p in rest.split("/") if p]
        lower = [p.lower() for p in parts]
        if lower[:1] == ["system"]:
            return self._system(request, parts, lower)
        if (nested := additions.route(self, request, lower)) is not None:
            return nested
        spec, tail = match_resource(lower)
        if spec is None:
            raise ApiError(404, "NotFound", f"No resource at {rest}.")
        tenant = request.tenant
        table = tenant.tables[spec.path]
        method = request.method
        if not tail:
            if method == "GET":
                level = self._guard(request, spec, "GET")
                rows = access_allowed_rows(request, spec, table_view(request, tenant, table), table)
                rows = own_rows(request, level, rows)
                return self._list(request, table.known_fields, rows, spec, filtered=True)
            if method == "POST":
                self._guard(request, spec, "POST")
                return self._create(request, table)
            raise not_allowed("GET, POST")
        if tail == ["count"]:
            if method != "GET":
                raise not_allowed("GET")
            level = self._guard(request, spec, "GET")
            rows = access_allowed_rows(request, spec, table_view(request, tenant, table), table)
            return Response(200, {"count": len(own_rows(request, level, rows))})
        if len(tail) == 1:
            record_id = parse_record_id(tail[0], spec)
            level = self._guard(request, spec, method if method in LEVEL_FOR_METHOD else "GET")
            current = table.rows.get(record_id)
            if level == "My" and current is not None and not is_owned(request, current):
                if method == "GET":
                    raise not_found(spec, record_id)  # not one of "my" records: invisible (assumption)
                raise ApiError(
                    403,
                    "Forbidden",
                    f"You do not have permission to perform this action: {spec.guard[0]} > {spec.guard[1]} "
                    f"{LEVEL_LABEL[LEVEL_FOR_METHOD[method]]} level is My and this record is not yours.",
                )
            if method == "GET":
                record = current
                if record is None or not access_allowed_rows(request, spec, [record]):
                    raise not_found(spec, record_id)
                return Response(200, project_record(record, request.query.get("fields"), table.known_fields))
            if method in ("PUT", "PATCH"):
                return self._update(request, table, record_id, patch=method == "PATCH")
            if method == "DELETE":
                return self._delete(request, table, record_id)
            raise not_allowed("GET, PUT, PATCH, DELETE")
        raise ApiError(404, "NotFound", f"No resource at {rest}.")
