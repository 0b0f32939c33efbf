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

import builtins
import hashlib
import math
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar
from urllib.parse import quote

from pydantic import ValidationError

from . import errors
from .callstats import CallStats as CallStats  # docs/INTERFACES.md: importable from connectwise.client
from .paging import (
    MAX_PAGE_SIZE,
    check_page_size,
    filter_kwargs,
    filter_params,
    link_on_origin,
    page_key,
    url_key,
)
from .schemas import CompanyInfo, normalize_codebase
from .sites import CLOUD_HOSTS as CLOUD_HOSTS  # docs/INTERFACES.md: importable from connectwise.client
from .sites import Credentials as Credentials  # docs/INTERFACES.md: importable from connectwise.client
from .sites import api_host_for as api_host_for  # docs/INTERFACES.md: importable from connectwise.client
from .transport import Transport, clean_path

T = TypeVar("T")
R = TypeVar("R")


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


class ConnectWiseClient(Transport):
    """One client per tenant connection (and per task run). See the module docstring for concurrency.

    ``codebase`` may be passed in (the one stored from the last run) to save the discovery call; otherwise it is
    discovered on first use. Retries, the in-flight bound and ``shared_slot``: ``connectwise.transport.Transport``.
    """

    def __init__(self, credentials: Credentials, *, codebase: str | None = None, **options: Any) -> None:
        """``options``: the keyword arguments of ``Transport`` (``transport``, ``timeout``, ``max_in_flight``,
        ``sleep``, ``max_attempts``, ``backoff_base``, ``backoff_max``, ``retry_after_cap``, ``rng``,
        ``shared_slot``; docs/INTERFACES.md)."""
        super().__init__(credentials, **options)
        self._codebase = normalize_codebase(codebase) if codebase else None
        self._company_info: CompanyInfo | None = None
        self._discover_lock = threading.Lock()
        self._first_discovery = threading.Lock()
        self._last_counts: dict[tuple[str, tuple[tuple[str, str], ...]], int] = {}
        self._last_digests: dict[tuple[str, tuple[tuple[str, str], ...]], str] = {}
        self._counts_lock = threading.Lock()
        self._discovering = threading.Lock()  # held while a companyinfo read is on the wire
        self._discovered_at = -math.inf  # perf_counter when the last discovery was sent

    def __repr__(self) -> str:
        return f"<ConnectWiseClient {self._origin} company={self._creds.company_id!r}>"

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

    def _target(self, path: str, discovery: bool) -> tuple[str, str | None]:
        """Discovery goes to the origin; every API call to ``{origin}/{codebase}apis/3.0/`` (REFERENCE.md §1)."""
        if discovery:
            return f"{self._origin}/{path}", None
        codebase = self._ensure_codebase()
        return f"{self._origin}/{codebase}apis/3.0/{path}", codebase

    def _codebase_moved(self, used: str, sent_at: float) -> bool:
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
        query = filter_params(conditions, child_conditions, custom_field_conditions)
        count_path = f"{clean_path(path).rstrip('/')}/count"
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
        size = check_page_size(page_size)
        filters = filter_params(conditions, child_conditions, custom_field_conditions)
        query = {**dict(params or {}), **filters}
        if fields:
            query["fields"] = fields
        if order_by:
            query["orderBy"] = order_by
        predicted = 1
        if expected_count is not None and not isinstance(expected_count, bool) and expected_count > 0:
            predicted = max(1, math.ceil(int(expected_count) / size))

        def page(number: int) -> tuple[builtins.list[dict[str, Any]], bytes]:
            body, response = self._request("GET", path, params={**query, "page": number, "pageSize": size})
            # The page's digest in this reading thread (hashlib releases the GIL on large buffers): last_digest.
            return self._expect_list(body, response, path), hashlib.blake2b(response.content).digest()

        # The predicted pages start together with /count, without waiting for it; the rest as soon as it answers.
        futures: dict[int, Any] = {}
        with ThreadPoolExecutor(max_workers=self._max_in_flight, thread_name_prefix="cw-list") as pool:
            for number in range(1, predicted + 1):  # page 1 first, as it always was
                futures[number] = pool.submit(page, number)
            count_future = pool.submit(self.count, path, **filter_kwargs(filters))
            try:
                total = count_future.result()
                for number in range(predicted + 1, math.ceil(total / size) + 1):
                    futures[number] = pool.submit(page, number)
                records: builtins.list[dict[str, Any]] = []
                seen: set[Any] = set()
                digest = hashlib.blake2b(digest_size=16)
                for number in sorted(futures):
                    rows, page_digest = futures[number].result()
                    digest.update(page_digest)
                    key = page_key(rows)
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
            self._last_digests[self._count_key(path, filters)] = digest.hexdigest()
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
        return self._last_seen(self._last_counts, path, conditions, child_conditions, custom_field_conditions)

    def last_digest(
        self,
        path: str,
        *,
        conditions: str | None = None,
        child_conditions: str | None = None,
        custom_field_conditions: str | None = None,
    ) -> str | None:
        """A key (32 hex characters) of the pages the last ``list()`` of this path and filters read in this client,
        as ConnectWise sent them (a BLAKE2b of each page's body, in page order), or None. Equal keys mean the
        same answers; a key that differs may still hold the same records (sent in another form)."""
        return self._last_seen(
            self._last_digests, path, conditions, child_conditions, custom_field_conditions
        )

    def _last_seen(self, seen: dict, path: str, *filters: str | None) -> Any:
        """What ``list()`` kept in ``seen`` for this path and filters (``conditions``, ``child_conditions``,
        ``custom_field_conditions``), or None."""
        with self._counts_lock:
            return seen.get(self._count_key(path, filter_params(*filters)))

    @staticmethod
    def _count_key(path: str, filters: Mapping[str, str]) -> tuple[str, tuple[tuple[str, str], ...]]:
        return clean_path(path).rstrip("/"), tuple(sorted(filters.items()))

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
        size = check_page_size(page_size)
        query: dict[str, Any] = {
            **dict(params or {}),
            **filter_params(conditions, child_conditions, custom_field_conditions),
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
            seen_urls.add(url_key(response.request.url))
            rows = self._expect_list(body, response, path)
            key = page_key(rows)
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
                target = link_on_origin(self._origin, next_link, f"/{self._ensure_codebase()}apis/3.0/", path)
                if url_key(target) in seen_urls:
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
