"""The one place a ConnectWise client is built from a tenant's stored connection."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from urllib.parse import urlsplit

import httpx
from django.conf import settings

from connectwise.checks.runner import ChosenCompany, ConnectionInfo, TenantChoices
from connectwise.client import ConnectWiseClient, Credentials
from connectwise.errors import HostNotAllowed

from .hosts import SiteDecision, decide
from .limits import slot_factory
from .models import Connection, Tenant
from .netguard import GuardedTransport

# Tests point this at the in-process sandbox (connectwise.sandbox.sandbox_transport); None = real network.
TRANSPORT_FACTORY: Callable[[], httpx.BaseTransport] | None = None


class NotConnectable(Exception):
    """No ConnectWise client can be built for the tenant; the message is for the partner admin."""


class NoConnection(NotConnectable):
    """The tenant has saved no ConnectWise connection."""

    def __init__(self, message: str = "Save a ConnectWise connection first.") -> None:
        super().__init__(message)


class HostRefused(NotConnectable):
    """The connection's host is not allowed (``hosts.decide``); the message is the refusal's reason."""


def allowed_decision(connection: Connection) -> SiteDecision:
    """``hosts.decide`` on the connection's site; raises ``HostRefused`` (with the reason) when it is refused."""
    decision = decide(connection.site)
    if not decision.allowed:
        raise HostRefused(decision.refused or "This ConnectWise host is not allowed.")
    return decision


def connect(tenant: Tenant) -> tuple[Connection, SiteDecision]:
    """The tenant's saved connection and the allowed decision on its host: the preamble of every ConnectWise
    client. Raises ``NoConnection`` or ``HostRefused``. (A check run is the exception: it reports a refused host
    as the connection step's finding, so ``runs.execute`` calls ``decide`` itself.)"""
    connection = getattr(tenant, "connection", None)
    if connection is None:
        raise NoConnection()
    return connection, allowed_decision(connection)


def tenant_client(tenant: Tenant) -> ConnectWiseClient:
    """A client for the tenant's ConnectWise (``connect`` + ``client_for``); use it as a context manager. Raises
    ``NoConnection`` or ``HostRefused``."""
    return client_for(*connect(tenant))


def client_for(connection: Connection, decision: SiteDecision | None = None) -> ConnectWiseClient:
    """A client for the tenant's ConnectWise. Decrypts the private key here, in the worker, and nowhere else."""
    decision = decision or decide(connection.site)
    # Defence in depth: callers check first, but no client is ever built for a refused host.
    if not decision.allowed:
        raise HostNotAllowed(decision.refused or "This ConnectWise host is not allowed.")
    creds = Credentials(
        origin=decision.origin,
        company_id=connection.company_id,
        public_key=connection.public_key,
        private_key=connection.get_private_key(),
        client_id=settings.CONNECTWISE_CLIENT_ID,
    )
    return ConnectWiseClient(
        creds,
        transport=_transport(decision),
        timeout=httpx.Timeout(settings.CONNECTWISE_TIMEOUT_SECONDS, connect=10.0),
        max_in_flight=settings.CONNECTWISE_MAX_IN_FLIGHT,
        codebase=connection.codebase or None,
        shared_slot=slot_factory(urlsplit(decision.origin).netloc, settings.CONNECTWISE_CLIENT_ID),
    )


def _transport(decision: SiteDecision) -> httpx.BaseTransport | None:
    """Partner hosts go through the SSRF-guarded transport (it validates the address actually connected to);
    the sandbox, a local service the operator configured, does not."""
    if TRANSPORT_FACTORY:
        return TRANSPORT_FACTORY()
    if decision.kind in ("cloud", "onprem"):
        limit = settings.CONNECTWISE_MAX_IN_FLIGHT
        return GuardedTransport(limits=httpx.Limits(max_connections=limit, max_keepalive_connections=limit))
    return None


def connection_info(connection: Connection, decision: SiteDecision) -> ConnectionInfo:
    return ConnectionInfo(
        site_entered=decision.entered,
        api_host=decision.api_host,
        host_refused_reason=decision.refused,
        company_id=connection.company_id,
    )


def _chosen_rows(tenant: Tenant):
    """The tenant's chosen companies as ``(cw_company_id, motion, agreement_id)`` rows (a lazy query)."""
    return tenant.company_choices.values_list("cw_company_id", "motion", "agreement_id")


class ChosenCompanies(Sequence[ChosenCompany]):
    """A tenant's chosen companies (``TenantChoices.companies``), read from the database when first iterated,
    indexed or counted; whether there is any is known at once (one EXISTS query). ``runner.run_steps`` asks only
    that before its first wave of reads, so the rows are read while the wave is on the wire (benchmark verify:
    5,000 rows, about 9 ms that no longer delay the first call). Used from one thread (the run's)."""

    def __init__(self, tenant: Tenant) -> None:
        self._query = _chosen_rows(tenant)
        self._any = self._query.exists()
        self._rows: list[ChosenCompany] | None = None

    def _loaded(self) -> list[ChosenCompany]:
        if self._rows is None:
            self._rows = [ChosenCompany(*row) for row in self._query]
        return self._rows

    def __bool__(self) -> bool:
        return self._any if self._rows is None else bool(self._rows)

    def __len__(self) -> int:
        return len(self._loaded())

    def __iter__(self) -> Iterator[ChosenCompany]:
        return iter(self._loaded())

    def __getitem__(self, index):  # type: ignore[override]
        return self._loaded()[index]

    def __repr__(self) -> str:
        return f"ChosenCompanies({'not read yet' if self._rows is None else len(self._rows)})"


def choices_for(tenant: Tenant, *, lazy: bool = False) -> TenantChoices:
    """The partner's choices as the checks take them. ``lazy``: the chosen companies are read when first used
    (``ChosenCompanies``), for a run that can read them while its first calls are on the wire."""
    companies: Sequence[ChosenCompany] = (
        ChosenCompanies(tenant) if lazy else [ChosenCompany(*row) for row in _chosen_rows(tenant)]
    )
    return TenantChoices(
        companies=companies,
        billing_customers=[b.name for b in tenant.billing_customers.filter(cw_company_id__isnull=True)],
        cutover=tenant.billing_cutover,
        agreement_defaults=dict(tenant.agreement_defaults or {}),
    )
