"""Errors as RFC 9457 problem details (``application/problem+json``): ``type``, ``title``, ``status``,
``detail``, ``instance`` and, for invalid input, ``errors`` (field -> messages).

``type`` is a stable URI under ``/api/v1/problems/`` per kind of problem; clients branch on it, never on words.
"""

from __future__ import annotations

import logging

from django.core.exceptions import PermissionDenied
from django.http import Http404, JsonResponse
from rest_framework import exceptions, status
from rest_framework.response import Response
from rest_framework.views import set_rollback

log = logging.getLogger(__name__)

CONTENT_TYPE = "application/problem+json"

# exception class -> (type slug, title); the first match in this order wins.
KINDS: list[tuple[type[Exception], str, str]] = [
    (exceptions.NotAuthenticated, "unauthenticated", "Authentication required"),
    (exceptions.AuthenticationFailed, "unauthenticated", "Authentication required"),
    (exceptions.PermissionDenied, "forbidden", "Not allowed"),
    (exceptions.NotFound, "not-found", "Not found"),
    (exceptions.MethodNotAllowed, "method-not-allowed", "Method not allowed"),
    (exceptions.NotAcceptable, "not-acceptable", "Not acceptable"),
    (exceptions.UnsupportedMediaType, "unsupported-media-type", "Unsupported media type"),
    (exceptions.Throttled, "rate-limited", "Too many requests"),
    (exceptions.ParseError, "invalid-request", "Invalid request"),
    (exceptions.ValidationError, "invalid-request", "Invalid request"),
]


class Conflict(exceptions.APIException):
    status_code = status.HTTP_409_CONFLICT
    default_detail = "The request conflicts with the current state."
    default_code = "conflict"


class IdempotencyKeyReused(exceptions.APIException):
    status_code = status.HTTP_422_UNPROCESSABLE_ENTITY
    default_detail = "This Idempotency-Key was already used for a different request."
    default_code = "idempotency-key-reused"


KINDS += [
    (Conflict, "conflict", "Conflict"),
    (IdempotencyKeyReused, "idempotency-key-reused", "Idempotency-Key reused"),
]


def problem(
    status_code: int, kind: str, title: str, detail: str = "", *, instance: str = "", **extra
) -> Response:
    """A problem details response."""
    body = {"type": f"/api/v1/problems/{kind}", "title": title, "status": status_code}
    if detail:
        body["detail"] = detail
    if instance:
        body["instance"] = instance
    body.update(extra)
    return Response(body, status=status_code, content_type=CONTENT_TYPE)


API_PREFIX = "/api/"


def is_api_request(request) -> bool:
    """True for a request under ``/api/``, whose errors must be problems, never the site's HTML pages."""
    return request.path.startswith(API_PREFIX)


def invalid_request(request, detail: str, errors: dict[str, list[str]] | None = None) -> JsonResponse:
    """A 400 ``invalid-request`` problem built without DRF, for guards that answer before any API view runs
    (``onboarding.inputs.BadInputMiddleware``)."""
    body = {
        "type": "/api/v1/problems/invalid-request",
        "title": "Invalid request",
        "status": 400,
        "detail": detail,
        "instance": request.path,
    }
    if errors:
        body["errors"] = errors
    return JsonResponse(body, status=400, content_type=CONTENT_TYPE)


def _flatten(detail) -> dict[str, list[str]]:
    if isinstance(detail, dict):
        return {str(k): [str(m) for m in (v if isinstance(v, list) else [v])] for k, v in detail.items()}
    return {"non_field_errors": [str(m) for m in (detail if isinstance(detail, list) else [detail])]}


def exception_handler(exc: Exception, context: dict) -> Response:
    """DRF's EXCEPTION_HANDLER: every error of the API, expected or not, as a problem; never a 500 page."""
    request = context.get("request")
    instance = request.path if request is not None else ""
    if isinstance(exc, Http404):
        exc = exceptions.NotFound()
    elif isinstance(exc, PermissionDenied):
        exc = exceptions.PermissionDenied()
    if not isinstance(exc, exceptions.APIException):
        log.exception("API error on %s", instance)
        set_rollback()
        return problem(
            500, "server-error", "Server error", "Something went wrong on our side.", instance=instance
        )
    kind, title = next(((k, t) for cls, k, t in KINDS if isinstance(exc, cls)), ("error", "Error"))
    extra = {}
    if isinstance(exc, exceptions.ValidationError):
        extra["errors"] = _flatten(exc.detail)
        detail = "Some of the input is not valid; see errors."
    else:
        detail = str(exc.detail) if not isinstance(exc.detail, (list, dict)) else str(exc.detail)
    response = problem(exc.status_code, kind, title, detail, instance=instance, **extra)
    if getattr(exc, "auth_header", None):
        response["WWW-Authenticate"] = exc.auth_header
    if getattr(exc, "wait", None):
        response["Retry-After"] = str(int(exc.wait))
    set_rollback()
    return response
