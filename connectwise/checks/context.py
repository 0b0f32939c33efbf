"""One run's ConnectWise data: every resource fetched at most once, the independent ones concurrently.

The runner asks each requested step what it ``needs`` and prefetches the union in one concurrent wave, so a full
verify costs the pages the tenant's data needs plus a constant, and its latency is about one chain of calls (count,
then the pages) rather than one per resource. A step reads with ``ctx.get(key)``; a failed read raises
``ResourceError`` carrying the ConnectWise error and the security role function that guards the path, which the
runner turns into ``step.read_forbidden`` or ``step.check_failed``.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from connectwise.errors import ConnectWiseError

if TYPE_CHECKING:
    from .base import ConnectWiseApi
    from .choices import ConnectionInfo, TenantChoices

PAGE_SIZE = 1000  # docs/connectwise/REFERENCE.md §4: the hard maximum

# Role functions as a partner admin finds them under System > Security Roles (docs/connectwise/REFERENCE.md §2 and the sandbox
# contract in PRODUCT.md: which module function guards which path).
COMPANY_MAINTENANCE = "Companies > Company Maintenance"
CONTACTS = "Companies > Contacts"
AGREEMENTS = "Finance > Agreements"
PRODUCT_CATALOG = "Procurement > Product Catalog"
TABLE_SETUP = "System > Table Setup"


@dataclass(frozen=True)
class Resource:
    key: str
    path: str
    role_function: str  # the module function whose Inquire level the read needs
    fields: str | None = None
    conditions: str | None = None
    customize_item: str | None = None  # the Table Setup "Access Allowed" item the read also needs
    large: bool = False  # True: may span many pages, read through list() (count, then pages concurrently)
    countable: bool = True  # False: no documented /count; one GET of one full page is all we read

    @property
    def needed_role(self) -> str:
        text = f"{self.role_function}: Inquire"
        if self.customize_item:
            text += f' (and the Table Setup customize item "{self.customize_item}")'
        return text


# fields= keeps payloads small (docs/connectwise/REFERENCE.md §4): only what the checks and the customers page read.
RESOURCES: dict[str, Resource] = {
    r.key: r
    for r in (
        Resource("my_security", "system/mySecurity", "System > My Security", countable=False),
        Resource(
            "customize_items", "system/mySecurity/customizeItems", "System > My Security", countable=False
        ),
        Resource(
            "companies",
            "company/companies",
            COMPANY_MAINTENANCE,
            fields="id,identifier,name,status/id,status/name,deletedFlag,defaultContact/id",
            large=True,
        ),
        Resource(
            "company_statuses",
            "company/companies/statuses",
            COMPANY_MAINTENANCE,
            fields="id,name,inactiveFlag,disallowSavingFlag",
            customize_item="Company / Company Status",
        ),
        Resource(
            "agreements",
            "finance/agreements",
            AGREEMENTS,
            fields=(
                "id,name,type/id,type/name,company/id,company/name,agreementStatus,cancelledFlag,dateCancelled,"
                "startDate,billStartDate,endDate,noEndingDateFlag,parentAgreement/id,billingCycle/id,billingCycle/name,invoicingCycle,"
                "prorateFlag,billOneTimeFlag,oneTimeFlag"
            ),
            large=True,
        ),
        Resource(
            "agreement_types",
            "finance/agreements/types",
            AGREEMENTS,
            fields="id,name,inactiveFlag,billOneTimeFlag,oneTimeFlag",
        ),
        Resource(
            "billing_cycles", "finance/billingCycles", AGREEMENTS, fields="id,identifier,name,billingOptions"
        ),
        # ConnectWise lists inactive catalog items only when the conditions do not exclude them: no
        # inactiveFlag filter here, so "all statuses" come back (docs/connectwise/REFERENCE.md §8 "Status All").
        Resource(
            "misc_catalog",
            "procurement/catalog",
            PRODUCT_CATALOG,
            fields="id,identifier,description,inactiveFlag",
            conditions='identifier like "misc%"',
        ),
        Resource(
            "categories",
            "procurement/categories",
            TABLE_SETUP,
            fields="id,name,inactiveFlag",
            customize_item="Products / Category",
        ),
        Resource(
            "subcategories",
            "procurement/subcategories",
            TABLE_SETUP,
            fields="id,name,inactiveFlag,category/id,category/name",
            customize_item="Products / Subcategories",
        ),
        Resource(
            "product_types",
            "procurement/types",
            TABLE_SETUP,
            fields="id,name,inactiveFlag",
            customize_item="Product Type",
        ),
        Resource(
            "uoms",
            "procurement/unitOfMeasures",
            TABLE_SETUP,
            fields="id,name,inactiveFlag",
            customize_item="Product / UOM",
        ),
    )
}

MAX_PARALLEL_RESOURCES = 16  # more than a run ever needs: the client's semaphore bounds requests in flight
# Keys of the connection step's two reads in the same wave as the resources (not in RESOURCES).
COMPANY_INFO = "_companyinfo"
SYSTEM_INFO = "_system/info"


@dataclass
class ReadHints:
    """What the last verify learned about a tenant's data, kept with the connection to plan the next one.

    ``counts``: the last ``/count`` of each large resource (``RESOURCES`` key -> records), an assumption about
    the data that may be stale: it only decides which pages start in the first wave, never what is read in the
    end. ``observed``: the counts this run saw, filled in by the run for the caller to store.

    ``directory_source``: the source key (``customers.directory_source``) of the company list the tenant already
    holds, set by the caller from the tenant (``Tenant.directory_source``), not kept with the connection: the
    customers step does not build again a list that would come out the same. "" means build it.
    """

    counts: dict[str, int] = field(default_factory=dict)
    observed: dict[str, int] = field(default_factory=dict)
    directory_source: str = ""

    @classmethod
    def from_stored(cls, data: Any) -> ReadHints:
        """From the stored JSON (``{"counts": {key: n}}``); anything unreadable is ignored, never an error."""
        counts: dict[str, int] = {}
        raw = data.get("counts") if isinstance(data, dict) else None
        if isinstance(raw, dict):
            for key, value in raw.items():
                if key in RESOURCES and isinstance(value, int) and not isinstance(value, bool) and value >= 0:
                    counts[key] = value
        return cls(counts=counts)

    def to_stored(self) -> dict[str, Any]:
        """The JSON to keep for the next run: this run's counts over the previous ones."""
        return {"counts": {**self.counts, **self.observed}}


class ResourceError(Exception):
    """A read a step needed failed. ``cause`` is the ConnectWise error, ``resource`` what was read."""

    def __init__(self, resource: Resource, cause: ConnectWiseError) -> None:
        super().__init__(f"reading {resource.path} failed: {cause}")
        self.resource = resource
        self.cause = cause


@dataclass
class RunContext:
    client: ConnectWiseApi | None  # ConnectWiseClient (or a test double with the same methods)
    choices: TenantChoices
    connection: ConnectionInfo | None = None
    now: datetime = field(default_factory=lambda: datetime.now(UTC))
    memo: dict[str, Any] = field(default_factory=dict)  # derived values steps share (e.g. target agreements)
    hints: ReadHints | None = None
    _results: dict[str, tuple[Any, BaseException | None]] = field(default_factory=dict, repr=False)
    _digests: dict[str, str] = field(default_factory=dict, repr=False)
    _futures: dict[str, Future] = field(default_factory=dict, repr=False)
    _pool: ThreadPoolExecutor | None = field(default=None, repr=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def start(self, keys: Iterable[str], *, connection_reads: bool = False) -> None:
        """Start reading every resource in ``keys`` not yet loaded or started, in the background, and return at
        once (``get`` and ``prefetch`` wait for them). With ``connection_reads`` the connection step's
        companyinfo and system/info start in the same wave (``discover``/``system_info`` then use them)."""
        todo = [k for k in dict.fromkeys(keys) if k not in self._results and k not in self._futures]
        # The paged resources first: their pages take the longest to parse once they are in, so they go out first
        # (and their parsing starts while the small answers are still coming).
        todo.sort(key=lambda k: not RESOURCES[k].large)
        calls: list[tuple[str, Callable[[], None]]] = []
        if connection_reads:
            for key, fn in ((COMPANY_INFO, self.client.discover), (SYSTEM_INFO, self.client.system_info)):
                if key not in self._futures and key not in self._results:
                    calls.append((key, lambda key=key, fn=fn: self._keep(key, fn)))
        calls.extend((k, lambda k=k: self._load(k)) for k in todo)
        if not calls:
            return
        with self._lock:
            if self._pool is None:
                # Our own pool rather than client.map_concurrent: list() may itself fan pages out through the
                # client, and the client's in-flight bound is what protects the tenant either way.
                self._pool = ThreadPoolExecutor(max_workers=MAX_PARALLEL_RESOURCES, thread_name_prefix="ctx")
            for key, fn in calls:
                self._futures[key] = self._pool.submit(fn)

    def start_wave(self, keys: Iterable[str]) -> None:
        """The first wave of a verify: the connection step's companyinfo and system/info and every resource in
        ``keys``, all at once. Without a known codebase, companyinfo is read first (it tells the codebase every
        other path needs) and the rest start only when it worked, so an unknown company costs one call."""
        if not getattr(self.client, "codebase", None):
            self._keep(COMPANY_INFO, self.client.discover)
            if self._results[COMPANY_INFO][1] is not None:
                return  # the connection step reports it; nothing else is read
        self.start(keys, connection_reads=True)

    def prefetch(self, keys: Iterable[str]) -> None:
        """Fetch every resource in ``keys`` not yet loaded, concurrently. Failures are kept for ``get``."""
        keys = list(dict.fromkeys(keys))
        todo = [k for k in keys if k not in self._results and k not in self._futures]
        if len(todo) == 1 and not any(k in self._futures for k in keys):
            self._load(todo[0])
            return
        self.start(keys)
        for key in keys:
            self._wait(key)

    def close(self) -> None:
        """Stop what was started and not needed (e.g. the connection failed): queued reads are cancelled, reads
        on the wire finish. Safe to call more than once."""
        with self._lock:
            pool, self._pool = self._pool, None
        if pool is not None:
            pool.shutdown(wait=True, cancel_futures=True)

    def discover(self) -> Any:
        """``client.discover()``, from the first wave when it was started there (raises what it raised)."""
        return self._connection_read(COMPANY_INFO, self.client.discover)

    def system_info(self) -> Any:
        """``client.system_info()``, from the first wave when it was started there (raises what it raised)."""
        return self._connection_read(SYSTEM_INFO, self.client.system_info)

    def get(self, key: str) -> Any:
        """The resource's records (fetching it now if no prefetch did); raises ResourceError on a failed read."""
        self._wait(key)
        if key not in self._results:
            self._load(key)
        data, error = self._results[key]
        if error is not None:
            raise ResourceError(RESOURCES[key], error)  # type: ignore[arg-type]
        return data

    def error_of(self, key: str) -> ConnectWiseError | None:
        """The error of a failed read, None when it worked (fetching it now if needed)."""
        self._wait(key)
        if key not in self._results:
            self._load(key)
        return self._results[key][1]  # type: ignore[return-value]

    def loaded_ok(self, key: str) -> bool:
        """True when the resource was already read successfully (no new call)."""
        return key in self._results and self._results[key][1] is None

    def digest_of(self, key: str) -> str | None:
        """The client's ``last_digest`` of a large resource this run read (a key of its pages as sent), or None
        when the read failed or the client keeps no digests (a test double)."""
        return self._digests.get(key)

    def remember(self, key: str, compute: Callable[[], Any]) -> Any:
        if key not in self.memo:
            self.memo[key] = compute()
        return self.memo[key]

    def _wait(self, key: str) -> None:
        future = self._futures.get(key)
        if future is not None and key not in self._results:
            future.result()  # _load and _keep never raise; a cancelled read raises CancelledError here

    def _connection_read(self, key: str, fn: Callable[[], Any]) -> Any:
        self._wait(key)
        if key not in self._results:
            return fn()
        value, error = self._results[key]
        if error is not None:
            raise error
        return value

    def _keep(self, key: str, fn: Callable[[], Any]) -> None:
        try:
            result: tuple[Any, BaseException | None] = (fn(), None)
        except Exception as exc:  # re-raised in the caller's thread by _connection_read
            result = (None, exc)
        with self._lock:
            self._results.setdefault(key, result)

    def _load(self, key: str) -> None:
        resource = RESOURCES[key]
        expected = self.hints.counts.get(key) if self.hints is not None else None
        try:
            data = fetch_resource(self.client, resource, expected)
            result: tuple[Any, ConnectWiseError | None] = (data, None)
        except ConnectWiseError as exc:
            result = (None, exc)
        with self._lock:
            self._results.setdefault(key, result)
            if resource.large and result[1] is None:
                digest = _last_digest(self.client, resource)
                if digest is not None:
                    self._digests[key] = digest
            if self.hints is not None and resource.large and result[1] is None:
                seen = _last_count(self.client, resource)
                self.hints.observed[key] = seen if seen is not None else len(data)


def _last_count(client: Any, resource: Resource) -> int | None:
    value = _last_read(client, "last_count", resource)
    return value if isinstance(value, int) else None


def _last_digest(client: Any, resource: Resource) -> str | None:
    value = _last_read(client, "last_digest", resource)
    return value if isinstance(value, str) else None


def _last_read(client: Any, method: str, resource: Resource) -> Any:
    """``client.last_count`` or ``client.last_digest`` of the resource's last list(); None when the client (a
    test double) keeps neither."""
    read = getattr(client, method, None)
    return None if read is None else read(resource.path, conditions=resource.conditions)


def fetch_resource(client: Any, resource: Resource, expected_count: int | None = None) -> list[dict]:
    """Large collections through list() (``expected_count``: the last run's count, to start the pages it
    predicts with ``/count``). Small ones (setup tables, statuses, cycles, the misc items) with one GET of a
    full page, which saves the /count call; a page that comes back full is read again through list() so nothing
    is ever cut off. mySecurity has no documented /count: its one page is what we read."""
    if resource.large:
        kwargs = {"expected_count": expected_count} if expected_count is not None else {}
        return client.list(
            resource.path,
            conditions=resource.conditions,
            fields=resource.fields,
            order_by="id asc",
            page_size=PAGE_SIZE,
            **kwargs,
        )
    params: dict[str, Any] = {"pageSize": PAGE_SIZE}
    if resource.countable:
        params["orderBy"] = "id asc"
        if resource.conditions:
            params["conditions"] = resource.conditions
    data = client.get(resource.path, params=params, fields=resource.fields)
    rows = [data] if isinstance(data, dict) else list(data or [])
    if resource.countable and len(rows) >= PAGE_SIZE:
        return client.list(
            resource.path,
            conditions=resource.conditions,
            fields=resource.fields,
            order_by="id asc",
            page_size=PAGE_SIZE,
        )
    return rows


def companies_by_id(ctx: RunContext) -> dict[int, dict]:
    """Company id -> the company as read (deleted ones included), made once per run and shared by the steps that
    look companies up (customers, agreements). Raises ResourceError when the companies could not be read."""
    return ctx.remember("companies_by_id", lambda: {c["id"]: c for c in ctx.get("companies")})


# ref_id and ref_name run for every record of a large tenant, several times (benchmark verify): no temporary dict
# for a missing record, one type test.


def ref_id(record: dict | None, name: str) -> int | None:
    """``record[name]["id"]`` for a reference field, or None."""
    if record:
        value = record.get(name)
        if isinstance(value, dict):
            return value.get("id")
    return None


def ref_name(record: dict | None, name: str) -> str:
    """``record[name]``'s name (or identifier) for a reference field, or ""."""
    if record:
        value = record.get(name)
        if isinstance(value, dict):
            return str(value.get("name") or value.get("identifier") or "")
    return ""


def same_name(a: str | None, b: str | None) -> bool:
    """ConnectWise compares names case-insensitively; so do we (ignoring surrounding and doubled spaces)."""
    return " ".join((a or "").split()).casefold() == " ".join((b or "").split()).casefold()
