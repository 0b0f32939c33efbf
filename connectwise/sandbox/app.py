"""The sandbox WSGI application: ConnectWise's REST API for the resources of docs/connectwise/REFERENCE.md §2, per scenario.

Routes:
- ``GET /login/companyinfo/{companyId}``: discovery, no auth (docs/connectwise/REFERENCE.md §1); unknown company -> 200 ``null``.
- ``/{codebase}apis/3.0/{path}``: the API, for the scenario whose company id is in the Basic-auth user name
  ``company+public`` (password: the private key). Paths match case-insensitively, as ASP.NET routing does.
- ``/_sandbox/...``: control endpoints for tests and benchmarks (never faulted, no auth).

Faults (``latencyMs``, 429/500/503/reset/slow, see ``scenario.parse_faults``) apply to API requests only, and to
discovery when ``includeDiscovery`` is set (latency always applies to discovery: it is a network call too).
A connection reset raises ``SandboxReset``: the served mode closes the socket with an RST, ``sandbox_transport``
turns it into ``httpx.ReadError``.
"""

from __future__ import annotations

import base64
import binascii
import gzip
import hmac
import json
import re
import threading
import time
import uuid
from collections.abc import Callable, Iterable, Iterator
from http import HTTPStatus
from typing import Any
from urllib.parse import parse_qsl, quote, unquote

from connectwise import contract

from . import additions
from .conditions import ConditionError, compile_conditions, fields_of, parse_datetime
from .conditions import parse as parse_conditions
from .resources import (
    AGREEMENTS_CUSTOMIZE,
    LEVEL_FIELDS,
    RESOURCES,
    SECURITY_ROLES,
    TABLE_SETUP_CUSTOMIZE,
    ResourceSpec,
    get_path,
)
from .scenario import Scenario, ScenarioError, parse_faults, parse_roles
from .store import Table, Tenant

API_VERSION = "2025.8"
DEFAULT_PAGE_SIZE = 25
MAX_PAGE_SIZE = 1000  # docs/connectwise/REFERENCE.md §4: "a hard limit of 1,000 records"
_GUID = re.compile(r"^\{?[0-9a-fA-F]{8}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{12}\}?$")
_API = re.compile(r"^/(?P<codebase>(?:[^/]+/)*)apis/3\.0/(?P<rest>.*)$", re.IGNORECASE)
_COMPANYINFO = re.compile(r"^/login/companyinfo/(?P<company>[^/]+)/?$", re.IGNORECASE)
_LEVEL_FOR_METHOD = {
    "GET": "inquireLevel",
    "POST": "addLevel",
    "PUT": "editLevel",
    "PATCH": "editLevel",
    "DELETE": "deleteLevel",
}
_LEVEL_LABEL = {"inquireLevel": "Inquire", "addLevel": "Add", "editLevel": "Edit", "deleteLevel": "Delete"}
_JSON = "application/json; charset=utf-8"


class SandboxReset(Exception):  # noqa: N818 - a signal, not an error
    """Raised by the app to ask the server (or the transport) to drop the connection without an answer."""


class ApiError(Exception):
    """An answer with a ConnectWise-shaped error body (docs/connectwise/REFERENCE.md §6)."""

    def __init__(
        self,
        status: int,
        code: str,
        message: str,
        errors: list[dict] | None = None,
        headers: dict | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.body: dict[str, Any] = {"code": code, "message": message}
        if errors is not None:
            self.body["errors"] = errors
        self.headers = headers or {}


def _bad_request(
    message: str, field: str | None = None, code: str = "InvalidObject", resource: str = ""
) -> ApiError:
    errors = (
        [{"code": code, "message": message, "resource": resource, "field": field or ""}] if field else None
    )
    return ApiError(400, "InvalidObject", message, errors)


class Request:
    """What a handler needs from the WSGI environ, parsed once."""

    def __init__(self, environ: dict, rest: str = "") -> None:
        self.environ = environ
        self.method = environ.get("REQUEST_METHOD", "GET").upper()
        self.path = environ.get("PATH_INFO", "") or "/"
        self.rest = rest  # the API path after apis/3.0/, as sent
        self.query_string = environ.get("QUERY_STRING", "")
        self.query: dict[str, str] = {
            k.lower(): v for k, v in parse_qsl(self.query_string, keep_blank_values=True)
        }
        self.tenant: Tenant | None = None
        self.member: dict | None = None
        self.private_key = ""
        self.role: dict | None = None

    def header(self, name: str) -> str | None:
        return self.environ.get("HTTP_" + name.upper().replace("-", "_"))

    def body_json(self) -> Any:
        try:
            length = int(self.environ.get("CONTENT_LENGTH") or 0)
        except ValueError:
            length = 0
        raw = self.environ["wsgi.input"].read(length) if length > 0 else b""
        if not raw.strip():
            raise _bad_request("The request body is empty: send a JSON body.")
        try:
            return json.loads(raw)
        except (ValueError, UnicodeDecodeError):
            raise _bad_request("The request body is not valid JSON.") from None

    def host(self) -> str:
        host = self.environ.get("HTTP_HOST")
        if host:
            return host
        name, port = self.environ.get("SERVER_NAME", "localhost"), str(self.environ.get("SERVER_PORT", ""))
        scheme = self.environ.get("wsgi.url_scheme", "http")
        default = (scheme == "http" and port == "80") or (scheme == "https" and port == "443")
        return name if default or not port else f"{name}:{port}"

    def url_base(self) -> str:
        scheme = self.environ.get("wsgi.url_scheme", "http")
        path = self.environ.get("SCRIPT_NAME", "") + self.path
        return f"{scheme}://{self.host()}{quote(path, safe='/:@!$&()*+,;=-._~')}"


GZIP_MIN_BYTES = 4096


class Response:
    def __init__(
        self, status: int, body: Any = None, headers: dict[str, str] | None = None, raw: bytes | None = None
    ):
        self.status = status
        self.body = body
        self.headers = dict(headers or {})
        self.raw = raw

    def encode(self) -> bytes:
        if self.raw is not None:
            return self.raw
        if self.status == 204:
            return b""
        return json.dumps(self.body, separators=(",", ":"), ensure_ascii=False).encode("utf-8")


class SandboxApp:
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
                    raise ScenarioError("$.setting: must be an object")
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
                    raise ScenarioError("$.customizeItem: must be an object")
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
            "Content-Type": _JSON,
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
            return _trickle(body, slow_ms / 1000.0, self.sleep)
        return [body]

    # ------------------------------------------------------------------------------------------ discovery
    def _companyinfo(self, request: Request, company: str) -> tuple[Response, float]:
        if request.method != "GET":
            raise ApiError(405, "MethodNotAllowed", "Only GET is supported here.", headers={"Allow": "GET"})
        tenant = self.tenants.get(unquote(company).casefold())
        if tenant is None:
            return Response(200, raw=b"null"), 0.0  # what ConnectWise answers for an unknown company (DJCW)
        request.tenant = tenant
        with tenant.lock:
            tenant.requests[f"GET login/companyinfo/{company}"] += 1
        self._latency(tenant)
        slow_ms = self._faults(tenant, "login/companyinfo", discovery=True)
        c = tenant.company
        return Response(
            200,
            {
                "CompanyName": c["name"],
                "Codebase": c["codebase"],
                "VersionCode": c["versionCode"],
                "VersionNumber": c["versionNumber"],
                "CompanyID": c["id"],
                "IsCloud": c["isCloud"],
                "SiteUrl": c.get("siteUrl") or request.host(),
            },
        ), slow_ms

    def _latency(self, tenant: Tenant) -> None:
        """The round trip every answer of this company pays, errors included."""
        if self.enable_faults and tenant.faults["latencyMs"]:
            self.sleep(tenant.faults["latencyMs"] / 1000.0)

    def _faults(self, tenant: Tenant, api_path: str, discovery: bool = False, method: str = "GET") -> float:
        """Draw a fault; answer it by raising, or return the slow-body duration (ms, -1 for resetAfter)."""
        if not self.enable_faults:
            return 0.0
        faults = tenant.faults
        if discovery and not faults.get("includeDiscovery"):
            return 0.0
        kind = tenant.draw_fault(api_path, method)
        if kind is None:
            return 0.0
        retry_after = {"Retry-After": str(int(faults["retryAfterSeconds"]))}
        if kind == "429":
            raise ApiError(
                429, "TooManyRequests", "Too many requests: slow down and retry later.", headers=retry_after
            )
        body = faults.get("errorBody") or {}
        if kind == "500":
            raise ApiError(
                500,
                body.get("code", "UnexpectedError"),
                body.get("message", "An unexpected error occurred (sandbox fault)."),
            )
        if kind == "503":
            raise ApiError(
                503,
                body.get("code", "ServiceUnavailable"),
                body.get("message", "The service is unavailable (sandbox fault)."),
                headers=retry_after,
            )
        if kind == "reset":
            raise SandboxReset(api_path)
        if kind == "resetAfter":
            return -1.0  # handled after the request: see _api
        return float(faults.get("slowBodyMs") or 0)

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

    def _authenticate(self, request: Request) -> tuple[Tenant, dict]:
        header = request.header("Authorization") or ""
        scheme, _, encoded = header.partition(" ")
        if scheme.lower() != "basic" or not encoded.strip():
            raise ApiError(
                401, "Unauthorized", "Authorization has been denied for this request: Basic auth required."
            )
        try:
            decoded = base64.b64decode(encoded.strip(), validate=True).decode("utf-8")
        except (binascii.Error, UnicodeDecodeError):
            raise ApiError(401, "Unauthorized", "Authorization has been denied for this request.") from None
        user, sep, private = decoded.partition(":")
        company, plus, public = user.partition("+")
        if not sep or not plus or not company or not public:
            raise ApiError(
                401,
                "Unauthorized",
                "Authorization has been denied for this request: user must be company+publicKey.",
            )
        tenant = self.tenants.get(company.casefold())
        if tenant is None:
            raise ApiError(401, "ConnectWiseApi", "UserNotAuthenticated")
        request.tenant = tenant
        member = tenant.members_by_public.get(public)
        request.private_key = private  # checked after logging and the codebase check
        return tenant, member or {}

    def _check_credentials(self, request: Request, tenant: Tenant, member: dict) -> None:
        client_id = (request.header("clientId") or "").strip()
        if not client_id:
            raise ApiError(
                401, "Unauthorized", "The clientId header is missing: every request needs clientId."
            )
        if not _GUID.match(client_id) or (
            self.client_ids is not None and client_id.strip("{}").lower() not in self.client_ids
        ):
            raise ApiError(401, "Unauthorized", "The clientId is not valid or has been disabled.")
        private = request.private_key
        if not member or not hmac.compare_digest(member["privateKey"].encode(), private.encode()):
            raise ApiError(401, "ConnectWiseApi", "UserNotAuthenticated")
        if member.get("inactiveFlag"):
            raise ApiError(401, "ConnectWiseApi", "UserNotAuthenticated")
        if tenant.role_of(member) is None:
            raise ApiError(401, "ConnectWiseApi", "UserNotAuthenticated")

    def _route(self, request: Request, rest: str) -> Response:
        parts = [p for p in rest.split("/") if p]
        lower = [p.lower() for p in parts]
        if lower[:1] == ["system"]:
            return self._system(request, parts, lower)
        if (nested := additions.route(self, request, lower)) is not None:
            return nested
        spec, tail = _match_resource(lower)
        if spec is None:
            raise ApiError(404, "NotFound", f"No resource at {rest}.")
        tenant = request.tenant
        table = tenant.tables[spec.path]
        method = request.method
        if not tail:
            if method == "GET":
                level = self._guard(request, spec, "GET")
                rows = access_allowed_rows(request, spec, _table_view(request, tenant, table), table)
                rows = _own_rows(request, level, rows)
                return self._list(request, table.known_fields, rows, spec, filtered=True)
            if method == "POST":
                self._guard(request, spec, "POST")
                return self._create(request, table)
            raise _not_allowed("GET, POST")
        if tail == ["count"]:
            if method != "GET":
                raise _not_allowed("GET")
            level = self._guard(request, spec, "GET")
            rows = access_allowed_rows(request, spec, _table_view(request, tenant, table), table)
            return Response(200, {"count": len(_own_rows(request, level, rows))})
        if len(tail) == 1:
            record_id = _record_id(tail[0], spec)
            level = self._guard(request, spec, method if method in _LEVEL_FOR_METHOD else "GET")
            current = table.rows.get(record_id)
            if level == "My" and current is not None and not _owned(request, current):
                if method == "GET":
                    raise _not_found(spec, record_id)  # not one of "my" records: invisible (assumption)
                raise ApiError(
                    403,
                    "Forbidden",
                    f"You do not have permission to perform this action: {spec.guard[0]} > {spec.guard[1]} "
                    f"{_LEVEL_LABEL[_LEVEL_FOR_METHOD[method]]} level is My and this record is not yours.",
                )
            if method == "GET":
                record = current
                if record is None or not access_allowed_rows(request, spec, [record]):
                    raise _not_found(spec, record_id)
                return Response(200, _project(record, request.query.get("fields"), table.known_fields))
            if method in ("PUT", "PATCH"):
                return self._update(request, table, record_id, patch=method == "PATCH")
            if method == "DELETE":
                return self._delete(request, table, record_id)
            raise _not_allowed("GET, PUT, PATCH, DELETE")
        raise ApiError(404, "NotFound", f"No resource at {rest}.")

    # ------------------------------------------------------------------------------------------- security
    def _guard(self, request: Request, spec: ResourceSpec, method: str) -> str:
        """403 where the role's level for the method is None; returns the level ("All" or "My")."""
        role = request.role
        tenant = request.tenant
        level_field = _LEVEL_FOR_METHOD[method]
        module, function = spec.guard
        level = tenant.level(role, spec.guard, level_field)
        if level == "None":  # "My" limits the records instead: see _own_rows
            raise ApiError(
                403,
                "Forbidden",
                f"You do not have permission to perform this action: {module} > {function} "
                f"{_LEVEL_LABEL[level_field]} level is None.",
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
            raise _bad_request(
                f"pageSize must be between 1 and {MAX_PAGE_SIZE}.", "pageSize", "OutOfRange", _res(spec)
            )
        if not filtered:
            rows = _filter(request, known, rows, spec)
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
                raise _bad_request("page must be 1 or more.", "page", "OutOfRange", _res(spec))
            order = query.get("orderby")
            if order and not filtered:  # a table view is already ordered
                rows = _order(rows, order, known, spec)
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

    # -------------------------------------------------------------------------------------------- writes
    def _create(self, request: Request, table: Table) -> Response:
        spec = table.spec
        body = request.body_json()
        if not isinstance(body, dict):
            raise _bad_request(f"{spec.label} must be a JSON object.")
        body = _check_body(spec, "POST", body)
        tenant = request.tenant
        with tenant.lock:
            record = {k: v for k, v in body.items() if k not in ("id", "_info")}
            _validate(tenant, spec, record, creating=True)
            _apply_defaults(tenant, spec, record)
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
            body = _check_body(spec, "PATCH" if patch else "PUT", body)
        tenant = request.tenant
        with tenant.lock:
            current = table.rows.get(record_id)
            if current is None:
                raise _not_found(spec, record_id)
            if patch:
                record = _apply_patch(tenant, spec, current, body)
                _validate(tenant, spec, record, creating=False)
            else:
                if not isinstance(body, dict):
                    raise _bad_request(f"{spec.label} must be a JSON object.")
                record = {k: v for k, v in body.items() if k not in ("id", "_info")}
                _validate(tenant, spec, record, creating=True)
                _apply_defaults(tenant, spec, record)
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
                raise _not_found(table.spec, record_id)
            if table.spec is RESOURCES["finance/agreements"]:
                self._guard_agreement_type(request, current)
            table.delete(record_id)
        return Response(204)

    # -------------------------------------------------------------------------------------------- system
    def _system(self, request: Request, parts: list[str], lower: list[str]) -> Response:
        tenant, role, method = request.tenant, request.role, request.method
        sub = lower[1:]
        if sub == ["info"]:
            _only(method, "GET")
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
            _only(method, "GET")
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
            _only(method, "GET")
            if sub[1:] in ([], ["count"]):
                return self._list_or_count(request, members, sub[1:] == ["count"])
            if len(sub) == 2:
                member_id = _record_id(sub[1], None)
                found = next((m for m in members if m["id"] == member_id), None)
                if found is None:
                    raise ApiError(404, "NotFound", f"Member with id {member_id} not found.")
                return Response(200, found)
        raise ApiError(404, "NotFound", f"No resource at {'/'.join(parts)}.")

    def _list_or_count(self, request: Request, rows: list[dict], count: bool) -> Response:
        known = set().union(*(r.keys() for r in rows)) if rows else {"id"}
        if count:
            return Response(200, {"count": len(_filter(request, known, rows, None))})
        return self._list(request, known, rows, None)

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
                    raise _bad_request("name is required.", "name", "MissingRequiredField", "securityRole")
                with tenant.lock:
                    if any(r["name"].casefold() == name.strip().casefold() for r in tenant.roles):
                        raise _bad_request(
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
            raise _not_allowed("GET, POST")
        role_id = _record_id(sub[0], None)
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
                        raise _bad_request(
                            "The security role is assigned to members and cannot be deleted.",
                            "id",
                            "InUse",
                            "securityRole",
                        )
                    tenant.roles = [r for r in tenant.roles if r["id"] != role_id]
                return Response(204)
            # docs/connectwise/REFERENCE.md §2: roles are GET, POST, DELETE only; their settings cannot be changed over the API.
            raise _not_allowed("GET, DELETE")
        if sub[1:] in (["settings"], ["settings", "count"]):
            _only(method, "GET")
            rows = [
                {"id": i + 1, "securityRole": {"id": role["id"], "name": role["name"]}, **row}
                for i, row in enumerate(tenant.security_rows(role))
            ]
            return self._list_or_count(request, rows, sub[-1] == "count")
        raise ApiError(404, "NotFound", "No resource at that path.")

    def _guard_system(self, request: Request, level_field: str) -> None:
        if request.tenant.level(request.role, SECURITY_ROLES, level_field) == "None":
            raise ApiError(
                403,
                "Forbidden",
                f"You do not have permission to perform this action: System > Security Roles "
                f"{_LEVEL_LABEL[level_field]} level is None.",
            )

    # ------------------------------------------------------------------------------------------- control
    def _control(self, request: Request) -> Response:
        sub = request.path[len("/_sandbox") :].strip("/")
        method = request.method
        company = request.query.get("company")
        try:
            if sub == "":
                _only(method, "GET")
                return Response(200, self.describe(request))
            if sub == "reset":
                _only(method, "POST")
                return Response(200, {"reset": self.reset(company)})
            if sub == "faults":
                if method == "GET":
                    return Response(200, {t.id: t.faults for t in self._select(company)})
                _only(method, "POST")
                body = request.body_json()
                if not isinstance(body, dict):
                    raise _bad_request("Send the faults as a JSON object.")
                company = body.get("company", company)
                try:
                    ids = self.set_faults({k: v for k, v in body.items() if k != "company"}, company)
                except ScenarioError as exc:
                    raise _bad_request(str(exc)) from None
                return Response(
                    200, {"faults": self.tenant(ids[0]).faults if ids else None, "companies": ids}
                )
            if sub == "concurrency":
                if method == "GET":
                    return Response(200, self.concurrency())
                _only(method, "DELETE")
                self.reset_concurrency()
                return Response(204)
            if sub == "security":
                _only(method, "POST")
                body = request.body_json()
                if not isinstance(body, dict) or not body.get("company"):
                    raise _bad_request(
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
                    raise _bad_request(str(exc)) from None
                return Response(200, {"company": self.tenant(company).id, "role": role})
            if sub == "requests":
                if method == "GET":
                    return Response(200, self.request_counts(company))
                _only(method, "DELETE")
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


# ------------------------------------------------------------------------------------------------- helpers
def _match_resource(lower: list[str]) -> tuple[ResourceSpec | None, list[str]]:
    best: tuple[ResourceSpec | None, list[str]] = (None, [])
    best_len = 0
    for spec in RESOURCES.values():
        segs = _SEGMENTS[spec.path]
        n = len(segs)
        if n > best_len and lower[:n] == segs:
            best, best_len = (spec, lower[n:]), n
    return best


_SEGMENTS = {path: path.lower().split("/") for path in RESOURCES}


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


def _snapshot(tenant: Tenant, table: Table) -> list[dict]:
    with tenant.lock:
        return list(table.rows.values())


def _table_view(request: Request, tenant: Tenant, table: Table) -> list[dict]:
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
        rows = _filter(request, table.known_fields, rows, table.spec)
        return _order(rows, order, table.known_fields, table.spec) if order else rows

    return table.view(key, compute, tenant.lock)


def _filter(
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
        raise _bad_request(f"{label}: {exc}", label, "InvalidConditions", _res(spec)) from None
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


def _owned(request: Request, record: dict) -> bool:
    """One of the calling member's "my" records: its ``_info.enteredBy`` is the API member's identifier (the
    sandbox's ownership rule, docs/connectwise/REFERENCE.md §2; assumption, not confirmed)."""
    info = record.get("_info")
    entered_by = info.get("enteredBy") if isinstance(info, dict) else None
    identifier = (request.member or {}).get("identifier") or ""
    return bool(entered_by) and str(entered_by).casefold() == identifier.casefold()


def _own_rows(request: Request, level: str, rows: list[dict]) -> list[dict]:
    """Inquire level "My" limits an answer to the member's own records; "All" answers every record."""
    if level != "My":
        return rows
    return [r for r in rows if _owned(request, r)]


def _res(spec: ResourceSpec | None) -> str:
    return spec.resource if spec else ""


def _int_param(query: dict, key: str, default: int, spec: ResourceSpec | None) -> int:
    value = query.get(key)
    if value is None or value == "":
        return default
    try:
        return int(value)
    except ValueError:
        name = {"pagesize": "pageSize", "pageid": "pageId"}.get(key, key)
        raise _bad_request(f"{name} must be a whole number.", name, "InvalidValue", _res(spec)) from None


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


def _order(rows: list[dict], order: str, known: Iterable[str], spec: ResourceSpec | None) -> list[dict]:
    canonical = {k.lower(): k for k in known}
    keys = []
    for item in order.split(","):
        words = item.split()
        if not words:
            continue
        if len(words) > 2 or (len(words) == 2 and words[1].lower() not in ("asc", "desc")):
            raise _bad_request(
                f"orderBy: cannot read {item.strip()!r}.", "orderBy", "InvalidValue", _res(spec)
            )
        parts = words[0].split("/")
        head = canonical.get(parts[0].lower())
        if head is None:
            raise _bad_request(f"orderBy: Unknown field '{words[0]}'.", "orderBy", "InvalidField", _res(spec))
        parts[0] = head
        keys.append((_sort_key(_path_getter(parts)), len(words) == 2 and words[1].lower() == "desc"))
    if [(w.split()[0].lower(), w.split()[1:]) for w in order.split(",") if w.strip()] in (
        [("id", [])],
        [("id", ["asc"])],
    ):
        return rows  # tables and system lists are kept in id order already
    out = list(rows)
    for key, desc in reversed(keys):  # stable sorts, least significant key first
        out.sort(key=key, reverse=desc)
    return out


def _path_getter(parts: list[str]) -> Callable[[dict], Any]:
    def get(record: dict) -> Any:
        value: Any = record
        for p in parts:
            if not isinstance(value, dict):
                return None
            value = value.get(p)
        return value

    return get


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


def _project(record: dict, fields: str | None, known: Iterable[str]) -> dict:
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


def _record_id(text: str, spec: ResourceSpec | None) -> int:
    try:
        value = int(text)
    except ValueError:
        what = spec.label if spec else "Record"
        raise ApiError(404, "NotFound", f"{what} with id {text!r} not found.") from None
    return value


def _not_found(spec: ResourceSpec, record_id: int) -> ApiError:
    return ApiError(404, "NotFound", f"{spec.label} with id {record_id} not found.")


def _not_allowed(allow: str) -> ApiError:
    return ApiError(
        405,
        "MethodNotAllowed",
        "The requested resource does not support this method.",
        headers={"Allow": allow},
    )


def _only(method: str, allowed: str) -> None:
    if method != allowed:
        raise _not_allowed(allowed)


def _role_ref(tenant: Tenant, name: str) -> dict:
    role = next((r for r in tenant.roles if r["name"].casefold() == name.casefold()), None)
    return {"id": role["id"], "name": role["name"]} if role else {"name": name}


def _trickle(body: bytes, seconds: float, sleep: Callable[[float], None]) -> Iterator[bytes]:
    """A slow body: four chunks with pauses in between (the headers went out at once)."""
    step = max(1, -(-len(body) // 4))
    chunks = [body[i : i + step] for i in range(0, len(body), step)]
    for i, chunk in enumerate(chunks):
        if i:
            sleep(seconds / max(1, len(chunks) - 1))
        yield chunk


# ----------------------------------------------------------------------------------------- write validation
def _field_error(spec: ResourceSpec, code: str, field: str, message: str) -> dict:
    return {"code": code, "message": message, "resource": spec.resource, "field": field}


def _invalid(spec: ResourceSpec, errors: list[dict]) -> ApiError:
    # The shape ConnectWise answers (e.g. christaylorcodes/ConnectWiseManageAPI#30): a top-level InvalidObject
    # with the specific problems nested.
    return ApiError(400, "InvalidObject", f"{spec.resource} object is invalid", errors)


def _check_body(spec: ResourceSpec, method: str, body: Any) -> Any:
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
        _field_error(
            spec,
            "InvalidField",
            ".".join(str(x) for x in problem.path if not isinstance(x, int)) or "body",
            f"{'.'.join(str(x) for x in problem.path)} {problem.message}",
        )
        for problem in problems
        if problem.kind in ("maxLength", "enum", "minimum", "maximum", "format")
    ]
    if errors:
        raise _invalid(spec, errors)
    return body


def _conversion_message(problem: contract.Problem) -> str:
    """Json.NET's words for a value it cannot convert, which ConnectWise answers verbatim (issue 11:
    ``Error converting value 1 to type '...CompanyReference'. Path 'company', line 1, position 13.``; the
    namespace and position are left out)."""
    where = "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in problem.path).lstrip(".")
    value = json.dumps(problem.value, separators=(",", ":"))
    return f"Error converting value {value} to type '{problem.expected}'. Path '{where}'."


def _validate(tenant: Tenant, spec: ResourceSpec, record: dict, creating: bool) -> None:
    """Required fields (on create and PUT), enum values, and references resolved with their names filled in."""
    errors: list[dict] = []
    if creating:
        for req in spec.required:
            if get_path(record, req) in (None, ""):
                field = req.split("/")[0]
                errors.append(_field_error(spec, "MissingRequiredField", field, f"{field} is required."))
    for field, allowed in spec.enums.items():
        value = record.get(field)
        if value is not None and value not in allowed:
            errors.append(
                _field_error(spec, "InvalidField", field, f"{field} must be one of {', '.join(allowed)}.")
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
                _field_error(spec, "InvalidField", field, f'{field} must be a reference like {{"id": 1}}.')
            )
            continue
        target = tenant.tables[ref.target].rows.get(value["id"])
        if target is None:
            errors.append(
                _field_error(spec, "InvalidField", field, f"{field} with id {value['id']} was not found.")
            )
            continue
        record[field] = _reference(target, ref.copy)
    if errors:
        raise _invalid(spec, errors)


def _check_agreement_contact(tenant: Tenant, spec: ResourceSpec, record: dict) -> None:
    """A new agreement's contact must be one of its company's contacts, as the agreement screen offers them.
    Assumption (no public source states ConnectWise's answer): refused like another invalid field."""
    contact = tenant.tables["company/contacts"].rows.get(get_path(record, "contact/id")) or {}
    owner = get_path(contact, "company/id")
    if owner is not None and owner != get_path(record, "company/id"):
        raise _invalid(
            spec,
            [
                _field_error(
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


def _apply_defaults(tenant: Tenant, spec: ResourceSpec, record: dict) -> None:
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
            raise _invalid(
                spec,
                [
                    _field_error(
                        spec,
                        "ObjectExists",
                        field,
                        f"The {field} {get_path(record, spec.unique[-1])!r} already exists (id {other['id']}).",
                    )
                ],
            )


def _apply_patch(tenant: Tenant, spec: ResourceSpec, current: dict, ops: Any) -> dict:
    """docs/connectwise/REFERENCE.md §5: a JSON array of ``{"op", "path", "value"}``; a new dict is returned (copy-on-write)."""
    if isinstance(ops, dict):
        ops = [ops]
    if not isinstance(ops, list) or not ops:
        raise _bad_request('PATCH takes a JSON array of operations like [{"op": "replace", ...}].')
    record = dict(current)
    known = {f.lower(): f for f in set(spec.fields) | set(current)}
    for i, op in enumerate(ops):
        if not isinstance(op, dict):
            raise _bad_request(f"Operation {i} must be an object.")
        kind = str(op.get("op", "")).lower()
        path = str(op.get("path", "")).strip("/")
        if kind not in ("replace", "add", "remove"):
            raise _bad_request(
                f"Operation {i}: op must be replace, add or remove.", "op", "InvalidField", spec.resource
            )
        parts = [p for p in path.split("/") if p]
        if not parts or parts[0].lower() not in known:
            raise _invalid(spec, [_field_error(spec, "InvalidField", path, f"Unknown field '{path}'.")])
        parts[0] = known[parts[0].lower()]
        if parts[0] in ("id", "_info"):
            raise _invalid(
                spec, [_field_error(spec, "InvalidField", parts[0], f"{parts[0]} cannot be changed.")]
            )
        field = parts[0]
        if kind == "remove":
            if len(parts) == 1:
                record.pop(field, None)
            elif isinstance(record.get(field), dict):
                record[field] = {k: v for k, v in record[field].items() if k != parts[1]}
            continue
        if "value" not in op:
            raise _bad_request(
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
