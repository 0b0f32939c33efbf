"""Tenants, their ConnectWise connection and choices, check runs, repair plans and the audit trail: the rows, one
module per kind (``accounts``, ``tenants``, ``runs``, ``plans``, ``audit``, ``previews``), all importable from
``onboarding.models``.

Rows and small row-level rules (``Tenant.is_stale``, ``stale_cutoff``); the services change state: ``runs.finish``
(a run's results and the tenant's readiness), ``repairs.approve`` / ``repairs.apply`` (plans), called by views,
tasks and commands. State changes that can race use ``filter(pk=..., status=old).update(status=new)`` and treat 0
rows as "someone else did it".
"""

from __future__ import annotations

# The billing sync's hand-off (tokens, idempotency keys, webhooks) lives in its own module, registered here.
from ..api.models import ApiToken, IdempotencyKey, WebhookDelivery, WebhookEndpoint
from .accounts import Invitation, Membership, User
from .audit import AuditEvent, AuditEventQuerySet
from .plans import RepairOperation, RepairPlan
from .previews import SyncPreview
from .runs import CheckRun, DriftAlert, StepResult
from .tenants import (
    ApprovedHost,
    BillingCustomer,
    CompanyChoice,
    CompanyDirectory,
    Connection,
    Tenant,
    TenantQuerySet,
    stale_cutoff,
)

__all__ = [
    "ApiToken",
    "ApprovedHost",
    "AuditEvent",
    "AuditEventQuerySet",
    "BillingCustomer",
    "CheckRun",
    "CompanyChoice",
    "CompanyDirectory",
    "Connection",
    "DriftAlert",
    "IdempotencyKey",
    "Invitation",
    "Membership",
    "RepairOperation",
    "RepairPlan",
    "StepResult",
    "SyncPreview",
    "Tenant",
    "TenantQuerySet",
    "User",
    "WebhookDelivery",
    "WebhookEndpoint",
    "stale_cutoff",
]
