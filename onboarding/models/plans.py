"""Repair plans: ``RepairPlan`` (its life: building -> draft | build_failed; draft -> approved -> applying ->
applied | failed) and ``RepairOperation`` (one API write, stored from and read back as a ``PlannedOperation``)."""

from __future__ import annotations

import uuid
from dataclasses import fields
from datetime import timedelta

from django.conf import settings
from django.db import models
from django.utils import timezone

from connectwise.checks.operations import PlannedOperation

from .runs import CheckRun
from .tenants import Tenant


class RepairPlan(models.Model):
    """The exact API writes that fix a step's repairable findings, approved by a partner admin before applying.

    Life: building (the partner asked, the worker reads ConnectWise) -> draft, or build_failed with ``error``;
    draft -> approved -> applying -> applied / failed; draft -> discarded. The transitions are in
    ``onboarding.repairs`` (``request_plan``, ``create_plan``, ``approve``, ``apply``, ``close_stuck_builds``)."""

    class Status(models.TextChoices):
        BUILDING = "building", "Being built"
        BUILD_FAILED = "build_failed", "Could not be built"
        DRAFT = "draft", "Waiting for approval"
        APPROVED = "approved", "Approved"
        APPLYING = "applying", "Applying"
        APPLIED = "applied", "Applied"
        FAILED = "failed", "Failed"
        DISCARDED = "discarded", "Discarded"

    uuid = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    tenant = models.ForeignKey(Tenant, on_delete=models.CASCADE, related_name="plans")
    step = models.CharField(max_length=40)
    status = models.CharField(max_length=12, choices=Status.choices, default=Status.DRAFT, db_index=True)
    source_run = models.ForeignKey(CheckRun, null=True, on_delete=models.SET_NULL, related_name="+")
    verify_run = models.ForeignKey(
        CheckRun, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(default=timezone.now)
    approved_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    approved_at = models.DateTimeField(null=True, blank=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    error = models.TextField(blank=True)

    class Meta:
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"plan {self.uuid} ({self.step}, {self.status})"

    def another_applying(self) -> bool:
        """Whether another plan of this tenant is applying, or approved and waiting for its worker (approved less
        than ``PLAN_APPLY_TIME_LIMIT`` + 60 s ago). Locks the tenant's row first, so call it inside a transaction:
        two callers for one tenant wait for each other, which makes applies of one tenant serial
        (``repairs.approve`` and ``reapply`` refuse while this is true)."""
        Tenant.objects.select_for_update().filter(pk=self.tenant_id).values_list("pk").first()
        waiting_since = timezone.now() - timedelta(seconds=settings.PLAN_APPLY_TIME_LIMIT + 60)
        others = RepairPlan.objects.filter(tenant_id=self.tenant_id).exclude(pk=self.pk)
        return others.filter(
            models.Q(status=self.Status.APPLYING)
            | models.Q(status=self.Status.APPROVED, approved_at__gt=waiting_since)
        ).exists()


class RepairOperation(models.Model):
    """One API write of a plan: what will be sent, why, the record before, and what happened."""

    class Status(models.TextChoices):
        PENDING = "pending", "Pending"
        DONE = "done", "Done"
        ALREADY = "already", "Already done"
        FAILED = "failed", "Failed"

    plan = models.ForeignKey(RepairPlan, on_delete=models.CASCADE, related_name="operations")
    seq = models.PositiveIntegerField()
    step = models.CharField(
        max_length=40, blank=True, help_text="The step this write repairs (combined plans)."
    )
    method = models.CharField(max_length=6)
    path = models.CharField(max_length=300)
    body = models.JSONField(default=None, null=True, blank=True)
    finding_code = models.CharField(max_length=80)
    subject = models.CharField(max_length=300, blank=True)
    description = models.CharField(max_length=300, blank=True)
    before = models.JSONField(default=None, null=True, blank=True)
    lookup = models.JSONField(
        default=None,
        null=True,
        blank=True,
        help_text="How to re-query before a create: {'path', 'conditions'}.",
    )
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.PENDING)
    result = models.JSONField(default=None, null=True, blank=True)
    error = models.TextField(blank=True)
    applied_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["plan", "seq"]
        constraints = [models.UniqueConstraint(fields=["plan", "seq"], name="one_operation_per_seq")]

    def __str__(self) -> str:
        return f"{self.seq}. {self.method} {self.path}"

    @classmethod
    def from_planned(cls, plan: RepairPlan, seq: int, op: PlannedOperation) -> RepairOperation:
        """The row (unsaved) that stores a planned write as operation ``seq`` of ``plan``: every field of the
        ``PlannedOperation``, its step defaulting to the plan's, subject and description cut to their columns."""
        values = {name: getattr(op, name) for name in _PLANNED_FIELDS}
        values.update(step=op.step or plan.step, subject=op.subject[:300], description=op.description[:300])
        return cls(plan=plan, seq=seq, **values)

    def as_planned(self) -> PlannedOperation:
        """The stored write as the ``PlannedOperation`` that ``connectwise.checks.plans.apply_operation`` takes."""
        return PlannedOperation(**{name: getattr(self, name) for name in _PLANNED_FIELDS})


# The one list of what a stored operation copies from a planned one: all its fields (a new field of
# PlannedOperation needs a column here; tests/onboarding/test_models.py holds the round trip).
_PLANNED_FIELDS = tuple(f.name for f in fields(PlannedOperation))
