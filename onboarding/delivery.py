"""What the Celery tasks share: how a message reached them, the one lease that gives a row to one delivery, the
e-mail retry policy (kept apart so service modules that define a task need not import each other)."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Literal

from django.conf import settings

# E-mail tasks: ids only (never a link or token), retried with exponential backoff and jitter; a failure is also
# recorded on its row (invitation, drift alert) so that people see it while the retries go on.
MAIL_RETRY = {
    "autoretry_for": (Exception,),
    "retry_backoff": 30,
    "retry_backoff_max": 3600,
    "retry_jitter": True,
    "max_retries": settings.MAIL_MAX_RETRIES,
    "soft_time_limit": 120,
}


def redelivered(task) -> bool:
    """True when the broker delivers this message again (its earlier worker died before acknowledging it).
    ``task`` is a bound Celery task (``self`` of ``@shared_task(bind=True)``)."""
    return bool((getattr(task.request, "delivery_info", None) or {}).get("redelivered"))


def claim_lease(
    model,
    pk: int,
    *,
    ready: str,
    busy: str,
    lease_seconds: float,
    redelivered: bool,
    now: datetime,
    takeover: dict | None = None,
) -> Literal["claimed", "taken_over"] | None:
    """The one compare-and-swap that gives a row (a ``CheckRun``, a ``RepairPlan``) to exactly one task delivery.

    ``ready -> busy`` with ``started_at=now``: "claimed". A row already ``busy`` is taken over (``started_at=now``
    and the ``takeover`` field values) only when its worker must be gone: this delivery is a redelivery, or
    ``lease_seconds`` (the task's hard time limit) have passed since it started; the takeover swaps on the
    ``started_at`` it read, so one delivery wins: "taken_over". None: the row is gone, in another state, or its
    worker may still be on it."""
    if model.objects.filter(pk=pk, status=ready).update(status=busy, started_at=now):
        return "claimed"
    row = model.objects.filter(pk=pk, status=busy).values("started_at").first()
    if row is None:
        return None
    started = row["started_at"]
    if not redelivered and started is not None and started > now - timedelta(seconds=lease_seconds):
        return None
    if not model.objects.filter(pk=pk, status=busy, started_at=started).update(
        started_at=now, **(takeover or {})
    ):
        return None
    return "taken_over"
