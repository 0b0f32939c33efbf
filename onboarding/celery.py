"""The Celery application: configured from Django settings (CELERY_*), tasks in onboarding.tasks."""

from __future__ import annotations

import os

from celery import Celery

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "onboarding.settings")

from .memory import fix_malloc_thresholds, limit_malloc_arenas  # noqa: E402

# Before any worker thread exists: a verify's threads would otherwise each get a malloc arena, and freed pages
# would stay resident between verifies (onboarding/memory.py).
limit_malloc_arenas()
fix_malloc_thresholds()

app = Celery("onboarding")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks(["onboarding"])

app.conf.beat_schedule = {
    # Every minute: with VERIFY_MAX_CONCURRENT in flight, a 5-minute tick could start at most 20 runs per tick
    # (5,760 a day), too few for a daily re-check of 10,000 tenants.
    "schedule-verifications": {"task": "onboarding.schedule_verifications", "schedule": 60.0},
    "watchdog": {"task": "onboarding.watchdog", "schedule": 120.0},
    # Hourly, bounded: a first prune of a large backlog is spread over several ticks.
    "prune-history": {"task": "onboarding.prune_history", "schedule": 3600.0},
    # Webhook deliveries whose backoff is too long for a Celery countdown, or whose message was lost.
    "webhook-retries": {"task": "onboarding.webhook_retries", "schedule": 60.0},
}
