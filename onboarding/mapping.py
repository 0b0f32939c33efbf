"""The one place a change of a tenant's mapping (chosen companies, billing motions, target agreements, billing
customer matches) is recorded: the customers and agreements pages and ``tenant_customers`` all call
``record_change``, which audits it and tells the billing sync (``mapping.changed`` webhook, ``updated_since``).

A target agreement can also change with no page involved: a repair plan creates the agreement a company lacked,
or the partner cancels one in ConnectWise, and the next customers check stores the new company list. ``runs``
takes ``targets`` before storing it and calls ``follow_directory`` after, which records the change the same way.
"""

from __future__ import annotations

from connectwise.checks.agreement_targets import directory_candidates

from . import webhooks
from .models import AuditEvent, CompanyChoice, CompanyDirectory, Tenant

# The actor of a change that a check found rather than a person made.
RECHECK_ACTOR = "ConnectWise (re-check)"


def record_change(tenant: Tenant, actor, message: str, **detail) -> AuditEvent:
    """Audit a mapping change and emit ``mapping.changed`` (sent after the caller's transaction commits).

    ``actor``: the user, or a label such as "operator (command line)"."""
    event = AuditEvent.record(
        AuditEvent.Kind.CUSTOMERS_CHANGED, tenant=tenant, actor=actor, message=message, **detail
    )
    webhooks.on_mapping_changed(tenant, message)
    return event


def targets(tenant: Tenant) -> dict[int, int | None]:
    """Each chosen company's target agreement id (``{cw_company_id: agreement id or None}``): the partner's
    explicit choice, else the only candidate for its motion among the stored company list's agreements (the
    agreements check's rule, ``directory_candidates``), else None. A company the stored list does not have yet
    (no list stored, or chosen before it was read) is left out: its target is unknown, not "none"."""
    choices = list(tenant.company_choices.values_list("cw_company_id", "motion", "agreement_id"))
    stored = dict(
        CompanyDirectory.objects.filter(
            tenant=tenant, cw_company_id__in=[cid for cid, _, explicit in choices if not explicit]
        ).values_list("cw_company_id", "agreements")
    )
    out: dict[int, int | None] = {}
    for cid, motion, explicit in choices:
        if explicit:
            out[cid] = explicit
        elif cid in stored:
            candidates = directory_candidates(list(stored[cid] or []), motion) or []
            out[cid] = candidates[0].get("id") if len(candidates) == 1 else None
    return out


def follow_directory(tenant: Tenant, before: dict[int, int | None]) -> AuditEvent | None:
    """After a check stored a new company list: record (audit + ``mapping.changed``) every chosen company whose
    target agreement is not what ``before`` (``targets`` taken before the list was stored) said; a company whose
    target was unknown before (the first list) is not a change. None when no target moved."""
    after = targets(tenant)
    moved = sorted(cid for cid, target in after.items() if cid in before and before[cid] != target)
    if not moved:
        return None
    names = dict(
        CompanyChoice.objects.filter(tenant=tenant, cw_company_id__in=moved).values_list(
            "cw_company_id", "name"
        )
    )
    parts = [
        f"{names.get(cid) or cid}: agreement {after[cid]}" if after[cid] else f"{names.get(cid) or cid}: none"
        for cid in moved[:5]
    ]
    more = f" and {len(moved) - 5} more" if len(moved) > 5 else ""
    return record_change(
        tenant,
        RECHECK_ACTOR,
        f"Target agreement changed for {len(moved)} compan{'y' if len(moved) == 1 else 'ies'} "
        f"({'; '.join(parts)}{more})"[:500],
        companies=moved,
        targets={str(cid): after[cid] for cid in moved},
    )
