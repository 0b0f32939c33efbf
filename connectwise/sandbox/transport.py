"""In-process use: an httpx transport that calls the sandbox app directly (no socket, no thread)."""

from __future__ import annotations

import httpx

from .app import SandboxApp, SandboxReset


class SandboxTransport(httpx.WSGITransport):
    """``httpx.WSGITransport`` that turns the sandbox's connection-reset fault into ``httpx.ReadError``.

    That is what httpx raises when a real server resets the connection mid-request, so client code sees the same
    exception type in-process as against the served sandbox.
    """

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        try:
            return super().handle_request(request)
        except SandboxReset:
            raise httpx.ReadError(
                "[Errno 104] Connection reset by peer (sandbox fault)", request=request
            ) from None


def sandbox_transport(app: SandboxApp, **kwargs) -> httpx.BaseTransport:
    """A transport for ``httpx.Client(transport=sandbox_transport(app), base_url="http://sandbox.test")``."""
    return SandboxTransport(app=app, **kwargs)
