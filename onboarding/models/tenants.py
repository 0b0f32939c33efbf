"""A partner organisation and what it chose: ``Tenant`` (with the stale rule, ``stale_cutoff``), its
``Connection`` (encrypted key), ``CompanyChoice``, ``BillingCustomer``, ``CompanyDirectory``; ``ApprovedHost``."""

from __future__ import annotations

import uuid
from datetime import timedelta

from django.conf import settings
from django.db import models
from django.utils import timezone
from django.utils.text import slugify

from connectwise.checks.agreement_defaults import describe

from .. import crypto
from .accounts import Membership
from .audit import AuditEvent


def stale_cutoff(now=None):
    """The stale rule's one threshold: a connected tenant whose last check is older than ``STALE_AFTER_HOURS`` (or
    that was never checked) is stale (PRODUCT.md "Monitoring"). Used by ``Tenant.is_stale`` (a row) and
    ``monitoring.stale_q`` (a query)."""
    return (now or timezone.now()) - timedelta(hours=settings.STALE_AFTER_HOURS)


class TenantQuerySet(models.QuerySet):
    def for_user(self, user) -> TenantQuerySet:
        if not user.is_authenticated:
            return self.none()
        if getattr(user, "is_support", False):
            return self.all()
        return self.filter(memberships__user=user).distinct()

    def connected(self) -> TenantQuerySet:
        return self.filter(connection__isnull=False)


class Tenant(models.Model):
    """One partner organisation. The denormalised readiness columns feed the dashboard in O(1) queries."""

    uuid = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    slug = models.SlugField(max_length=60, unique=True)
    name = models.CharField(max_length=200)
    created_at = models.DateTimeField(default=timezone.now)

    # Latest known state, updated when a run finishes (see runs.finish).
    step_statuses = models.JSONField(
        default=dict, blank=True, help_text="step key -> status of the latest result"
    )
    ready = models.BooleanField(default=False, db_index=True)
    first_open_step = models.CharField(
        max_length=40, blank=True, db_index=True, help_text="The first step that is not pass or warn, if any."
    )
    has_error = models.BooleanField(default=False, db_index=True)
    last_checked_at = models.DateTimeField(null=True, blank=True, db_index=True)
    drift_since = models.DateTimeField(null=True, blank=True, db_index=True)
    drift_steps = models.JSONField(default=list, blank=True)
    next_check_at = models.DateTimeField(null=True, blank=True, db_index=True)
    step_errors = models.JSONField(
        default=dict,
        blank=True,
        help_text="step key -> the ConnectWise error of its latest result when it is 'error' "
        "(connectwise.errors.ConnectWiseError.detail()), for the dashboard's exports",
    )
    agreement_defaults = models.JSONField(
        default=dict,
        blank=True,
        help_text="motion -> defaults for agreements the product creates (connectwise.checks.agreement_defaults)",
    )
    agreement_types = models.JSONField(
        default=list,
        blank=True,
        help_text="[{id, name, allowed, one_time, inactive}] as the latest agreements check read them",
    )
    # The company list behind the customers page: when it was last read, and a digest to skip unchanged rewrites.
    directory_refreshed_at = models.DateTimeField(null=True, blank=True)
    directory_digest = models.CharField(max_length=64, blank=True)
    # The source key (connectwise.checks.customers.directory_source) of the data the list was built from: the
    # customers step does not build the list again while it is the same ("" = unknown: build it).
    directory_source = models.CharField(max_length=64, blank=True)
    # The last day existing agreement additions bill before the sync's seats take over (existing_billing step);
    # empty: the end of the current month.
    billing_cutover = models.DateField(null=True, blank=True)
    # When the API's view of this tenant last changed (a run ended, the mapping changed): `updated_since`.
    updated_at = models.DateTimeField(default=timezone.now, db_index=True)

    objects = TenantQuerySet.as_manager()

    class Meta:
        ordering = ["name"]
        # The dashboard pages through every tenant by name (then pk): read in index order, not sorted each time.
        indexes = [models.Index(fields=["name", "id"], name="tenant_name_id")]

    def __str__(self) -> str:
        return self.name

    @classmethod
    def unique_slug(cls, name: str) -> str:
        # Cut at 50 characters without leaving a trailing hyphen ("a-very-long-name-" -> "a-very-long-name").
        base = slugify(name)[:50].strip("-") or "tenant"
        slug, n = base, 2
        while cls.objects.filter(slug=slug).exists():
            slug, n = f"{base}-{n}", n + 1
        return slug

    def role_of(self, user) -> str | None:
        """'admin', 'member', 'support' or None."""
        if not user.is_authenticated:
            return None
        m = self.memberships.filter(user=user).first()
        if m:
            return m.role
        if getattr(user, "is_support", False):
            return "support"
        return None

    def is_stale(self, now=None) -> bool:
        """The stale rule for one row: connected and not verified since ``stale_cutoff`` (never verified counts).
        ``monitoring.stale_q`` is the same rule as a query."""
        if not hasattr(self, "connection"):
            return False
        return self.last_checked_at is None or self.last_checked_at < stale_cutoff(now)

    def agreement_defaults_rows(self) -> list[dict]:
        """The defaults for new agreements, one row per motion that has them (summary and agreements pages)."""
        return describe(self.agreement_defaults or {})

    def set_agreement_defaults(self, defaults: dict, *, actor) -> None:
        """Store validated defaults (``agreement_defaults.validate``) and audit the change with before and after."""
        before = self.agreement_defaults or {}
        self.agreement_defaults = defaults
        self.save(update_fields=["agreement_defaults"])
        AuditEvent.record(
            AuditEvent.Kind.DEFAULTS_CHANGED,
            tenant=self,
            actor=actor,
            message="Defaults for new agreements: "
            + ("; ".join(f'{m} {d["type_name"]} "{d["name"]}"' for m, d in defaults.items()) or "none"),
            before=before,
            after=defaults,
        )

    def admin_emails(self) -> list[str]:
        return [
            e
            for e in self.memberships.filter(role=Membership.Role.ADMIN).values_list("user__email", flat=True)
            if e
        ]


class ApprovedHost(models.Model):
    """An on-premise ConnectWise host that support staff approved for partner use."""

    hostname = models.CharField(max_length=253, unique=True)
    approved_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+"
    )
    approved_at = models.DateTimeField(default=timezone.now)
    note = models.CharField(max_length=200, blank=True)

    def __str__(self) -> str:
        return self.hostname


class Connection(models.Model):
    """A tenant's ConnectWise API credentials. The private key is only ever stored encrypted."""

    tenant = models.OneToOneField(Tenant, on_delete=models.CASCADE, related_name="connection")
    site = models.CharField(max_length=253, help_text="API host, e.g. api-na.myconnectwise.net")
    company_id = models.CharField(max_length=100)
    public_key = models.CharField(max_length=100)
    private_key_encrypted = models.TextField()
    private_key_hint = models.CharField(
        max_length=8, blank=True, help_text="Last characters, for the masked view."
    )
    codebase = models.CharField(max_length=60, blank=True, help_text="Cached from companyinfo discovery.")
    read_hints = models.JSONField(
        default=dict,
        blank=True,
        help_text="What the last verify saw, to plan the next one's reads: {'counts': {resource: records}}.",
    )
    updated_at = models.DateTimeField(default=timezone.now)
    updated_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+"
    )

    def __str__(self) -> str:
        return f"{self.company_id} at {self.site}"

    def set_private_key(self, value: str) -> None:
        self.private_key_encrypted = crypto.encrypt(value)
        self.private_key_hint = value[-4:] if len(value) >= 12 else ""

    def get_private_key(self) -> str:
        return crypto.decrypt(self.private_key_encrypted)

    @property
    def private_key_masked(self) -> str:
        return "••••••••" + (self.private_key_hint or "")


class CompanyChoice(models.Model):
    """A ConnectWise company the partner chose for the sync, with its billing motion and target agreement."""

    class Motion(models.TextChoices):
        MONTHLY = "monthly", "Seat Based Monthly"
        AZURE = "azure", "Azure Plan"
        ANNUAL = "annual", "Seat Based Annual"

    tenant = models.ForeignKey(Tenant, on_delete=models.CASCADE, related_name="company_choices")
    cw_company_id = models.IntegerField()
    identifier = models.CharField(max_length=100, blank=True)
    name = models.CharField(max_length=200, blank=True)
    motion = models.CharField(max_length=10, choices=Motion.choices, default=Motion.MONTHLY)
    agreement_id = models.IntegerField(
        null=True, blank=True, help_text="Target agreement; empty = choose automatically."
    )
    chosen_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["name"]
        constraints = [
            models.UniqueConstraint(fields=["tenant", "cw_company_id"], name="one_choice_per_company")
        ]

    def __str__(self) -> str:
        return self.name or str(self.cw_company_id)


class BillingCustomer(models.Model):
    """A customer from the billing side's CSV, optionally matched to a ConnectWise company."""

    tenant = models.ForeignKey(Tenant, on_delete=models.CASCADE, related_name="billing_customers")
    name = models.CharField(max_length=200)
    normalized = models.CharField(max_length=200, db_index=True)
    cw_company_id = models.IntegerField(null=True, blank=True)
    imported_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name


class CompanyDirectory(models.Model):
    """A cached copy of the tenant's ConnectWise companies, refreshed by a background job for the customers page."""

    tenant = models.ForeignKey(Tenant, on_delete=models.CASCADE, related_name="directory")
    cw_company_id = models.IntegerField()
    identifier = models.CharField(max_length=100)
    name = models.CharField(max_length=200)
    normalized = models.CharField(max_length=200, db_index=True)
    status_name = models.CharField(max_length=100, blank=True)
    inactive = models.BooleanField(default=False)
    active_agreements = models.IntegerField(default=0)
    agreements = models.JSONField(default=list, blank=True, help_text="[{id, name, type, status, ...}]")
    refreshed_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["name"]
        constraints = [models.UniqueConstraint(fields=["tenant", "cw_company_id"], name="one_directory_row")]

    def __str__(self) -> str:
        return f"{self.name} ({self.cw_company_id})"
