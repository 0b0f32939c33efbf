"""Injected faults and latency (``latencyMs``, 429/500/503/reset/slow: ``scenario_faults.parse_faults``, PRODUCT.md)."""

from __future__ import annotations

from .store import Tenant
from .wire import ApiError, SandboxReset


class FaultsMixin:
    """The ``SandboxApp`` methods of this module (mixed into ``app.SandboxApp``)."""

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
