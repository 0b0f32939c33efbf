"""The typed errors of the ConnectWise client, and the one table that maps an HTTP status to them.

Error body, docs/connectwise/REFERENCE.md §6: ``{"code", "message", "errors": [{"code", "message", "resource", "field", "details"}]}``.
Each class says whether it is ``transient`` (worth retrying later: Celery may retry the task) or permanent.
Messages are built from the method, the path without its query, the status and ConnectWise's own code and
message; never from request headers, so no key or ``Authorization`` value can end up in ``str()`` or ``repr()``.
"""

from __future__ import annotations

import ssl
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class ErrorDetail:
    """One entry of the ``errors`` list of a ConnectWise error body."""

    code: str = ""
    message: str = ""
    resource: str = ""
    field: str = ""
    details: Any = None


class ConnectWiseError(Exception):
    """Base class. ``status`` is the HTTP status (None when there was no response).

    ``attempts`` is how many times the client sent the request before giving up (set by the client; 1 when the
    error was not retried): an error with ConnectWise's own message on every one of several attempts repeats for
    this data and is not a passing outage.
    """

    transient: bool = False
    attempts: int = 1

    def __init__(
        self,
        message: str,
        *,
        status: int | None = None,
        code: str | None = None,
        request_id: str | None = None,
        method: str | None = None,
        path: str | None = None,
        cw_message: str | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.status = status
        self.code = code
        self.request_id = request_id
        self.method = method
        self.path = path
        # ConnectWise's own ``message`` from the error body (redacted), separate from our sentence around it.
        self.cw_message = cw_message

    @property
    def retry_after_seconds(self) -> float | None:
        """The server's ``Retry-After`` in seconds when it sent one (429 and 503), else None."""
        return getattr(self, "retry_after", None)

    def detail(self) -> dict[str, Any]:
        """What a person needs to act on this error, as plain JSON data (stored with findings and failed runs).

        ``{"kind": class name, "status": HTTP status or None, "code": ConnectWise's code or None, "message":
        ConnectWise's own message or None, "method", "path": the API path without its query (conditions can
        name customers; no key is ever in a path), "request_id": the ``x-cw-request-id`` response header
        (REFERENCE §6 "Response headers seen", the id ConnectWise support looks a request up by) or None,
        "transient": bool, "retry_after": seconds or None}``. Nothing from request headers, so never a key.
        """
        retry_after = self.retry_after_seconds
        return {
            "kind": type(self).__name__,
            "status": self.status,
            "code": self.code,
            "message": self.cw_message,
            "method": self.method,
            "path": (self.path or "").split("?", 1)[0] or None,
            "request_id": self.request_id,
            "transient": self.transient,
            "retry_after": round(retry_after) if retry_after is not None else None,
        }

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.message!r}, status={self.status!r}, code={self.code!r})"


class ConnectionFailed(ConnectWiseError):
    """No usable HTTP response: connection refused or reset, DNS failure, protocol error."""

    transient = True


class TLSFailed(ConnectionFailed):
    """The TLS handshake failed: the server's certificate was refused, or no secure connection could be agreed.

    ``kind`` is ``"untrusted"`` (self-signed, an unknown authority, or an incomplete intermediate chain: OpenSSL
    cannot tell the last two apart), ``"expired"`` (expired or not yet valid), ``"name_mismatch"`` (issued for
    another host name) or ``"failed"`` (protocol or cipher); ``verify_message`` is OpenSSL's verify message.
    Permanent: retrying cannot fix a certificate.
    """

    transient = False

    def __init__(
        self, message: str, *, kind: str = "failed", verify_message: str = "", **kwargs: Any
    ) -> None:
        super().__init__(message, **kwargs)
        self.kind = kind
        self.verify_message = verify_message

    def detail(self) -> dict[str, Any]:
        """``ConnectWiseError.detail()`` with OpenSSL's verify message as the message and the TLS ``kind``."""
        return {**super().detail(), "message": self.verify_message or None, "tls": self.kind}


# OpenSSL X509_V_ERR_* verify codes (openssl/x509_vfy.h) -> TLSFailed.kind; codes not listed are "untrusted".
TLS_VERIFY_KINDS: dict[int, str] = {
    9: "expired",  # certificate is not yet valid
    10: "expired",  # certificate has expired
    62: "name_mismatch",  # hostname mismatch
    64: "name_mismatch",  # IP address mismatch
}


def tls_failure(exc: BaseException) -> tuple[str, str] | None:
    """``(kind, detail)`` when ``exc`` (or an exception it was raised from) is an ``ssl`` error, else None."""
    seen = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        if isinstance(current, ssl.SSLCertVerificationError):
            detail = current.verify_message or str(current)
            return TLS_VERIFY_KINDS.get(current.verify_code, "untrusted"), detail
        if isinstance(current, ssl.SSLError):
            return "failed", current.reason or str(current)
        current = current.__cause__ or current.__context__
    return None


class RedirectRefused(ConnectionFailed):
    """The server answered with a redirect. The client never follows one (the host was vetted, its target not)."""

    transient = False


class Timeout(ConnectWiseError):
    transient = True


class RateLimited(ConnectWiseError):
    """429. ``retry_after`` is the server's ``Retry-After`` in seconds, when it sent one."""

    transient = True

    def __init__(self, message: str, *, retry_after: float | None = None, **kwargs: Any) -> None:
        super().__init__(message, **kwargs)
        self.retry_after = retry_after


class ServerError(ConnectWiseError):
    """5xx."""

    transient = True

    def __init__(self, message: str, *, retry_after: float | None = None, **kwargs: Any) -> None:
        super().__init__(message, **kwargs)
        self.retry_after = retry_after


class AuthFailed(ConnectWiseError):
    """401: wrong company id, keys or clientId (docs/connectwise/REFERENCE.md §6)."""


class Forbidden(ConnectWiseError):
    """403: the API member's security role lacks the level this call needs."""


class NotFound(ConnectWiseError):
    """404: an unknown record, or a codebase that is no longer current."""


class BadRequest(ConnectWiseError):
    """400: validation. ``errors`` holds the nested details; ``object_exists`` means a duplicate."""

    def __init__(self, message: str, *, errors: list[ErrorDetail] | None = None, **kwargs: Any) -> None:
        super().__init__(message, **kwargs)
        self.errors: list[ErrorDetail] = list(errors or [])

    @property
    def object_exists(self) -> bool:
        """True when ConnectWise refused a create because the record already exists (nested ``ObjectExists``)."""
        return any(e.code == "ObjectExists" for e in self.errors) or self.code == "ObjectExists"


class UnknownCompany(ConnectWiseError):
    """``/login/companyinfo/{companyId}`` answered ``null``: no such company on this host."""


class RepeatedPage(ConnectWiseError):
    """Paging returned a page already seen; stopping instead of looping."""


class HostNotAllowed(ConnectWiseError):
    """A host we refuse to talk to (the SSRF guard, or a ``Link`` header naming a foreign host)."""


class UnexpectedResponse(ConnectWiseError):
    """A successful status with a body we cannot use (not JSON, or not the shape the API documents)."""


def detail_text(detail: dict[str, Any]) -> str:
    """One ``ConnectWiseError.detail()`` as one line a support person can quote:
    ``HTTP 500 ConnectWiseApi "String was not ..." on GET company/companies request id 4f2a...``."""
    parts = [f"HTTP {detail['status']}" if detail.get("status") else str(detail.get("kind") or "error")]
    if detail.get("code"):
        parts.append(str(detail["code"]))
    if detail.get("message"):
        parts.append(f'"{detail["message"]}"')
    if detail.get("path"):
        parts.append(f"on {detail.get('method') or 'GET'} {detail['path']}")
    if detail.get("request_id"):
        parts.append(f"request id {detail['request_id']}")
    if detail.get("retry_after"):
        parts.append(f"retry after {detail['retry_after']} s")
    return " ".join(parts)


# The one table: status -> class. Other 5xx are ServerError, other statuses the base class.
ERROR_BY_STATUS: dict[int, type[ConnectWiseError]] = {
    400: BadRequest,
    401: AuthFailed,
    403: Forbidden,
    404: NotFound,
    429: RateLimited,
}


def error_class_for(status: int) -> type[ConnectWiseError]:
    if status in ERROR_BY_STATUS:
        return ERROR_BY_STATUS[status]
    if 500 <= status <= 599:
        return ServerError
    return ConnectWiseError


def _text(value: Any, limit: int = 500) -> str:
    return value[:limit] if isinstance(value, str) else ""


def parse_error_body(body: Any) -> tuple[str, str, list[ErrorDetail]]:
    """``(code, message, errors)`` from a decoded error body; anything unexpected gives empty values."""
    if not isinstance(body, dict):
        return "", "", []
    details = []
    for item in body.get("errors") or []:
        if isinstance(item, dict):
            details.append(
                ErrorDetail(
                    code=_text(item.get("code")),
                    message=_text(item.get("message")),
                    resource=_text(item.get("resource")),
                    field=_text(item.get("field")),
                    details=item.get("details"),
                )
            )
    return _text(body.get("code")), _text(body.get("message")), details


def error_from_response(
    status: int,
    body: Any,
    *,
    method: str,
    path: str,
    request_id: str | None = None,
    retry_after: float | None = None,
    redact: Callable[[str], str] = lambda s: s,
) -> ConnectWiseError:
    """Build the typed error for a non-2xx response. ``body`` is the decoded JSON (or None).

    ``redact`` scrubs the caller's secrets out of the text the server sent back, in case a server echoes them.
    """
    code, message, details = parse_error_body(body)
    code, message = redact(code), redact(message)
    details = [
        ErrorDetail(redact(d.code), redact(d.message), redact(d.resource), redact(d.field), d.details)
        for d in details
    ]
    cls = error_class_for(status)
    # docs/connectwise/REFERENCE.md §6: "UserNotAuthenticated" under code ConnectWiseApi means bad credentials whatever the status.
    if code == "ConnectWiseApi" and message == "UserNotAuthenticated":
        cls = AuthFailed

    text = f"{method} {path} failed: HTTP {status}"
    if code:
        text += f" {code}"
    if message:
        text += f": {message}"
    nested = "; ".join(
        " ".join(p for p in (d.code, d.field and f"({d.field})", d.message) if p) for d in details[:5]
    )
    if nested:
        text += f" [{nested}]"
    if request_id:
        text += f" (request id {request_id})"
    if cls is RateLimited and retry_after is not None:
        text += f"; rate limited by ConnectWise for {round(retry_after)} s"

    kwargs: dict[str, Any] = dict(
        status=status,
        code=code or None,
        request_id=request_id,
        method=method,
        path=path,
        cw_message=message or None,
    )
    if cls is BadRequest:
        return BadRequest(text, errors=details, **kwargs)
    if cls in (RateLimited, ServerError):
        return cls(text, retry_after=retry_after, **kwargs)
    return cls(text, **kwargs)
