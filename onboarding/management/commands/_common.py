"""Helpers shared by the product's management commands."""

from __future__ import annotations

from django.core.management.base import CommandError

from connectwise.checks.registry import STEP_KEYS

from ...models import Tenant


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
