"""Saving a tenant's ConnectWise connection: the one code path behind the web form and `tenant_connect`."""

from __future__ import annotations

from django.db import transaction
from django.db.models.functions import Lower
from django.utils import timezone

from .hosts import SiteDecision, decide
from .inputs import control_characters
from .models import AuditEvent, Connection, Tenant


class ConnectionRefused(ValueError):
    """The site is not allowed or a field is missing; the message is for the person who typed it."""


def validate(
    site: str, company_id: str, public_key: str, private_key: str | None, *, existing: bool
) -> SiteDecision:
    if not (company_id or "").strip():
        raise ConnectionRefused("Enter your ConnectWise company ID.")
    if not (public_key or "").strip():
        raise ConnectionRefused("Enter the API member's public key.")
    if not existing and not private_key:
        raise ConnectionRefused("Enter the API member's private key.")
    # The same limits for the web form and tenant_connect: these values go into ConnectWise's URL path and
    # Authorization header, where a line break or a control character is never valid. The key itself is never
    # quoted in the message.
    for label, value, limit in (
        ("company ID", company_id, 100),
        ("public key", public_key, 100),
        ("private key", private_key or "", 100),
    ):
        if control_characters(value.strip()):
            raise ConnectionRefused(
                f"The {label} contains control characters such as line breaks; paste it again."
            )
        if len(value.strip()) > limit:
            raise ConnectionRefused(f"The {label} is longer than {limit} characters.")
    decision = decide(site)
    if not decision.allowed:
        raise ConnectionRefused(decision.refused)
    return decision


@transaction.atomic
def save_connection(
    tenant: Tenant, *, site: str, company_id: str, public_key: str, private_key: str | None, actor=None
) -> tuple[Connection, bool]:
    """Create or update; an empty private key keeps the stored one. Returns (connection, key_replaced)."""
    connection = Connection.objects.filter(tenant=tenant).first()
    decision = validate(site, company_id, public_key, private_key, existing=connection is not None)
    is_new = connection is None
    connection = connection or Connection(tenant=tenant)
    connection.site = decision.entered.strip().lower()
    connection.company_id = company_id.strip()
    connection.public_key = public_key.strip()
    if private_key:
        connection.set_private_key(private_key.strip())
    connection.codebase = ""
    connection.read_hints = {}  # counts of another site or company would only mislead the next wave
    connection.updated_by = actor if getattr(actor, "pk", None) else None
    connection.updated_at = timezone.now()
    connection.save()
    replaced = bool(private_key) and not is_new
    AuditEvent.record(
        AuditEvent.Kind.KEY_REPLACED if replaced else AuditEvent.Kind.CONNECTION_SAVED,
        tenant=tenant,
        actor=actor,
        message=f"Connection saved: company {connection.company_id} at {connection.site}"
        + (" (private key replaced)" if replaced else ""),
        site=connection.site,
        company_id=connection.company_id,
    )
    return connection, replaced


def company_key(site: str, company_id: str) -> tuple[str, str]:
    """The ConnectWise company a connection reaches: (API host, company id case-folded). ConnectWise's company id
    is the sign-in company name and is not case-sensitive there (assumption); ``na.`` and ``api-na.`` are one
    site (``hosts.decide``)."""
    decision = decide(site)
    return ((decision.api_host or site or "").strip().lower(), (company_id or "").strip().casefold())


def shared_companies(tenant_ids) -> dict[int, list[dict]]:
    """tenant id -> the other tenants connected to the same ConnectWise company (``[{name, slug}]``, by name),
    for the tenants in ``tenant_ids`` that share one. Their repairs change each other's ConnectWise and so each
    other's results: the connection page and the support dashboard say so. One query, whatever the count."""
    ids = list(tenant_ids)
    if not ids:
        return {}
    page_companies = Connection.objects.filter(tenant_id__in=ids).annotate(c=Lower("company_id")).values("c")
    others = list(
        Connection.objects.annotate(cid=Lower("company_id"))
        .filter(cid__in=page_companies)
        .values("tenant_id", "site", "company_id", "tenant__name", "tenant__slug")
    )
    wanted = set(ids)
    mine = [c for c in others if c["tenant_id"] in wanted]
    by_key: dict[tuple[str, str], list[dict]] = {}
    for c in others:
        by_key.setdefault(company_key(c["site"], c["company_id"]), []).append(c)
    out: dict[int, list[dict]] = {}
    for c in mine:
        peers = [
            {"name": o["tenant__name"], "slug": o["tenant__slug"]}
            for o in by_key.get(company_key(c["site"], c["company_id"]), [])
            if o["tenant_id"] != c["tenant_id"]
        ]
        if peers:
            out[c["tenant_id"]] = sorted(peers, key=lambda p: (p["name"].casefold(), p["slug"]))
    return out
