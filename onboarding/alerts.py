"""E-mails to a tenant's admins and to support: once per drift episode (not once per run), and for stale tenants."""

from __future__ import annotations

from datetime import timedelta

from django.conf import settings
from django.core.cache import cache
from django.core.mail import send_mail
from django.template.loader import render_to_string
from django.urls import reverse
from django.utils import timezone

from connectwise.checks.registry import STEP_TITLES

from .models import DriftAlert, Tenant


def notify_drift(tenant_id: int) -> int:
    """Send one e-mail for the tenant's drift alerts not yet notified; mark them. Safe to run twice."""
    tenant = Tenant.objects.filter(pk=tenant_id).first()
    if tenant is None:
        return 0
    pending = list(DriftAlert.objects.filter(tenant=tenant, notified_at__isnull=True, resolved_at__isnull=True))
    if not pending:
        return 0
    # Claim them first, so that two workers never both send the same alert.
    claimed = DriftAlert.objects.filter(pk__in=[a.pk for a in pending], notified_at__isnull=True).update(
        notified_at=timezone.now()
    )
    if not claimed:
        return 0
    steps = [STEP_TITLES.get(a.step, a.step) for a in pending]
    context = {"tenant": tenant, "steps": steps, "url": reverse("tenant_home", args=[tenant.slug])}
    body = render_to_string("emails/drift.txt", context)
    recipients = sorted(set(tenant.admin_emails()) | {settings.SUPPORT_EMAIL})
    send_mail(
        f"[Billing sync] {tenant.name}: {', '.join(steps)} stopped passing",
        body,
        settings.DEFAULT_FROM_EMAIL,
        recipients,
    )
    return len(pending)


def notify_stale(now=None) -> int:
    """One summary e-mail to support per day listing connected tenants not verified for STALE_AFTER_HOURS."""
    now = now or timezone.now()
    key = f"stale-mail:{now.date().isoformat()}"
    cutoff = now - timedelta(hours=settings.STALE_AFTER_HOURS)
    stale = list(
        Tenant.objects.connected().filter(last_checked_at__lt=cutoff).order_by("last_checked_at")[:200]
    )
    if not stale or not cache.add(key, 1, 60 * 60 * 26):
        return 0
    body = render_to_string("emails/stale.txt", {"tenants": stale, "hours": settings.STALE_AFTER_HOURS})
    send_mail(
        f"[Billing sync] {len(stale)} tenant(s) not verified for {settings.STALE_AFTER_HOURS} hours",
        body,
        settings.DEFAULT_FROM_EMAIL,
        [settings.SUPPORT_EMAIL],
    )
    return len(stale)
