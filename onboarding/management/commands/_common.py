"""Helpers shared by the product's management commands."""

from __future__ import annotations

from django.core.management.base import CommandError

from connectwise.checks.registry import STEP_KEYS

from ...cw import HostRefused, NoConnection, allowed_decision, connect
from ...hosts import SiteDecision
from ...models import Connection, Tenant


def get_tenant(slug: str) -> Tenant:
    tenant = Tenant.objects.filter(slug=slug).select_related("connection").first()
    if tenant is None:
        raise CommandError(f"No tenant with slug {slug!r}. Create it with tenant_connect first.")
    return tenant


def check_steps(steps: list[str] | None) -> list[str]:
    steps = steps or []
    unknown = [s for s in steps if s not in STEP_KEYS]
    if unknown:
        raise CommandError(f"Unknown step(s): {', '.join(unknown)}. Steps are: {', '.join(STEP_KEYS)}")
    return steps


def connect_or_exit(tenant: Tenant) -> tuple[Connection, SiteDecision]:
    """``cw.connect`` with the commands' messages (public CLI output): no connection, or the host refused."""
    try:
        return connect(tenant)
    except NoConnection:
        raise CommandError(f"Tenant {tenant.slug} has no connection; run tenant_connect first.") from None
    except HostRefused as exc:
        raise CommandError(f"Connection refused: {exc}") from None


def allowed_or_exit(connection: Connection) -> SiteDecision:
    """``cw.allowed_decision`` with the commands' message for a refused host."""
    try:
        return allowed_decision(connection)
    except HostRefused as exc:
        raise CommandError(f"Connection refused: {exc}") from None
