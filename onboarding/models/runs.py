"""Check runs and what they found: ``CheckRun``, ``StepResult`` (one step of a run), ``DriftAlert`` (a step
that stopped passing)."""

from __future__ import annotations

import uuid

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils import timezone

from connectwise.checks.registry import STEP_KEYS

from .tenants import Tenant


class CheckRun(models.Model):
    """One verification of some or all steps for a tenant."""

    class Status(models.TextChoices):
        QUEUED = "queued", "Queued"
        RUNNING = "running", "Running"
        DONE = "done", "Done"
        ERROR = "error", "Error"

    class Trigger(models.TextChoices):
        MANUAL = "manual", "Started by a person"
        SCHEDULE = "schedule", "Scheduled re-check"
        CLI = "cli", "Command line"
        REPAIR = "repair", "Re-check after a repair"
        SUPPORT = "support", "Started by support"
        API = "api", "Started through the API"
        CHANGE = "change", "Re-check after a change of choices"

    ACTIVE = (Status.QUEUED, Status.RUNNING)

    uuid = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    tenant = models.ForeignKey(Tenant, on_delete=models.CASCADE, related_name="runs")
    trigger = models.CharField(max_length=10, choices=Trigger.choices, default=Trigger.MANUAL)
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    steps = models.JSONField(default=list, help_text="Step keys requested; empty = all.")
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.QUEUED, db_index=True)
    ready = models.BooleanField(null=True)
    progress = models.JSONField(default=dict, blank=True, help_text="{'done': n, 'total': n, 'current': key}")
    error = models.TextField(blank=True)
    error_detail = models.JSONField(
        null=True,
        blank=True,
        help_text="When a ConnectWise error failed the run: its code, message, path and request id "
        "(connectwise.errors.ConnectWiseError.detail()).",
    )
    created_at = models.DateTimeField(default=timezone.now, db_index=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    api_calls = models.IntegerField(default=0)
    api_retries = models.IntegerField(default=0)
    duration_ms = models.IntegerField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]
        constraints = [
            # One active run per tenant, enforced by the database.
            models.UniqueConstraint(
                fields=["tenant"],
                condition=Q(status__in=["queued", "running"]),
                name="one_active_run_per_tenant",
            )
        ]

    def __str__(self) -> str:
        return f"run {self.uuid} for {self.tenant_id} ({self.status})"

    @property
    def is_active(self) -> bool:
        return self.status in self.ACTIVE

    def requested_steps(self) -> list[str]:
        return [k for k in STEP_KEYS if not self.steps or k in self.steps]


class StepResult(models.Model):
    class Status(models.TextChoices):
        PASS = "pass", "Pass"
        WARN = "warn", "Warning"
        FAIL = "fail", "Fail"
        ERROR = "error", "Could not check"
        BLOCKED = "blocked", "Blocked"

    run = models.ForeignKey(CheckRun, on_delete=models.CASCADE, related_name="results")
    tenant = models.ForeignKey(Tenant, on_delete=models.CASCADE, related_name="step_results")
    key = models.CharField(max_length=40)
    status = models.CharField(max_length=10, choices=Status.choices)
    findings = models.JSONField(default=list, blank=True)
    summary = models.CharField(max_length=300, blank=True)
    api_calls = models.IntegerField(default=0)
    duration_ms = models.IntegerField(default=0)
    created_at = models.DateTimeField(default=timezone.now)
    choices_digest = models.CharField(
        max_length=64,
        blank=True,
        help_text="For steps that judge the partner's choices (runs.CHOICE_STEPS): a digest of the choices this "
        "result judged; empty for other steps and for results stored before it was kept.",
    )

    class Meta:
        ordering = ["run", "id"]
        constraints = [models.UniqueConstraint(fields=["run", "key"], name="one_result_per_step_per_run")]
        indexes = [models.Index(fields=["tenant", "key", "-created_at"])]

    def __str__(self) -> str:
        return f"{self.key}: {self.status}"


class DriftAlert(models.Model):
    """A step that went from pass to fail; one e-mail per drift, not per run."""

    tenant = models.ForeignKey(Tenant, on_delete=models.CASCADE, related_name="drift_alerts")
    step = models.CharField(max_length=40)
    run = models.ForeignKey(CheckRun, on_delete=models.CASCADE, related_name="+")
    detected_at = models.DateTimeField(default=timezone.now)
    notified_at = models.DateTimeField(null=True, blank=True)
    resolved_at = models.DateTimeField(null=True, blank=True)
    # Failed attempts to e-mail this alert: retried by the task and by the watchdog until delivered, and listed on
    # the support dashboard meanwhile (never silently dropped).
    mail_attempts = models.PositiveSmallIntegerField(default=0)
    mail_error = models.CharField(max_length=200, blank=True)
    mail_failed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-detected_at"]
        constraints = [
            models.UniqueConstraint(
                fields=["tenant", "step"],
                condition=Q(resolved_at__isnull=True),
                name="one_open_drift_per_step",
            )
        ]

    def __str__(self) -> str:
        return f"drift of {self.step} for {self.tenant_id}"
