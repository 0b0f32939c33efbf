"""The append-only audit trail: ``AuditEvent`` (who did what to a tenant's connection and ConnectWise)."""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.utils import timezone


class AuditEventQuerySet(models.QuerySet):
    def update(self, **kwargs):  # noqa: D401 - append-only
        raise PermissionError("The audit trail is append-only")

    def delete(self):
        raise PermissionError("The audit trail is append-only")


class AuditEvent(models.Model):
    """Append-only record of who did what to a tenant's connection and ConnectWise."""

    class Kind(models.TextChoices):
        CONNECTION_SAVED = "connection.saved", "Connection saved"
        KEY_REPLACED = "connection.key_replaced", "Private key replaced"
        RUN_STARTED = "run.started", "Check started"
        PLAN_CREATED = "plan.created", "Repair plan built"
        PLAN_APPROVED = "plan.approved", "Repair plan approved"
        OPERATION_APPLIED = "operation.applied", "Change applied in ConnectWise"
        OPERATION_FAILED = "operation.failed", "Change failed"
        CUSTOMERS_CHANGED = "customers.changed", "Customer selection changed"
        CUTOVER_SET = "billing.cutover_set", "Billing cutover date set"
        DEFAULTS_CHANGED = "agreements.defaults_changed", "Defaults for new agreements changed"
        MEMBER_INVITED = "member.invited", "Teammate invited"
        MEMBER_JOINED = "member.joined", "Teammate joined"
        MEMBER_CHANGED = "member.changed", "Teammate's role changed"
        MEMBER_REMOVED = "member.removed", "Teammate removed"
        HOST_APPROVED = "host.approved", "On-premise host approved"
        KEYS_ROTATED = "keys.rotated", "Encryption keys rotated"
        SUPPORT_ADDED = "support.added", "Support account added"
        SUPPORT_REMOVED = "support.removed", "Support account deactivated"
        TOKEN_CREATED = "token.created", "API token created"
        TOKEN_REVOKED = "token.revoked", "API token revoked"
        WEBHOOK_ADDED = "webhook.added", "Webhook endpoint added"
        WEBHOOK_CHANGED = "webhook.changed", "Webhook endpoint changed"
        WEBHOOK_DISABLED = "webhook.disabled", "Webhook endpoint disabled"
        SANDBOX_CHANGED = "demo.sandbox_changed", "Changed in the demo sandbox"

    tenant = models.ForeignKey(
        "onboarding.Tenant", null=True, blank=True, on_delete=models.CASCADE, related_name="audit_events"
    )
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    actor_label = models.CharField(
        max_length=200, blank=True, help_text="Who, kept even if the user is deleted."
    )
    kind = models.CharField(max_length=40, choices=Kind.choices)
    message = models.CharField(max_length=500, blank=True)
    detail = models.JSONField(default=dict, blank=True)
    created_at = models.DateTimeField(default=timezone.now, db_index=True)

    objects = AuditEventQuerySet.as_manager()

    class Meta:
        ordering = ["-created_at", "-id"]

    def __str__(self) -> str:
        return f"{self.kind} by {self.actor_label or 'system'}"

    def save(self, *args, **kwargs):
        if self.pk is not None:
            raise PermissionError("The audit trail is append-only")
        return super().save(*args, **kwargs)

    def delete(self, *args, **kwargs):
        raise PermissionError("The audit trail is append-only")

    @classmethod
    def record(cls, kind: str, *, tenant=None, actor=None, message: str = "", **detail) -> AuditEvent:
        label = ""
        if actor is not None and getattr(actor, "pk", None):
            label = getattr(actor, "email", "") or actor.get_username()
        elif isinstance(actor, str):
            label, actor = actor, None
        return cls.objects.create(
            tenant=tenant, actor=actor, actor_label=label, kind=kind, message=message[:500], detail=detail
        )
