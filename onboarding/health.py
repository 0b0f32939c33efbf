"""Health of one process, for the container health checks and the load balancer.

``GET /healthz`` answers 200 ``{"ok": true, "database": "ok", "broker": "ok"}`` when a query runs and the Celery
broker accepts a connection, else 503 with the failing part named (``"database": "unavailable"``), never the
error text (it can hold a DSN with a password). ``HealthCheckMiddleware`` answers it before host validation and
the HTTPS redirect: the container's own check calls ``http://127.0.0.1:8000/healthz`` without the public host
name or the proxy's ``X-Forwarded-Proto``.
"""

from __future__ import annotations

import logging

from django.db import connection
from django.http import HttpRequest, JsonResponse

from .middleware import POLICY

log = logging.getLogger(__name__)

PATH = "/healthz"
BROKER_TIMEOUT_SECONDS = 3.0


def check_database() -> bool:
    """True when ``SELECT 1`` runs on the default database."""
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
        return True
    except Exception as exc:  # noqa: BLE001 (any failure means unhealthy; the type is logged, not the text)
        log.warning("healthz: database unavailable (%s)", type(exc).__name__)
        return False


def check_broker(timeout: float = BROKER_TIMEOUT_SECONDS) -> bool:
    """True when the Celery broker (Redis, or the filesystem transport) accepts a connection within ``timeout``
    seconds; one attempt, no retries, so a broker that is gone fails the check quickly."""
    from .celery import app  # noqa: PLC0415 (keeps the Celery app out of settings import time)

    try:
        with app.connection_for_write() as conn:
            conn.transport_options.update({"socket_connect_timeout": timeout, "socket_timeout": timeout})
            conn.ensure_connection(max_retries=1, interval_start=0, interval_step=0, timeout=timeout)
        return True
    except Exception as exc:  # noqa: BLE001
        log.warning("healthz: broker unavailable (%s)", type(exc).__name__)
        return False


def healthz(request: HttpRequest) -> JsonResponse:
    """200 when the database and the broker answer, else 503; only GET and HEAD (405 otherwise)."""
    if request.method not in ("GET", "HEAD"):
        return JsonResponse(
            {"ok": False, "error": "method not allowed"}, status=405, headers={"Allow": "GET, HEAD"}
        )
    parts = {
        "database": "ok" if check_database() else "unavailable",
        "broker": "ok" if check_broker() else "unavailable",
    }
    ok = all(v == "ok" for v in parts.values())
    # Answered before the security middleware runs: the same headers every other response carries.
    headers = {
        "Cache-Control": "no-store",
        "Content-Security-Policy": POLICY,
        "X-Content-Type-Options": "nosniff",
    }
    return JsonResponse({"ok": ok, **parts}, status=200 if ok else 503, headers=headers)


class HealthCheckMiddleware:
    """First in MIDDLEWARE: ``/healthz`` is answered for any Host header and over plain HTTP, before
    ``SecurityMiddleware`` redirects to HTTPS and ``CommonMiddleware`` validates ALLOWED_HOSTS."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request: HttpRequest):
        # Reads only: any other method takes the normal path (host check, HTTPS, CSRF) to the view's 405.
        if request.path_info == PATH and request.method in ("GET", "HEAD"):
            return healthz(request)
        return self.get_response(request)
