"""The one place a change of a tenant's mapping (chosen companies, billing motions, target agreements, billing
customer matches) is recorded: the customers and agreements pages and ``tenant_customers`` all call
``record_change``, which audits it and tells the billing sync (``mapping.changed`` webhook, ``updated_since``).
"""

from __future__ import annotations

from . import webhooks
from .models import AuditEvent, Tenant


def record_change(tenant: Tenant, actor, message: str, **detail) -> AuditEvent:
    """Audit a mapping change and emit ``mapping.changed`` (sent after the caller's transaction commits).

    ``actor``: the user, or a label such as "operator (command line)"."""
    event = AuditEvent.record(
        AuditEvent.Kind.CUSTOMERS_CHANGED, tenant=tenant, actor=actor, message=message, **detail
    )
    webhooks.on_mapping_changed(tenant, message)
    return event
