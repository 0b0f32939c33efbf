"""People and their access: ``User``, ``Membership`` (a person in a tenant, admin or read-only member),
``Invitation`` (an e-mailed link that makes its holder a member)."""

from __future__ import annotations

import uuid
from datetime import timedelta

from django.conf import settings
from django.contrib.auth.models import AbstractUser
from django.db import models
from django.utils import timezone


class User(AbstractUser):
    """A person. Partner admins and members reach tenants through Membership; support staff see every tenant."""

    is_support = models.BooleanField(
        default=False,
        help_text="Distributor support staff: reads every tenant, never sees keys or changes them.",
    )

    @property
    def display_name(self) -> str:
        return self.get_full_name() or self.email or self.username


class Membership(models.Model):
    class Role(models.TextChoices):
        ADMIN = "admin", "Partner admin"
        MEMBER = "member", "Read-only member"

    uuid = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    tenant = models.ForeignKey("onboarding.Tenant", on_delete=models.CASCADE, related_name="memberships")
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="memberships")
    role = models.CharField(max_length=10, choices=Role.choices, default=Role.MEMBER)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["tenant", "user"], name="one_membership_per_user")]

    def __str__(self) -> str:
        return f"{self.user} in {self.tenant} ({self.role})"


class Invitation(models.Model):
    """An e-mailed link that makes its holder a member of the tenant."""

    tenant = models.ForeignKey("onboarding.Tenant", on_delete=models.CASCADE, related_name="invitations")
    email = models.EmailField()
    role = models.CharField(max_length=10, choices=Membership.Role.choices, default=Membership.Role.MEMBER)
    token = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    invited_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(default=timezone.now)
    accepted_at = models.DateTimeField(null=True, blank=True)
    # The invitation e-mail is sent by a Celery task after commit (onboarding.mail); the team page shows a failure
    # with "send again" and the link to copy.
    mail_status = models.CharField(
        max_length=10,
        choices=[("queued", "Queued"), ("sent", "Sent"), ("failed", "Failed")],
        default="queued",
    )
    mail_attempts = models.PositiveSmallIntegerField(default=0)
    mail_error = models.CharField(max_length=200, blank=True)
    mailed_at = models.DateTimeField(null=True, blank=True)

    def __str__(self) -> str:
        return f"invitation of {self.email} to {self.tenant_id} ({self.role})"

    def is_valid(self) -> bool:
        return self.accepted_at is None and self.created_at > timezone.now() - timedelta(days=7)
