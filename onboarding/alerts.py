"""E-mails to a tenant's admins and to support: once per drift episode (not once per run), and a daily summary of
stale tenants to support.

A drift episode is a DriftAlert row (runs._track_drift opens one when a step goes from pass/warn to fail/error and
resolves it when the step passes again), so "once per drift" is "once per row": each row is claimed by setting
``notified_at`` before sending, and released again when sending fails so that the next run retries it.
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta

from celery import shared_task
from django.conf import settings
from django.core.cache import cache
from django.core.mail import send_mail
from django.db.models import F
from django.template.loader import render_to_string
from django.urls import reverse
from django.utils import timezone

from connectwise.checks.registry import STEP_KEYS, STEP_TITLES

from . import monitoring
from .delivery import MAIL_RETRY
from .mail import error_label, subject_line
from .models import DriftAlert, StepResult, Tenant

log = logging.getLogger(__name__)

STALE_LIST_LIMIT = 200
FINDINGS_PER_STEP = 5


def absolute_url(path: str) -> str:
    """E-mails need absolute links: SITE_URL (e.g. https://readiness.example.com) when set, else the bare path."""
    return getattr(settings, "SITE_URL", "").rstrip("/") + path


def _claim(alerts: list[DriftAlert], now: datetime) -> list[DriftAlert]:
    """Claim each alert for this worker; the ones another worker claimed first are left to it."""
    return [
        a
        for a in alerts
        if DriftAlert.objects.filter(pk=a.pk, notified_at__isnull=True, resolved_at__isnull=True).update(
            notified_at=now
        )
    ]


def notify_drift(tenant_id: int) -> int:
    """Send one e-mail for the tenant's open drift alerts not yet notified. Safe to run twice."""
    tenant = Tenant.objects.filter(pk=tenant_id).first()
    if tenant is None:
        return 0
    pending = list(
        DriftAlert.objects.filter(tenant=tenant, notified_at__isnull=True, resolved_at__isnull=True).order_by(
            "pk"
        )
    )
    claimed = _claim(pending, timezone.now())
    if not claimed:
        return 0
    claimed.sort(key=lambda a: STEP_KEYS.index(a.step) if a.step in STEP_KEYS else len(STEP_KEYS))
    results = {
        (r.run_id, r.key): r
        for r in StepResult.objects.filter(
            run_id__in={a.run_id for a in claimed}, key__in={a.step for a in claimed}
        )
    }
    steps = []
    for a in claimed:
        result = results.get((a.run_id, a.step))
        findings = [f for f in (result.findings if result else []) if f.get("severity") == "error"]
        steps.append(
            {
                "title": STEP_TITLES.get(a.step, a.step),
                "status": result.status if result else "",
                "findings": findings[:FINDINGS_PER_STEP],
                "more": max(0, len(findings) - FINDINGS_PER_STEP),
            }
        )
    context = {
        "tenant": tenant,
        "steps": steps,
        "detected_at": min(a.detected_at for a in claimed),
        "url": absolute_url(reverse("tenant_home", args=[tenant.slug])),
    }
    recipients = sorted(set(tenant.admin_emails()) | {settings.SUPPORT_EMAIL})
    try:
        send_mail(
            subject_line(
                f"[Billing sync] {tenant.name}: {', '.join(s['title'] for s in steps)} stopped passing"
            ),
            render_to_string("emails/drift.txt", context),
            settings.DEFAULT_FROM_EMAIL,
            recipients,
        )
    except Exception as exc:
        # Release the claim and record the failure: the task retries with backoff, the next run and the watchdog
        # try again after that, and the support dashboard lists the alert as undelivered meanwhile.
        DriftAlert.objects.filter(pk__in=[a.pk for a in claimed]).update(
            notified_at=None,
            mail_attempts=F("mail_attempts") + 1,
            mail_error=error_label(exc),
            mail_failed_at=timezone.now(),
        )
        log.warning(
            "drift e-mail for tenant %s could not be sent (%s); will retry", tenant.pk, error_label(exc)
        )
        raise
    DriftAlert.objects.filter(pk__in=[a.pk for a in claimed]).update(mail_error="", mail_failed_at=None)
    return len(claimed)


def undelivered_alerts():
    """Open drift alerts whose e-mail failed and has not been delivered since, oldest failure first."""
    return DriftAlert.objects.filter(
        notified_at__isnull=True, resolved_at__isnull=True, mail_failed_at__isnull=False
    ).order_by("mail_failed_at")


def undelivered_tenants(now: datetime | None = None) -> list[int]:
    """Tenants with an undelivered drift alert whose last attempt is older than MAIL_RETRY_AFTER seconds: the
    watchdog enqueues their e-mail again (the task's own retries have run out by then)."""
    cutoff = (now or timezone.now()) - timedelta(seconds=settings.MAIL_RETRY_AFTER)
    return sorted(
        set(undelivered_alerts().filter(mail_failed_at__lt=cutoff).values_list("tenant_id", flat=True))
    )


def notify_stale(now: datetime | None = None) -> int:
    """One summary e-mail a day to support listing connected tenants not verified for STALE_AFTER_HOURS."""
    now = now or timezone.now()
    key = f"stale-mail:{now.date().isoformat()}"
    if cache.get(key):
        return 0
    stale = Tenant.objects.filter(monitoring.stale_q(now))
    total = stale.count()
    if not total or not cache.add(key, 1, 60 * 60 * 26):
        return 0
    listed = list(
        stale.order_by(monitoring.F_LAST_CHECKED_NULLS_FIRST, "name").only("name", "slug", "last_checked_at")[
            :STALE_LIST_LIMIT
        ]
    )
    body = render_to_string(
        "emails/stale.txt",
        {
            "tenants": listed,
            "total": total,
            "more": total - len(listed),
            "hours": settings.STALE_AFTER_HOURS,
            "url": absolute_url(reverse("dashboard") + "?show=stale"),
        },
    )
    try:
        send_mail(
            subject_line(
                f"[Billing sync] {total} tenant{'s' if total != 1 else ''} not verified for "
                f"{settings.STALE_AFTER_HOURS} hours"
            ),
            body,
            settings.DEFAULT_FROM_EMAIL,
            [settings.SUPPORT_EMAIL],
        )
    except Exception as exc:
        cache.delete(key)  # try again at the next tick (every minute), so the summary is never dropped
        cache.set(
            STALE_FAILED_KEY, {"at": now.isoformat(), "error": error_label(exc), "tenants": total}, None
        )
        raise
    cache.delete(STALE_FAILED_KEY)
    return total


STALE_FAILED_KEY = "stale-mail:failed"


def stale_mail_failure() -> dict | None:
    """The last failed stale summary ({at, error, tenants}) while it has not been delivered since, else None."""
    return cache.get(STALE_FAILED_KEY)


@shared_task(name="onboarding.send_drift_alerts", **MAIL_RETRY)
def send_drift_alerts(tenant_id: int) -> int:
    """E-mail the tenant's open drift alerts not yet notified (alerts.notify_drift). A failure is recorded on the
    alerts and retried here; after the last retry, ``watchdog`` re-enqueues it (see alerts.retry_undelivered)."""
    return notify_drift(tenant_id)
