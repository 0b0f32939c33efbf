"""The first-sync rehearsal on the Django side: the tenant's cutover date, when the costly existing_billing step
is due in the scheduled verify, and previews of the first sync from a subscription CSV.

Views and the CLI call these; the preview's ConnectWise reads happen in ``execute_preview`` (a Celery task, or
the CLI in-process), never in a view.
"""

from __future__ import annotations

import logging
from datetime import date, timedelta

from celery import shared_task
from django.conf import settings
from django.db import transaction
from django.utils import timezone

from connectwise.checks.context import RunContext
from connectwise.checks.existing_billing import end_of_month
from connectwise.checks.names import normalize_company_name
from connectwise.checks.registry import READINESS_KEYS
from connectwise.errors import ConnectWiseError
from connectwise.preview import preview_sync
from connectwise.subscriptions import SubscriptionLine, parse_subscriptions

from .cw import NotConnectable, choices_for, tenant_client
from .models import AuditEvent, StepResult, SyncPreview, Tenant

log = logging.getLogger(__name__)

KEY = "existing_billing"
# What makes the step due again before its interval: the choice of customers or agreements, the cutover, a repair.
DUE_AFTER = (
    AuditEvent.Kind.CUSTOMERS_CHANGED,
    AuditEvent.Kind.CUTOVER_SET,
    AuditEvent.Kind.OPERATION_APPLIED,
)
MAX_CUTOVER_DAYS_AHEAD = 366


class CutoverError(ValueError):
    """A cutover date that cannot be used; the message is for the partner admin."""


def default_cutover(now=None) -> date:
    """The end of the current billing month (UTC)."""
    return end_of_month((now or timezone.now()).date())


def parse_cutover(text: str, *, today: date | None = None) -> date:
    """A cutover date from ``YYYY-MM-DD``: not before today (an addition cannot stop billing in the past of a
    closed invoice run) and at most a year ahead. Raises ``CutoverError`` with a plain reason."""
    today = today or timezone.now().date()
    try:
        day = date.fromisoformat((text or "").strip())
    except ValueError:
        raise CutoverError(
            f"{text!r} is not a date: write it as YYYY-MM-DD, e.g. {default_cutover()}."
        ) from None
    if day < today:
        raise CutoverError(f"The cutover {day} is in the past; choose today ({today}) or later.")
    if day > today + timedelta(days=MAX_CUTOVER_DAYS_AHEAD):
        raise CutoverError(
            f"The cutover {day} is more than a year ahead; choose a date before {today.replace(year=today.year + 1)}."
        )
    return day


def set_cutover(tenant: Tenant, day: date | None, *, actor=None) -> bool:
    """Store the tenant's cutover (None: the end of the current month) and audit the change. True when it
    changed."""
    if tenant.billing_cutover == day:
        return False
    before = tenant.billing_cutover
    with transaction.atomic():
        Tenant.objects.filter(pk=tenant.pk).update(billing_cutover=day)
        AuditEvent.record(
            AuditEvent.Kind.CUTOVER_SET,
            tenant=tenant,
            actor=actor,
            message=f"Billing cutover set to {day or 'the end of the current month'}",
            before=str(before) if before else None,
            after=str(day) if day else None,
        )
    tenant.billing_cutover = day
    return True


def existing_billing_due(tenant: Tenant, now=None) -> bool:
    """True when a scheduled or "all steps" verify should include existing_billing: it costs a read per
    agreement, so it runs there at most every ``EXISTING_BILLING_INTERVAL_DAYS``, and sooner when the customers,
    the agreement mapping or the cutover changed, or a repair was applied, since it last ran. Asking for the step
    by name always runs it."""
    now = now or timezone.now()
    last = (
        StepResult.objects.filter(tenant=tenant, key=KEY)
        .order_by("-created_at")
        .values_list("created_at", flat=True)
        .first()
    )
    if last is None or last <= now - timedelta(days=settings.EXISTING_BILLING_INTERVAL_DAYS):
        return True
    return AuditEvent.objects.filter(tenant=tenant, kind__in=DUE_AFTER, created_at__gt=last).exists()


def scheduled_steps(tenant: Tenant, now=None) -> list[str]:
    """The steps a scheduled verify runs: the six required ones, plus existing_billing when it is due."""
    steps = list(READINESS_KEYS)
    if existing_billing_due(tenant, now):
        steps.append(KEY)
    return steps


# -- previews -------------------------------------------------------------------------------------------------


def create_preview(
    tenant: Tenant, text: str, *, source_name: str = "", actor=None, enqueue: bool = True
) -> SyncPreview:
    """Parse the subscription CSV and queue a preview (built after commit by the ``build_preview`` task). Raises
    ``connectwise.subscriptions.SubscriptionCsvError`` for a bad file: nothing is stored then."""
    lines = parse_subscriptions(text)
    preview = SyncPreview.objects.create(
        tenant=tenant,
        created_by=actor if getattr(actor, "pk", None) else None,
        actor_label=str(actor)[:200] if actor else "",
        source_name=(source_name or "")[:200],
        cutover=tenant.billing_cutover,
        lines=[{**vars(line), "start": line.start.isoformat()} for line in lines],
    )
    if enqueue:
        transaction.on_commit(lambda: build_preview.delay(preview.pk))
    return preview


def execute_preview(preview: SyncPreview) -> SyncPreview:
    """Read the tenant's ConnectWise and store one row per line (status done), or a clear error. Idempotent:
    a preview that is already done is left alone."""
    if not SyncPreview.objects.filter(
        pk=preview.pk, status__in=(SyncPreview.Status.QUEUED, SyncPreview.Status.RUNNING)
    ).update(status=SyncPreview.Status.RUNNING):
        preview.refresh_from_db()
        return preview
    tenant = preview.tenant
    lines = [
        SubscriptionLine(**{**line, "start": date.fromisoformat(line["start"])}) for line in preview.lines
    ]
    matches = {
        normalize_company_name(b.name): b.cw_company_id
        for b in tenant.billing_customers.filter(cw_company_id__isnull=False)
    }
    choices = choices_for(tenant)
    try:
        with tenant_client(tenant) as client:
            rows = preview_sync(RunContext(client, choices), lines, matches)
    except NotConnectable as exc:
        return _finish(preview, error=str(exc))
    except ConnectWiseError as exc:
        return _finish(preview, error=f"ConnectWise did not answer a read the preview needs: {exc}")
    return _finish(preview, rows=[r.to_dict() for r in rows], cutover=choices.cutover or default_cutover())


def _finish(preview: SyncPreview, *, rows=None, error: str = "", cutover=None) -> SyncPreview:
    SyncPreview.objects.filter(pk=preview.pk).update(
        status=SyncPreview.Status.ERROR if error else SyncPreview.Status.DONE,
        rows=rows or [],
        error=error[:2000],
        cutover=cutover,
        finished_at=timezone.now(),
    )
    preview.refresh_from_db()
    return preview


def preview_counts(rows: list[dict]) -> dict[str, int]:
    """Figures for the page header: lines, placed, not placed, lines with a collision."""
    return {
        "lines": len(rows),
        "placed": sum(1 for r in rows if r["placed"]),
        "not_placed": sum(1 for r in rows if not r["placed"]),
        "collisions": sum(1 for r in rows if r.get("collisions")),
    }


@shared_task(name="onboarding.build_preview", soft_time_limit=settings.CHECK_RUN_TIME_LIMIT)
def build_preview(preview_id: int) -> str:
    """Build a stored first-sync preview (reads ConnectWise, writes nothing there)."""
    preview = SyncPreview.objects.select_related("tenant").filter(pk=preview_id).first()
    if preview is None:
        return "gone"
    try:
        return execute_preview(preview).status
    except Exception as exc:  # a bug must not leave the preview "running"
        log.exception("preview %s crashed", preview.uuid)
        SyncPreview.objects.filter(pk=preview.pk).update(
            status=SyncPreview.Status.ERROR, error=f"The preview crashed: {type(exc).__name__}"
        )
        return "error"
