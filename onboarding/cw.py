"""The one place a ConnectWise client is built from a tenant's stored connection."""

from __future__ import annotations

from collections.abc import Callable
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


def choices_for(tenant: Tenant) -> TenantChoices:
    return TenantChoices(
        companies=[
            ChosenCompany(cw_company_id=company_id, motion=motion, agreement_id=agreement_id)
            for company_id, motion, agreement_id in tenant.company_choices.values_list(
                "cw_company_id", "motion", "agreement_id"
            )
        ],
        billing_customers=[b.name for b in tenant.billing_customers.filter(cw_company_id__isnull=True)],
        cutover=tenant.billing_cutover,
        agreement_defaults=dict(tenant.agreement_defaults or {}),
    )
