"""What the billing sync's hand-off needs stored: API tokens, idempotency keys of started runs, webhook endpoints
and their deliveries. Imported by ``onboarding.models`` so that Django registers them in the onboarding app.

Secrets: a token's secret is stored only as a SHA-256 digest (it is 256 random bits, so a slow password hash adds
nothing); a webhook's signing secret must be readable to sign, so it is stored encrypted like partner keys
(``onboarding.crypto``, Fernet with key rotation).
"""

from __future__ import annotations

import hashlib
import secrets
import uuid as uuidlib
from datetime import timedelta

from django.conf import settings
from django.db import models
from django.utils import timezone

from .. import crypto

TOKEN_PREFIX = "bsr_"


def hash_secret(secret: str) -> str:
    """Hex SHA-256 of a token secret, the only form in which it is stored."""
    return hashlib.sha256(secret.encode()).hexdigest()


class ApiTokenQuerySet(models.QuerySet):
    def usable(self, now=None) -> ApiTokenQuerySet:
        """Not revoked and not expired."""
        now = now or timezone.now()
        return self.filter(revoked_at__isnull=True).filter(
            models.Q(expires_at__isnull=True) | models.Q(expires_at__gt=now)
        )


class ApiToken(models.Model):
    """A bearer token for ``/api/v1/``, created by support staff or an operator for the distributor's billing sync.

    Scopes: ``read`` (tenants, mappings, runs) and ``read+verify`` (also starts verifications). A token is never a
    partner's user: it cannot reach keys and never writes to ConnectWise (a verification only reads).
    """

    class Scope(models.TextChoices):
        READ = "read", "read"
        READ_VERIFY = "read+verify", "read+verify"

    uuid = models.UUIDField(default=uuidlib.uuid4, unique=True, editable=False)
    name = models.CharField(max_length=100, unique=True)
    scope = models.CharField(max_length=20, choices=Scope.choices, default=Scope.READ)
    prefix = models.CharField(max_length=16, help_text="The first characters of the secret, to recognise it.")
    secret_hash = models.CharField(max_length=64, unique=True)
    created_at = models.DateTimeField(default=timezone.now)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_by_label = models.CharField(max_length=200, blank=True)
    expires_at = models.DateTimeField(null=True, blank=True)
    last_used_at = models.DateTimeField(null=True, blank=True)
    revoked_at = models.DateTimeField(null=True, blank=True)

    objects = ApiTokenQuerySet.as_manager()

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return f"API token {self.name} ({self.scope})"

    @classmethod
    def issue(
        cls, *, name: str, scope: str, expires_days: int | None = None, by=None
    ) -> tuple[ApiToken, str]:
        """Create a token; returns (token, secret). The secret exists only in this return value."""
        secret = TOKEN_PREFIX + secrets.token_urlsafe(32)
        token = cls.objects.create(
            name=name,
            scope=scope,
            prefix=secret[:10],
            secret_hash=hash_secret(secret),
            created_by=by if getattr(by, "pk", None) else None,
            created_by_label=by if isinstance(by, str) else (getattr(by, "email", "") or ""),
            expires_at=timezone.now() + timedelta(days=expires_days) if expires_days else None,
        )
        return token, secret

    @property
    def can_verify(self) -> bool:
        return self.scope == self.Scope.READ_VERIFY

    @property
    def state(self) -> str:
        if self.revoked_at:
            return "revoked"
        if self.expires_at and self.expires_at <= timezone.now():
            return "expired"
        return "active"


class IdempotencyKey(models.Model):
    """``POST /tenants/{slug}/runs/`` with an ``Idempotency-Key``: the run it started, for 24 hours."""

    token = models.ForeignKey(ApiToken, on_delete=models.CASCADE, related_name="+")
    key = models.CharField(max_length=255)
    tenant = models.ForeignKey("onboarding.Tenant", on_delete=models.CASCADE, related_name="+")
    run = models.ForeignKey("onboarding.CheckRun", on_delete=models.CASCADE, related_name="+")
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["token", "key"], name="one_run_per_idempotency_key")]

    def __str__(self) -> str:
        return f"idempotency key {self.key!r}"


class WebhookEndpoint(models.Model):
    """A URL of the billing sync that receives signed events. Disabled after a day of failed deliveries."""

    uuid = models.UUIDField(default=uuidlib.uuid4, unique=True, editable=False)
    url = models.URLField(max_length=500)
    events = models.JSONField(default=list, help_text="Event types sent to this endpoint.")
    secret_encrypted = models.TextField()
    active = models.BooleanField(default=True)
    disabled_at = models.DateTimeField(null=True, blank=True)
    disabled_reason = models.CharField(max_length=300, blank=True)
    failing_since = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(default=timezone.now)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )

    class Meta:
        ordering = ["created_at"]

    def __str__(self) -> str:
        return self.url

    def set_secret(self, secret: str) -> None:
        self.secret_encrypted = crypto.encrypt(secret)

    def get_secret(self) -> str:
        return crypto.decrypt(self.secret_encrypted)


class WebhookDelivery(models.Model):
    """One event for one endpoint: its payload, every attempt's outcome, and when the next attempt is due."""

    class Status(models.TextChoices):
        PENDING = "pending", "Pending"
        RETRYING = "retrying", "Retrying"
        DELIVERED = "delivered", "Delivered"
        FAILED = "failed", "Failed"

    uuid = models.UUIDField(default=uuidlib.uuid4, unique=True, editable=False)
    endpoint = models.ForeignKey(WebhookEndpoint, on_delete=models.CASCADE, related_name="deliveries")
    event_id = models.UUIDField(
        default=uuidlib.uuid4, help_text="The same for a redelivery of the same event."
    )
    event = models.CharField(max_length=40)
    tenant = models.ForeignKey(
        "onboarding.Tenant", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    payload = models.JSONField()
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.PENDING, db_index=True)
    attempts = models.IntegerField(default=0)
    response_code = models.IntegerField(null=True, blank=True)
    last_error = models.CharField(max_length=300, blank=True)
    created_at = models.DateTimeField(default=timezone.now, db_index=True)
    last_attempt_at = models.DateTimeField(null=True, blank=True)
    next_attempt_at = models.DateTimeField(null=True, blank=True)
    delivered_at = models.DateTimeField(null=True, blank=True)
    redelivery_of = models.ForeignKey(
        "self", null=True, blank=True, on_delete=models.SET_NULL, related_name="redeliveries"
    )

    class Meta:
        ordering = ["-created_at", "-id"]

    def __str__(self) -> str:
        return f"{self.event} to {self.endpoint_id} ({self.status})"
