"""The sandbox's HTTP plumbing: the parsed ``Request``, the ``Response`` (JSON, gzip), ConnectWise-shaped errors
(``ApiError``, docs/connectwise/REFERENCE.md §6) and the small error helpers every route shares. A leaf module.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterator
from typing import Any
from urllib.parse import parse_qsl, quote

from .resources import (
    ResourceSpec,
)
from .store import Tenant

API_VERSION = "2025.8"


DEFAULT_PAGE_SIZE = 25


MAX_PAGE_SIZE = 1000  # docs/connectwise/REFERENCE.md §4: "a hard limit of 1,000 records"


GUID_RE = re.compile(
    r"^\{?[0-9a-fA-F]{8}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{12}\}?$"
)


JSON_CONTENT_TYPE = "application/json; charset=utf-8"


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


def bad_request(
    message: str, field: str | None = None, code: str = "InvalidObject", resource: str = ""
) -> ApiError:
    """A 400 InvalidObject with ``message``; with ``field``, one nested error naming it (``code``, ``resource``)."""
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
            raise bad_request("The request body is empty: send a JSON body.")
        try:
            return json.loads(raw)
        except (ValueError, UnicodeDecodeError):
            raise bad_request("The request body is not valid JSON.") from None

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


def resource_name(spec: ResourceSpec | None) -> str:
    """The ``resource`` name errors carry (``""`` outside a known resource)."""
    return spec.resource if spec else ""


def parse_record_id(text: str, spec: ResourceSpec | None) -> int:
    """The record id in a path segment; a non-number is a 404 like ConnectWise answers."""
    try:
        value = int(text)
    except ValueError:
        what = spec.label if spec else "Record"
        raise ApiError(404, "NotFound", f"{what} with id {text!r} not found.") from None
    return value


def not_found(spec: ResourceSpec, record_id: int) -> ApiError:
    """The 404 of a record that does not exist."""
    return ApiError(404, "NotFound", f"{spec.label} with id {record_id} not found.")


def not_allowed(allow: str) -> ApiError:
    """The 405 of a method the resource does not support, with its ``Allow`` header."""
    return ApiError(
        405,
        "MethodNotAllowed",
        "The requested resource does not support this method.",
        headers={"Allow": allow},
    )


def require_method(method: str, allowed: str) -> None:
    """Raise the 405 unless ``method`` is the one ``allowed``."""
    if method != allowed:
        raise not_allowed(allowed)


def trickle(body: bytes, seconds: float, sleep: Callable[[float], None]) -> Iterator[bytes]:
    """A slow body: four chunks with pauses in between (the headers went out at once)."""
    step = max(1, -(-len(body) // 4))
    chunks = [body[i : i + step] for i in range(0, len(body), step)]
    for i, chunk in enumerate(chunks):
        if i:
            sleep(seconds / max(1, len(chunks) - 1))
        yield chunk


# ----------------------------------------------------------------------------------------- write validation
def field_error(spec: ResourceSpec, code: str, field: str, message: str) -> dict:
    """One entry of an InvalidObject's ``errors`` list, about ``field``."""
    return {"code": code, "message": message, "resource": spec.resource, "field": field}


def invalid_error(spec: ResourceSpec, errors: list[dict]) -> ApiError:
    """The 400 of an invalid write: the shape ConnectWise answers (e.g. christaylorcodes/ConnectWiseManageAPI#30),
    a top-level InvalidObject with the specific problems (``field_error``) nested."""
    return ApiError(400, "InvalidObject", f"{spec.resource} object is invalid", errors)
