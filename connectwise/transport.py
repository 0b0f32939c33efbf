"""The wire under the ConnectWise client: one ``httpx.Client``, auth, retries, error mapping, logging, accounting.

``Transport._request`` is the one request method: it sends one attempt at a time inside the in-flight bound (and
the cross-process ``shared_slot``), maps every failure to a typed ``connectwise.errors`` class, retries what may
be retried (docs/connectwise/REFERENCE.md §6: 429 and 503 for every method, honouring ``Retry-After`` up to a cap;
other 5xx, timeouts and connection errors for idempotent methods; a failure to connect for every method), logs
method, path, status, request id and duration (never headers, bodies or the query), and counts every attempt in
``CallStats``. Where a path goes is the client's business (``ConnectWiseClient`` in ``connectwise.client``,
which adds the codebase, discovery, paging and the resource methods): it says so through two hooks,
``_target`` and ``_codebase_moved``.
"""

from __future__ import annotations

import base64
import email.utils
import functools
import json
import logging
import math
import random
import ssl
import threading
import time
from collections.abc import Callable, Mapping
from contextlib import AbstractContextManager, nullcontext
from typing import Any, Self
from urllib.parse import urlsplit

import httpx
import orjson

from . import errors
from .callstats import CallStats, path_template
from .sites import Credentials

# The logger name the client logged under before the split (log lines show it, log settings may name it).
log = logging.getLogger("connectwise.client")

API_VERSION = "2025.8"
# docs/connectwise/REFERENCE.md §1: pin one version through the vendor media type.
ACCEPT = f"application/vnd.connectwise.com+json; version={API_VERSION}"
DEFAULT_TIMEOUT = httpx.Timeout(30.0, connect=10.0)
IDEMPOTENT_METHODS = frozenset({"GET", "HEAD", "OPTIONS", "PUT", "DELETE"})
# The server refused these before acting, so even a POST may be sent again (docs/connectwise/REFERENCE.md §6).
RETRY_ANY_METHOD_STATUSES = frozenset({429, 503})
USER_AGENT = "cw-onboarding/0.1 (+httpx)"


def parse_retry_after(value: str | None, *, now: float | None = None) -> float | None:
    """Seconds from a ``Retry-After`` header (delta-seconds or an HTTP date); None when absent or unreadable."""
    if not value:
        return None
    value = value.strip()
    try:
        seconds = float(value)
    except ValueError:
        try:
            when = email.utils.parsedate_to_datetime(value)
        except (TypeError, ValueError):
            return None
        if when is None or when.tzinfo is None:
            return None
        seconds = when.timestamp() - (time.time() if now is None else now)
    if not math.isfinite(seconds):
        return None
    return max(0.0, seconds)


def clean_path(path: str) -> str:
    """A path relative to ``.../apis/3.0/``; the trailing slash is kept (some SPEC paths carry one)."""
    path = (path or "").lstrip("/")
    if not path or "://" in path or "?" in path or "#" in path or ".." in path.split("/"):
        raise ValueError(f"not an API path: {path!r} (give the query as parameters)")
    return path


_NO_BODY = object()


@functools.lru_cache(maxsize=1)
def shared_ssl_context() -> ssl.SSLContext:
    """One certificate-verifying TLS context per process: building one loads the CA bundle (tens of ms), and a
    context is safe to share between connections and threads."""
    return httpx.create_ssl_context(verify=True, trust_env=False)


class Transport:
    """HTTP to one ConnectWise origin with the API member's credentials; retries as the module docstring says.

    Backoff is exponential with full jitter; ``sleep`` and ``rng`` are injectable so tests are instant and
    repeatable. A ``Retry-After`` above ``retry_after_cap`` is raised at once (its ``retry_after`` telling the
    caller how long to wait). ``shared_slot``: a callable returning a context manager held around every attempt on
    the wire, inside the per-client bound (``onboarding.limits`` bounds calls per host and per clientId across
    processes); it may raise a ConnectWiseError (``Timeout`` when no slot frees), treated like a failure before
    anything was sent.
    """

    def __init__(
        self,
        credentials: Credentials,
        *,
        transport: httpx.BaseTransport | None = None,
        timeout: httpx.Timeout | None = DEFAULT_TIMEOUT,
        max_in_flight: int = 8,
        sleep: Callable[[float], None] = time.sleep,
        max_attempts: int = 4,
        backoff_base: float = 0.5,
        backoff_max: float = 8.0,
        retry_after_cap: float = 30.0,
        rng: random.Random | None = None,
        shared_slot: Callable[[], AbstractContextManager[object]] | None = None,
    ) -> None:
        if max_in_flight < 1 or max_attempts < 1:
            raise ValueError("max_in_flight and max_attempts must be at least 1")
        self._creds = credentials
        self._origin = credentials.origin
        self._max_in_flight = max_in_flight
        self._sleep = sleep
        self._max_attempts = max_attempts
        self._backoff_base = backoff_base
        self._backoff_max = backoff_max
        self._retry_after_cap = retry_after_cap
        self._rng = rng or random.Random()
        self._rng_lock = threading.Lock()
        self._in_flight = threading.BoundedSemaphore(max_in_flight)
        self._shared_slot = shared_slot
        self._stats = CallStats()

        user = f"{credentials.company_id}+{credentials.public_key}"
        token = base64.b64encode(f"{user}:{credentials.private_key}".encode()).decode("ascii")
        self._authorization = f"Basic {token}"
        self._secrets = tuple(
            s for s in (credentials.private_key, token, f"{user}:{credentials.private_key}") if len(s) >= 6
        )
        self._http = httpx.Client(
            transport=transport,
            verify=shared_ssl_context(),
            timeout=timeout or DEFAULT_TIMEOUT,  # never None: a hung server must not hang a worker
            follow_redirects=False,  # a redirect could lead past the host guard: it is an error
            trust_env=False,  # no proxy or .netrc from the environment: the host guard vetted a direct call
            limits=httpx.Limits(max_connections=max_in_flight, max_keepalive_connections=max_in_flight),
            headers={"clientId": credentials.client_id, "Accept": ACCEPT, "User-Agent": USER_AGENT},
        )

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def close(self) -> None:
        self._http.close()

    @property
    def stats(self) -> CallStats:
        """A snapshot of the calls made so far."""
        return self._stats.snapshot()

    # -- hooks the client overrides ---------------------------------------------------------------------------

    def _target(self, path: str, discovery: bool) -> tuple[str, str | None]:
        """``(absolute URL, codebase used or None)`` for a request to ``path``; here: relative to the origin."""
        return f"{self._origin}/{path}", None

    def _codebase_moved(self, used: str, sent_at: float) -> bool:
        """After a 404 on a URL built with codebase ``used``: True when the request should go again to a new URL."""
        return False

    # -- the one request method -----------------------------------------------------------------------------

    def _request(
        self,
        method: str,
        path: str,
        *,
        params: Mapping[str, Any] | None = None,
        json_body: Any = _NO_BODY,
        headers: Mapping[str, str] | None = None,
        url: str | None = None,
        discovery: bool = False,
    ) -> tuple[Any, httpx.Response]:
        """Send with retries, log, map errors, parse JSON. Returns ``(decoded body or None, response)``.

        ``path`` is relative to the API base (or to the origin for discovery); ``url`` overrides it with an
        absolute URL already checked to be ours (a ``Link``). A 404 on an API call re-reads companyinfo once and
        retries once when the codebase changed (DJCW, docs/connectwise/REFERENCE.md §1).
        """
        path = clean_path(path)
        template = "login/companyinfo/{companyId}" if discovery else path_template(path)
        send_headers: dict[str, str] = dict(headers or {})
        if discovery:
            send_headers["Accept"] = "application/json"  # not an apis/3.0 call: no vendor media type, no auth
        else:
            send_headers["Authorization"] = self._authorization
        content: bytes | None = None
        if json_body is not _NO_BODY:
            content = json.dumps(
                json_body, ensure_ascii=False, separators=(",", ":"), allow_nan=False
            ).encode()
            send_headers["Content-Type"] = "application/json"
        query = {k: v for k, v in (params or {}).items() if v is not None} or None

        attempt = 0
        rediscovered = False
        while True:
            attempt += 1
            codebase = None
            attempt_started = time.perf_counter()
            if url is not None:
                target = url
            else:
                target, codebase = self._target(path, discovery)
            try:
                response = self._send(method, target, query, content, send_headers, path, template)
            except errors.ConnectWiseError as exc:
                nothing_sent = getattr(exc, "_nothing_sent", False)
                if isinstance(exc, errors.TLSFailed):
                    raise  # a certificate does not fix itself between attempts
                if attempt < self._max_attempts and (nothing_sent or method in IDEMPOTENT_METHODS):
                    self._wait(attempt, None, method, path, exc)
                    continue
                exc.attempts = attempt
                raise

            status = response.status_code
            request_id = response.headers.get("x-cw-request-id")
            if 200 <= status < 300:
                return self._decode(response, method, path), response
            if 300 <= status < 400:
                location_host = httpx.URL(response.headers.get("location", "")).host or "elsewhere"
                raise errors.RedirectRefused(
                    f"{method} {path}: the server answered with a redirect (HTTP {status} to {location_host}); "
                    "redirects are refused: check the site address",
                    status=status,
                    request_id=request_id,
                    method=method,
                    path=path,
                )
            error = errors.error_from_response(
                status,
                json_or_none(response),
                method=method,
                path=path,
                request_id=request_id,
                retry_after=parse_retry_after(response.headers.get("retry-after")),
                redact=self._redact,
            )
            if isinstance(error, errors.NotFound) and codebase is not None and not rediscovered:
                rediscovered = True
                if self._codebase_moved(codebase, attempt_started):
                    self._stats.record_retry()
                    attempt -= 1  # a different URL, not a retry of the same one
                    continue
            retry_after = getattr(error, "retry_after", None)
            if retry_after is not None and retry_after > self._retry_after_cap:
                # Asked to wait longer than we may: retrying after the cap is only refused again (issue 11).
                # Give up now; the run ends "error" and the scheduler waits for the server (onboarding.runs).
                error.attempts = attempt
                raise error
            if attempt < self._max_attempts and (
                status in RETRY_ANY_METHOD_STATUSES or (status >= 500 and method in IDEMPOTENT_METHODS)
            ):
                self._wait(attempt, retry_after, method, path, error)
                continue
            error.attempts = attempt
            raise error

    def _send(
        self,
        method: str,
        url: str,
        params: Mapping[str, Any] | None,
        content: bytes | None,
        headers: Mapping[str, str],
        path: str,
        template: str,
    ) -> httpx.Response:
        """One attempt on the wire, inside the in-flight bound; transport failures become typed errors."""
        failure: errors.ConnectWiseError | None = None
        response: httpx.Response | None = None
        with self._in_flight, self._shared_slot() if self._shared_slot else nullcontext():
            started = time.perf_counter()
            try:
                response = self._http.request(method, url, params=params, content=content, headers=headers)
                # httpx binds a response and its stream in a reference cycle; the body is read and the stream
                # closed by now, so a plain stream over the body breaks the cycle, and reference counting frees a
                # page as soon as its records are parsed, also while runner.run_steps pauses the collector.
                response.stream = httpx.ByteStream(response.content)
            except httpx.TimeoutException as exc:
                failure = errors.Timeout(
                    f"{method} {path}: timed out ({type(exc).__name__})", method=method, path=path
                )
                failure._nothing_sent = isinstance(exc, httpx.ConnectTimeout | httpx.PoolTimeout)  # type: ignore[attr-defined]
            except httpx.TransportError as exc:
                host = urlsplit(url).netloc
                tls = errors.tls_failure(exc)
                if tls is not None:
                    # A certificate problem is named, never passed off as a passing network fault (issue 17).
                    failure = errors.TLSFailed(
                        f"{method} {path}: the TLS handshake with {host} failed: {tls[1]}",
                        kind=tls[0],
                        verify_message=tls[1],
                        method=method,
                        path=path,
                    )
                else:
                    failure = errors.ConnectionFailed(
                        f"{method} {path}: could not talk to {host}: {type(exc).__name__}: "
                        f"{self._redact(str(exc))}",
                        method=method,
                        path=path,
                    )
                failure._nothing_sent = isinstance(exc, httpx.ConnectError)  # type: ignore[attr-defined]
            answered = time.perf_counter()
        elapsed_ms = (answered - started) * 1000
        status = response.status_code if response is not None else None
        self._stats.record_call(
            method,
            template,
            elapsed_ms,
            failed=status is None or not 200 <= status < 300,
            interval=(started, answered),
        )
        request_id = response.headers.get("x-cw-request-id") if response is not None else None
        level = logging.DEBUG if status is not None and 200 <= status < 300 else logging.WARNING
        # Method, path (never the query: conditions can name customers), status, request id, duration.
        log.log(
            level,
            "connectwise %s %s -> %s request_id=%s %.0fms",
            method,
            path,
            status if status is not None else type(failure).__name__,
            request_id or "-",
            elapsed_ms,
        )
        if failure is not None:
            # No exception chaining: the httpx exception carries the request, headers included.
            failure.__suppress_context__ = True
            raise failure
        assert response is not None
        return response

    def _wait(
        self, attempt: int, retry_after: float | None, method: str, path: str, error: errors.ConnectWiseError
    ) -> None:
        """Sleep before the next attempt: ``Retry-After`` (capped) when given, else full-jitter backoff."""
        if retry_after is not None:
            delay = min(retry_after, self._retry_after_cap)
        else:
            ceiling = min(self._backoff_max, self._backoff_base * 2 ** (attempt - 1))
            with self._rng_lock:
                delay = self._rng.uniform(0, ceiling)
        self._stats.record_retry()
        log.info(
            "connectwise retry %s %s after %s in %.2fs (attempt %d)",
            method,
            path,
            type(error).__name__,
            delay,
            attempt + 1,
        )
        self._sleep(delay)

    # -- helpers ---------------------------------------------------------------------------------------------

    def _redact(self, text: str) -> str:
        for secret in self._secrets:
            text = text.replace(secret, "***")
        return text

    def _decode(self, response: httpx.Response, method: str, path: str) -> Any:
        if response.status_code == 204 or not response.content.strip():
            return None
        try:
            # orjson: pages of 1,000 records parse several times faster than with the json module.
            return orjson.loads(response.content)
        except ValueError:
            raise self._unexpected(response, method, path, "a body that is not JSON") from None

    def _unexpected(
        self, response: httpx.Response, method: str, path: str, what: str
    ) -> errors.UnexpectedResponse:
        content_type = response.headers.get("content-type", "no content type").split(";")[0]
        return errors.UnexpectedResponse(
            f"{method} {path}: unexpected response: HTTP {response.status_code} with {what} ({content_type})",
            status=response.status_code,
            request_id=response.headers.get("x-cw-request-id"),
            method=method,
            path=path,
        )

    def _expect_list(self, body: Any, response: httpx.Response, path: str) -> list[dict[str, Any]]:
        if body is None:
            return []
        if not isinstance(body, list):
            raise self._unexpected(response, "GET", path, "a page that is not a list")
        return body

    def _expect_dict(self, body: Any, path: str, response: httpx.Response | None = None) -> dict[str, Any]:
        if isinstance(body, dict):
            return body
        if response is None:
            raise errors.UnexpectedResponse(f"{path}: unexpected response: not a JSON object", path=path)
        raise self._unexpected(response, response.request.method, path, "a body that is not a JSON object")


def json_or_none(response: httpx.Response) -> Any:
    """The response body as JSON, or None when it is not JSON (an error page)."""
    try:
        return response.json()
    except ValueError:
        return None
