"""What the Celery tasks share about how a message reached them (kept apart so service modules that define a task
need not import each other)."""

from __future__ import annotations

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
