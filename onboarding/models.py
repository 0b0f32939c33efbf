"""Tenants, their ConnectWise connection and choices, check runs, repair plans and the audit trail.

Rows and small row-level rules (``Tenant.is_stale``, ``stale_cutoff``); the services change state: ``runs.finish``
(a run's results and the tenant's readiness), ``repairs.approve`` / ``repairs.apply`` (plans), called by views,
tasks and commands. State changes that can race
use ``filter(pk=..., status=old).update(status=new)`` and treat 0 rows as "someone else did it".
"""

from __future__ import annotations

import uuid
from dataclasses import fields
from datetime import timedelta

from django.conf import settings
from django.contrib.auth.models import AbstractUser
from django.db import models
from django.db.models import Q
from django.utils import timezone
from django.utils.text import slugify

from connectwise.checks.agreement_defaults import describe
from connectwise.checks.operations import PlannedOperation
from connectwise.checks.registry import STEP_KEYS

from . import crypto


def stale_cutoff(now=None):
    """The stale rule's one threshold: a connected tenant whose last check is older than ``STALE_AFTER_HOURS`` (or
    that was never checked) is stale (PRODUCT.md "Monitoring"). Used by ``Tenant.is_stale`` (a row) and
    ``monitoring.stale_q`` (a query)."""
    return (now or timezone.now()) - timedelta(hours=settings.STALE_AFTER_HOURS)


class User(AbstractUser):
    """A person. Partner admins and members reach tenants through Membership; support staff see every tenant."""

    is_support = models.BooleanField(
        default=False,
        help_text="Distributor support staff: reads every tenant, never sees keys or changes them.",
    )

    @property
    def display_name(self) -> str:
        return self.get_full_name() or self.email or self.username


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


class Membership(models.Model):
    class Role(models.TextChoices):
        ADMIN = "admin", "Partner admin"
        MEMBER = "member", "Read-only member"

    uuid = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    tenant = models.ForeignKey(Tenant, on_delete=models.CASCADE, related_name="memberships")
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="memberships")
    role = models.CharField(max_length=10, choices=Role.choices, default=Role.MEMBER)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["tenant", "user"], name="one_membership_per_user")]

    def __str__(self) -> str:
        return f"{self.user} in {self.tenant} ({self.role})"


class Invitation(models.Model):
    """An e-mailed link that makes its holder a member of the tenant."""

    tenant = models.ForeignKey(Tenant, on_delete=models.CASCADE, related_name="invitations")
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
        Tenant, null=True, blank=True, on_delete=models.CASCADE, related_name="audit_events"
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


# The billing sync's hand-off (tokens, idempotency keys, webhooks) lives in its own module.
from .api.models import ApiToken, IdempotencyKey, WebhookDelivery, WebhookEndpoint  # noqa: E402, F401
