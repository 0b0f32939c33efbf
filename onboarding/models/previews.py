"""``SyncPreview``: a first-sync preview of a subscription CSV (the lines in, the rows out)."""

from __future__ import annotations

import uuid

from django.conf import settings
from django.db import models
from django.utils import timezone

from .tenants import Tenant


class SyncPreview(models.Model):
    """A rehearsal of the first sync from an imported subscription CSV (connectwise.preview): the parsed lines
    in, one row per line out. Built by a background job that only reads ConnectWise; nothing is written there."""

    class Status(models.TextChoices):
        QUEUED = "queued", "Queued"
        RUNNING = "running", "Running"
        DONE = "done", "Done"
        ERROR = "error", "Error"

    uuid = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    tenant = models.ForeignKey(Tenant, on_delete=models.CASCADE, related_name="sync_previews")
    created_at = models.DateTimeField(default=timezone.now, db_index=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    actor_label = models.CharField(max_length=200, blank=True)
    source_name = models.CharField(max_length=200, blank=True)
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.QUEUED)
    cutover = models.DateField(null=True, blank=True)
    lines = models.JSONField(default=list, blank=True)  # the parsed CSV lines
    rows = models.JSONField(default=list, blank=True)  # connectwise.preview.PreviewRow.to_dict() per line
    error = models.TextField(blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]

    def __str__(self) -> str:
        return f"Preview {self.uuid} of {self.tenant_id}"
