"""Authentication of an API request (docs/connectwise/REFERENCE.md §1): the Basic-auth ``company+public:private``
user, the ``clientId`` header, and the discovery endpoint ``/login/companyinfo/{companyId}`` (no auth).
"""

from __future__ import annotations

import base64
import binascii
import hmac
from urllib.parse import unquote

from .store import Tenant
from .wire import GUID_RE, ApiError, Request, Response


class AuthMixin:
    """The ``SandboxApp`` methods of this module (mixed into ``app.SandboxApp``)."""

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
        if not GUID_RE.match(client_id) or (
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
