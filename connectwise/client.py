"""The ConnectWise PSA (Manage) REST client: HTTP only, no Django.

Every fact about the API used here is in ``docs/connectwise/REFERENCE.md`` in this repository (cited by path and section).

    creds = Credentials(origin="https://api-na.myconnectwise.net", company_id="acme",
                        public_key="...", private_key="...", client_id="<guid>")
    with ConnectWiseClient(creds) as cw:
        companies = cw.list("company/companies", conditions='deletedFlag = false', fields="id,name")

Concurrency: Celery tasks are synchronous, so the client stays synchronous too. Independent calls (``/count`` and
the first page, the remaining pages, the reads of several checks) run on a small ``ThreadPoolExecutor`` of
``max_in_flight`` workers over one thread-safe ``httpx.Client``. A fresh executor is used per fan-out so that a
fan-out inside a fan-out (``map_concurrent`` over ``list``) cannot deadlock waiting for its own pool; the per-client
bound on requests actually in flight is a semaphore of ``max_in_flight`` held only while a request is on the wire
(never while sleeping before a retry). That gives the concurrency of an async client without an event loop
inside the worker.
"""

from __future__ import annotations

import base64
import builtins
import email.utils
import functools
import json
import logging
import math
import random
import re
import ssl
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from concurrent.futures import ThreadPoolExecutor
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass, field
from typing import Any, TypeVar
from urllib.parse import quote, urlsplit

import httpx
import orjson
from pydantic import ValidationError

from . import errors
from .schemas import CompanyInfo, normalize_codebase

log = logging.getLogger(__name__)

API_VERSION = "2025.8"
# docs/connectwise/REFERENCE.md §1: pin one version through the vendor media type.
ACCEPT = f"application/vnd.connectwise.com+json; version={API_VERSION}"
# docs/connectwise/REFERENCE.md §1 (DJCW CW_CLOUD_URLS).
CLOUD_HOSTS: tuple[str, ...] = (
    "api-na.myconnectwise.net",
    "api-eu.myconnectwise.net",
    "api-au.myconnectwise.net",
    "api-aus.myconnectwise.net",
    "api-za.myconnectwise.net",
    "api-staging.connectwisedev.com",
)
MAX_PAGE_SIZE = 1000  # docs/connectwise/REFERENCE.md §4: "a hard limit of 1,000 records"
DEFAULT_TIMEOUT = httpx.Timeout(30.0, connect=10.0)
IDEMPOTENT_METHODS = frozenset({"GET", "HEAD", "OPTIONS", "PUT", "DELETE"})
# The server refused these before acting, so even a POST may be sent again (docs/connectwise/REFERENCE.md §6).
RETRY_ANY_METHOD_STATUSES = frozenset({429, 503})
USER_AGENT = "cw-onboarding/0.1 (+httpx)"

_HOST_LABELS = re.compile(r"[a-z0-9](?:[a-z0-9-]*[a-z0-9])?(?:\.[a-z0-9](?:[a-z0-9-]*[a-z0-9])?)*")
_NUMERIC_SEGMENT = re.compile(r"\d+")

T = TypeVar("T")
R = TypeVar("R")


def api_host_for(site: str) -> tuple[str, bool]:
    """Normalize what a partner typed into the API host, and say whether it was rewritten.

    Strips whitespace, scheme, path and a trailing dot and lower-cases; the browser host of a cloud region
    (``na.myconnectwise.net``) becomes its API host (``api-na.myconnectwise.net``, docs/connectwise/REFERENCE.md §1, §7). A port is
    kept (``host:port``). Empty input gives ``("", False)``; input that is not a host name raises ValueError with
    a message a partner understands. This does not decide whether the host is allowed (the SSRF guard does).
    """
    text = (site or "").strip()
    if not text:
        return "", False
    try:
        parts = urlsplit(text if "://" in text else f"//{text}")
        port = parts.port
    except ValueError:
        raise ValueError(f"{text!r} is not a valid ConnectWise site address.") from None
    if parts.username is not None or parts.password is not None:
        raise ValueError(
            "Enter only the host name of your ConnectWise site, without a user name or password."
        )
    host = (parts.hostname or "").rstrip(".").lower()
    if ":" in host:  # IPv6 literal: keep it bracketed, the guard decides about it
        return (f"[{host}]:{port}" if port is not None else f"[{host}]"), False
    try:
        host = host.encode("idna").decode("ascii")
    except UnicodeError:
        raise ValueError(f"{text!r} is not a valid host name.") from None
    if not _HOST_LABELS.fullmatch(host):
        raise ValueError(f"{text!r} is not a valid host name.")
    rewritten = False
    if f"api-{host}" in CLOUD_HOSTS:
        host, rewritten = f"api-{host}", True
    return (f"{host}:{port}" if port is not None else host), rewritten


def replace_operation(field: str, value: Any) -> dict[str, Any]:
    """One PATCH operation that sets ``field`` (a top-level field name, e.g. ``inactiveFlag``), the ONE place the
    product builds them.

    Decision (docs/connectwise/REFERENCE.md §5, assumption, not confirmed): the SPEC types
    ``PatchOperation.value`` as ``object``, which is how Swashbuckle writes a C# ``object`` property (any JSON
    value), so a scalar field takes a bare JSON scalar (``false``, ``"CalendarYear"``) and a reference takes
    ``{"id": N}`` (never the copied name). Raises ValueError for a reference without an integer ``id``."""
    if isinstance(value, dict):
        ref_id = value.get("id")
        if not isinstance(ref_id, int) or isinstance(ref_id, bool):
            raise ValueError(f"a reference value for {field!r} needs an integer id")
        value = {"id": ref_id}
    return {"op": "replace", "path": field, "value": value}


@dataclass(frozen=True)
class Credentials:
    """Where and who: ``origin`` is ``scheme://host[:port]`` (already vetted by the host guard).

    The private key is left out of ``repr`` so it cannot leak through a log line or a traceback.
    """

    origin: str
    company_id: str
    public_key: str
    private_key: str = field(repr=False)
    client_id: str

    def __post_init__(self) -> None:
        parts = urlsplit((self.origin or "").strip())
        if parts.scheme not in ("http", "https") or not parts.netloc or parts.path not in ("", "/"):
            raise ValueError(f"origin must be scheme://host[:port], got {self.origin!r}")
        if parts.query or parts.fragment or parts.username or parts.password:
            raise ValueError(f"origin must be scheme://host[:port], got {self.origin!r}")
        object.__setattr__(self, "origin", f"{parts.scheme}://{parts.netloc.lower()}")


@dataclass
class CallStats:
    """What a run stores about its API use. Thread-safe; ``ConnectWiseClient.stats`` returns a snapshot.

    ``calls``: every HTTP attempt (retries and discovery included); ``retries``: attempts that repeated an
    earlier one; ``errors``: attempts that ended without a 2xx (error status, redirect, connection failure or
    timeout); ``elapsed_ms``: time on the wire summed over attempts (more than wall time when concurrent);
    ``by_endpoint``: attempts per ``(method, path template)`` with ids as ``{id}``; ``intervals``: each attempt's
    ``(sent, answered)`` on ``time.perf_counter``'s clock (seconds), from which ``levels()`` counts round trips.
    """

    calls: int = 0
    retries: int = 0
    errors: int = 0
    elapsed_ms: float = 0.0
    by_endpoint: dict[tuple[str, str], int] = field(default_factory=dict)
    intervals: list[tuple[float, float]] = field(default_factory=list, repr=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, init=False, repr=False, compare=False)

    def record_call(
        self,
        method: str,
        template: str,
        elapsed_ms: float,
        *,
        failed: bool,
        interval: tuple[float, float] | None = None,
    ) -> None:
        with self._lock:
            self.calls += 1
            self.errors += int(failed)
            self.elapsed_ms += elapsed_ms
            key = (method, template)
            self.by_endpoint[key] = self.by_endpoint.get(key, 0) + 1
            if interval is not None:
                self.intervals.append(interval)

    def levels(self) -> int:
        """Round trips on the critical path, as observed: the longest chain of attempts in which each one was sent
        only after the one before it was answered (0 without calls). Attempts that overlap in time count as one
        level, so a wave of concurrent reads is one level and a read that waited for another's answer is the next
        (an attempt held back by the in-flight bound counts as a level too: it did wait)."""
        with self._lock:
            spans = sorted(self.intervals, key=lambda iv: iv[1])
        depth: list[int] = []
        ends: list[float] = []
        for sent, answered in spans:
            best = 0
            for end, d in zip(ends, depth, strict=True):
                if end <= sent and d > best:
                    best = d
            ends.append(answered)
            depth.append(best + 1)
        return max(depth, default=0)

    def record_retry(self) -> None:
        with self._lock:
            self.retries += 1

    def snapshot(self) -> CallStats:
        with self._lock:
            return CallStats(
                self.calls,
                self.retries,
                self.errors,
                self.elapsed_ms,
                dict(self.by_endpoint),
                builtins.list(self.intervals),
            )

    def as_dict(self) -> dict[str, Any]:
        s = self.snapshot()
        return {
            "calls": s.calls,
            "retries": s.retries,
            "errors": s.errors,
            "elapsed_ms": round(s.elapsed_ms, 1),
            "by_endpoint": {f"{m} {p}": n for (m, p), n in sorted(s.by_endpoint.items())},
        }


def path_template(path: str) -> str:
    """``company/companies/5/notes?x=1`` -> ``company/companies/{id}/notes`` (for counting, not for requests)."""
    path = path.split("?", 1)[0].strip("/")
    return "/".join("{id}" if _NUMERIC_SEGMENT.fullmatch(seg) else seg for seg in path.split("/"))


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


def _check_page_size(page_size: int) -> int:
    if not isinstance(page_size, int) or isinstance(page_size, bool) or not 1 <= page_size <= MAX_PAGE_SIZE:
        raise ValueError(
            f"page_size must be between 1 and {MAX_PAGE_SIZE} (docs/connectwise/REFERENCE.md §4), got {page_size!r}"
        )
    return page_size


def _clean_path(path: str) -> str:
    """A path relative to ``.../apis/3.0/``; the trailing slash is kept (some SPEC paths carry one)."""
    path = (path or "").lstrip("/")
    if not path or "://" in path or "?" in path or "#" in path or ".." in path.split("/"):
        raise ValueError(f"not an API path: {path!r} (give the query as parameters)")
    return path


def _first_key(records: list[Any]) -> Any:
    """What identifies a page: its first record's id, or the whole first record when ``fields`` dropped the id."""
    if not records:
        return None
    first = records[0]
    if isinstance(first, dict) and "id" in first:
        return ("id", first["id"])
    return ("record", json.dumps(first, sort_keys=True, default=str))


def _url_key(url: httpx.URL) -> tuple[str, tuple[tuple[str, str], ...]]:
    return url.path, tuple(sorted(url.params.multi_items()))


_NO_BODY = object()


@functools.lru_cache(maxsize=1)
def shared_ssl_context() -> ssl.SSLContext:
    """One certificate-verifying TLS context per process: building one loads the CA bundle (tens of ms), and a
    context is safe to share between connections and threads."""
    return httpx.create_ssl_context(verify=True, trust_env=False)


class ConnectWiseClient:
    """One client per tenant connection (and per task run). See the module docstring for concurrency.

    ``codebase`` may be passed in (the one stored from the last run) to save the discovery call; otherwise it is
    discovered on first use. Retries (docs/connectwise/REFERENCE.md §6): 429 and 503 for every method, honouring
    ``Retry-After`` up to ``retry_after_cap`` seconds (a longer ``Retry-After`` is not retried early: the error is
    raised at once, its ``retry_after`` telling the caller how long to wait); other 5xx, timeouts and connection
    errors only for idempotent methods, except a
    failure to connect, which is retried for every method because nothing was sent. Backoff is exponential with
    full jitter. ``sleep`` and ``rng`` are injectable so tests are instant and repeatable.

    ``shared_slot``: a callable returning a context manager held around every attempt on the wire, inside the
    per-client bound; the worker side passes one that bounds calls per ConnectWise host and per clientId across
    every client and process (``onboarding.limits``). It may raise a ConnectWiseError (e.g. ``Timeout`` when no
    slot frees in time), which is treated like a failure before anything was sent.
    """

    def __init__(
        self,
        credentials: Credentials,
        *,
        transport: httpx.BaseTransport | None = None,
        timeout: httpx.Timeout | None = DEFAULT_TIMEOUT,
        max_in_flight: int = 8,
        sleep: Callable[[float], None] = time.sleep,
        codebase: str | None = None,
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
        self._codebase = normalize_codebase(codebase) if codebase else None
        self._company_info: CompanyInfo | None = None
        self._discover_lock = threading.Lock()
        self._first_discovery = threading.Lock()
        self._in_flight = threading.BoundedSemaphore(max_in_flight)
        self._shared_slot = shared_slot
        self._stats = CallStats()
        self._last_counts: dict[tuple[str, tuple[tuple[str, str], ...]], int] = {}
        self._counts_lock = threading.Lock()
        self._discovering = threading.Lock()  # held while a companyinfo read is on the wire
        self._discovered_at = -math.inf  # perf_counter when the last discovery was sent

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

    # -- lifecycle and state ---------------------------------------------------------------------------------

    def __enter__(self) -> ConnectWiseClient:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def close(self) -> None:
        self._http.close()

    def __repr__(self) -> str:
        return f"<ConnectWiseClient {self._origin} company={self._creds.company_id!r}>"

    @property
    def stats(self) -> CallStats:
        """A snapshot of the calls made so far."""
        return self._stats.snapshot()

    @property
    def codebase(self) -> str | None:
        """The codebase in use (``v4_6_release/``), or None before discovery; store it to skip discovery later."""
        return self._codebase

    @property
    def company_info(self) -> CompanyInfo | None:
        """The last ``discover()`` result, if discovery ran."""
        return self._company_info

    @property
    def base_url(self) -> str:
        """``{origin}/{codebase}apis/3.0/`` (docs/connectwise/REFERENCE.md §1); discovers the codebase when it is not known yet."""
        return f"{self._origin}/{self._ensure_codebase()}apis/3.0/"

    # -- discovery -------------------------------------------------------------------------------------------

    def discover(self) -> CompanyInfo:
        """``GET {origin}/login/companyinfo/{companyId}``, unauthenticated (docs/connectwise/REFERENCE.md §1). Caches the codebase.

        Raises UnknownCompany when the body is ``null`` (how ConnectWise answers an unknown company id).
        """
        path = f"login/companyinfo/{quote(self._creds.company_id, safe='')}"
        with self._discovering:
            body, response = self._request("GET", path, discovery=True)
            answered = time.perf_counter()
        if body is None:
            if response.content.strip() == b"null":
                raise errors.UnknownCompany(
                    f"ConnectWise at {self._origin} does not know the company id "
                    f"{self._creds.company_id!r}: check the company id you log in with",
                    status=response.status_code,
                    request_id=response.headers.get("x-cw-request-id"),
                    method="GET",
                    path="login/companyinfo/{companyId}",
                )
            raise self._unexpected(response, "GET", path, "an empty company info")
        try:
            info = CompanyInfo.model_validate(body)
        except ValidationError:
            raise self._unexpected(response, "GET", path, "company info without a usable Codebase") from None
        with self._discover_lock:
            self._codebase = info.codebase
            self._company_info = info
            self._discovered_at = max(self._discovered_at, answered)
        return info

    def _ensure_codebase(self) -> str:
        if self._codebase is None:
            with self._first_discovery:  # one discovery when many threads start at once
                if self._codebase is None:
                    self.discover()
        assert self._codebase is not None
        return self._codebase

    # -- resources (paths relative to .../apis/3.0/, docs/connectwise/REFERENCE.md §2) --------------------------------------------

    def system_info(self) -> dict[str, Any]:
        """``GET system/info``: the cheapest authenticated call (docs/connectwise/REFERENCE.md §1); see ``schemas.SystemInfo``."""
        return self._expect_dict(self.get("system/info"), "system/info")

    def get(self, path: str, *, params: Mapping[str, Any] | None = None, fields: str | None = None) -> Any:
        """``GET {path}``: one record (dict) or one page (list), as the API returns it (docs/connectwise/REFERENCE.md §2)."""
        query = dict(params or {})
        if fields:
            query["fields"] = fields
        body, _ = self._request("GET", path, params=query)
        return body

    def count(
        self,
        path: str,
        *,
        conditions: str | None = None,
        child_conditions: str | None = None,
        custom_field_conditions: str | None = None,
    ) -> int:
        """``GET {path}/count`` with the same filters as a list: ``{"count": N}`` (docs/connectwise/REFERENCE.md §4)."""
        query = _filters(conditions, child_conditions, custom_field_conditions)
        count_path = f"{_clean_path(path).rstrip('/')}/count"
        body, response = self._request("GET", count_path, params=query)
        value = body.get("count") if isinstance(body, dict) else None
        if not isinstance(value, int) or isinstance(value, bool) or value < 0:
            raise self._unexpected(response, "GET", count_path, "a count that is not a number")
        return value

    def list(
        self,
        path: str,
        *,
        conditions: str | None = None,
        fields: str | None = None,
        order_by: str | None = None,
        page_size: int = MAX_PAGE_SIZE,
        child_conditions: str | None = None,
        custom_field_conditions: str | None = None,
        params: Mapping[str, Any] | None = None,
        expected_count: int | None = None,
    ) -> builtins.list[dict[str, Any]]:
        """Every record matching the filters (docs/connectwise/REFERENCE.md §4).

        ``/count`` and page 1 are fetched concurrently, and the remaining pages as soon as the count is known,
        concurrently (bounded by ``max_in_flight``). ``expected_count`` (the count the last read saw, an
        assumption about the data that may be stale) lets the pages it predicts start together with ``/count``,
        so that unchanged data costs one round trip; only pages that growth added wait for the count (a second
        round trip), and when the data shrank the predicted pages past the end come back short or empty (each
        counted as a call). The count bounds the pages requested; a short or empty page ends the list (records
        deleted meanwhile). A page that starts with a record already seen (a server ignoring ``page``) raises
        RepeatedPage. ``last_count(path, conditions=...)`` gives the count this call saw, for next time.
        """
        size = _check_page_size(page_size)
        filters = _filters(conditions, child_conditions, custom_field_conditions)
        query = {**dict(params or {}), **filters}
        if fields:
            query["fields"] = fields
        if order_by:
            query["orderBy"] = order_by
        predicted = 1
        if expected_count is not None and not isinstance(expected_count, bool) and expected_count > 0:
            predicted = max(1, math.ceil(int(expected_count) / size))

        def page(number: int) -> builtins.list[dict[str, Any]]:
            body, response = self._request("GET", path, params={**query, "page": number, "pageSize": size})
            return self._expect_list(body, response, path)

        # The predicted pages start together with /count, without waiting for it; the rest as soon as it answers.
        futures: dict[int, Any] = {}
        with ThreadPoolExecutor(max_workers=self._max_in_flight, thread_name_prefix="cw-list") as pool:
            for number in range(1, predicted + 1):  # page 1 first, as it always was
                futures[number] = pool.submit(page, number)
            count_future = pool.submit(self.count, path, **_filter_kwargs(filters))
            try:
                total = count_future.result()
                for number in range(predicted + 1, math.ceil(total / size) + 1):
                    futures[number] = pool.submit(page, number)
                records: builtins.list[dict[str, Any]] = []
                seen: set[Any] = set()
                for number in sorted(futures):
                    rows = futures[number].result()
                    key = _first_key(rows)
                    if key is not None and key in seen:
                        raise errors.RepeatedPage(
                            f"GET {path}: page {number} repeats a page already read; stopped instead of looping",
                            method="GET",
                            path=path,
                        )
                    seen.add(key)
                    records.extend(rows)
                    if len(rows) < size or len(records) >= total:
                        break
            except BaseException:
                for f in futures.values():
                    f.cancel()
                raise
            for f in futures.values():
                f.cancel()  # pages past a short one (the data shrank meanwhile): not needed
        with self._counts_lock:
            self._last_counts[self._count_key(path, filters)] = total
        return records

    def last_count(
        self,
        path: str,
        *,
        conditions: str | None = None,
        child_conditions: str | None = None,
        custom_field_conditions: str | None = None,
    ) -> int | None:
        """The ``/count`` the last ``list()`` of this path and filters saw in this client, or None."""
        key = self._count_key(path, _filters(conditions, child_conditions, custom_field_conditions))
        with self._counts_lock:
            return self._last_counts.get(key)

    @staticmethod
    def _count_key(path: str, filters: Mapping[str, str]) -> tuple[str, tuple[tuple[str, str], ...]]:
        return _clean_path(path).rstrip("/"), tuple(sorted(filters.items()))

    def iter_pages(
        self,
        path: str,
        *,
        conditions: str | None = None,
        fields: str | None = None,
        order_by: str | None = None,
        page_size: int = MAX_PAGE_SIZE,
        child_conditions: str | None = None,
        custom_field_conditions: str | None = None,
        params: Mapping[str, Any] | None = None,
        forward_only: bool = False,
    ) -> Iterator[builtins.list[dict[str, Any]]]:
        """Yield pages one at a time, following the ``Link`` header's ``rel="next"`` (docs/connectwise/REFERENCE.md §4).

        The ``Link`` URLs may name the browser host: only their path and query are used, sent to our origin, and
        a ``Link`` naming any other host raises HostNotAllowed. With ``forward_only`` the request carries
        ``pagination-type: forward-only``. Without any ``Link`` header, pages are requested by number until a
        short page. A page URL or first record seen before raises RepeatedPage.
        """
        size = _check_page_size(page_size)
        query: dict[str, Any] = {
            **dict(params or {}),
            **_filters(conditions, child_conditions, custom_field_conditions),
        }
        if fields:
            query["fields"] = fields
        if order_by:
            query["orderBy"] = order_by
        query["pageSize"] = size
        headers = {"pagination-type": "forward-only"} if forward_only else None
        if not forward_only:
            query["page"] = 1
        url: str | None = None
        seen_urls: set[tuple[str, tuple[tuple[str, str], ...]]] = set()
        seen_pages: set[Any] = set()
        while True:
            body, response = self._request(
                "GET", path, params=query if url is None else None, url=url, headers=headers
            )
            seen_urls.add(_url_key(response.request.url))
            rows = self._expect_list(body, response, path)
            key = _first_key(rows)
            if key is not None and key in seen_pages:
                raise errors.RepeatedPage(
                    f"GET {path}: a page repeats one already read; stopped instead of looping",
                    method="GET",
                    path=path,
                )
            if not rows:
                return
            seen_pages.add(key)
            yield rows
            next_link = response.links.get("next", {}).get("url")
            if next_link:
                target = self._same_origin(next_link, path)
                if _url_key(target) in seen_urls:
                    raise errors.RepeatedPage(
                        f"GET {path}: the next page link points to a page already read; stopped instead of looping",
                        method="GET",
                        path=path,
                    )
                url = str(target)
            elif "link" not in response.headers and not forward_only and len(rows) == size:
                query = {**query, "page": query["page"] + 1}
                url = None
            else:
                return

    def create(self, path: str, body: Mapping[str, Any]) -> dict[str, Any]:
        """``POST {path}``: 201 with the created record (docs/connectwise/REFERENCE.md §5). A duplicate raises BadRequest with
        ``object_exists`` (docs/connectwise/REFERENCE.md §6)."""
        result, response = self._request("POST", path, json_body=dict(body))
        return self._expect_dict(result, path, response)

    def put(self, path: str, body: Mapping[str, Any]) -> dict[str, Any]:
        """``PUT {path}``: replace a record, 200 with the record (docs/connectwise/REFERENCE.md §5)."""
        result, response = self._request("PUT", path, json_body=dict(body))
        return self._expect_dict(result, path, response)

    def patch(self, path: str, operations: builtins.list[dict[str, Any]]) -> dict[str, Any]:
        """``PATCH {path}`` with an array of operations such as
        ``[{"op": "replace", "path": "inactiveFlag", "value": False}]`` (docs/connectwise/REFERENCE.md §5)."""
        if not isinstance(operations, builtins.list | tuple):
            raise TypeError("patch takes a list of operations (docs/connectwise/REFERENCE.md §5)")
        result, response = self._request("PATCH", path, json_body=builtins.list(operations))
        return self._expect_dict(result, path, response)

    def delete(self, path: str) -> None:
        """``DELETE {path}``: 204 (docs/connectwise/REFERENCE.md §5)."""
        self._request("DELETE", path)

    def map_concurrent(self, fn: Callable[[T], R], items: Iterable[T]) -> builtins.list[R]:
        """``[fn(item) for item in items]`` with up to ``max_in_flight`` running at once; results in input order.

        The first exception (in input order) is raised once the running calls have finished; calls not yet
        started are cancelled.
        """
        work = builtins.list(items)
        if len(work) <= 1:
            return [fn(item) for item in work]
        with ThreadPoolExecutor(
            max_workers=min(self._max_in_flight, len(work)), thread_name_prefix="cw"
        ) as pool:
            futures = [pool.submit(fn, item) for item in work]
            try:
                return [f.result() for f in futures]
            except BaseException:
                for f in futures:
                    f.cancel()
                raise

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
        path = _clean_path(path)
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
            elif discovery:
                target = f"{self._origin}/{path}"
            else:
                codebase = self._ensure_codebase()
                target = f"{self._origin}/{codebase}apis/3.0/{path}"
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
                _json_or_none(response),
                method=method,
                path=path,
                request_id=request_id,
                retry_after=parse_retry_after(response.headers.get("retry-after")),
                redact=self._redact,
            )
            if isinstance(error, errors.NotFound) and codebase is not None and not rediscovered:
                rediscovered = True
                if self._codebase_changed_since(codebase, attempt_started):
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

    def _codebase_changed_since(self, used: str, sent_at: float) -> bool:
        """After a 404: say whether the codebase moved. Re-reads companyinfo unless a discovery answered after
        the 404's request was sent (one started alongside it, or by another thread after a 404 of its own), so
        that a wave of reads on a stale codebase costs one re-discovery, not one per read."""
        with self._discovering:  # wait for a companyinfo read already on the wire
            pass
        if self._codebase != used:
            return True
        if self._discovered_at >= sent_at:
            return False  # fresh discovery agrees with the codebase used: the 404 is about the record
        try:
            info = self.discover()
        except errors.ConnectWiseError:
            return False  # keep the original 404
        return info.codebase != used

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

    def _expect_list(self, body: Any, response: httpx.Response, path: str) -> builtins.list[dict[str, Any]]:
        if body is None:
            return []
        if not isinstance(body, builtins.list):
            raise self._unexpected(response, "GET", path, "a page that is not a list")
        return body

    def _expect_dict(self, body: Any, path: str, response: httpx.Response | None = None) -> dict[str, Any]:
        if isinstance(body, dict):
            return body
        if response is None:
            raise errors.UnexpectedResponse(f"{path}: unexpected response: not a JSON object", path=path)
        raise self._unexpected(response, response.request.method, path, "a body that is not a JSON object")

    def _same_origin(self, link: str, path: str) -> httpx.URL:
        """The ``Link`` target moved onto our origin: ConnectWise names the browser host there (docs/connectwise/REFERENCE.md §4)."""
        ours = httpx.URL(self._origin)
        target = ours.join(link)
        allowed = {ours.host, ours.host.removeprefix("api-")}
        if target.host not in allowed:
            raise errors.HostNotAllowed(
                f"GET {path}: the next page link points to {target.host}, not {ours.host}; not following it",
                method="GET",
                path=path,
            )
        api_root = f"/{self._ensure_codebase()}apis/3.0/"
        if not target.path.startswith(api_root):
            raise errors.UnexpectedResponse(
                f"GET {path}: unexpected response: the next page link leaves {api_root}",
                method="GET",
                path=path,
            )
        return ours.copy_with(raw_path=target.raw_path)


def _filters(
    conditions: str | None, child_conditions: str | None, custom_field_conditions: str | None
) -> dict[str, str]:
    query = {}
    if conditions:
        query["conditions"] = str(conditions)
    if child_conditions:
        query["childConditions"] = str(child_conditions)
    if custom_field_conditions:
        query["customFieldConditions"] = str(custom_field_conditions)
    return query


def _filter_kwargs(filters: Mapping[str, str]) -> dict[str, str | None]:
    return {
        "conditions": filters.get("conditions"),
        "child_conditions": filters.get("childConditions"),
        "custom_field_conditions": filters.get("customFieldConditions"),
    }


def _json_or_none(response: httpx.Response) -> Any:
    try:
        return response.json()
    except ValueError:
        return None
