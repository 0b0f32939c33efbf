"""What the connection step page adds to the stored result: the connection form (the one way to replace the
private key), the companies that share this ConnectWise company, and in demo mode the sandbox companies."""

from __future__ import annotations

from .. import demo
from ..access import TenantAccess
from ..connections import shared_companies
from ..forms import ConnectionForm


def context_connection(request, access: TenantAccess, *, result=None) -> dict:
    shared = shared_companies([access.tenant.pk]).get(access.tenant.pk, [])
    if not access.can_change:
        return {"form": None, "shared_with": shared}
    connection = getattr(access.tenant, "connection", None)
    return {
        "shared_with": shared,
        "sandbox_companies": demo.sandbox_companies(),  # empty outside demo mode
        # One way to replace the private key: this form's private key field (empty keeps the stored key).
        "form": ConnectionForm(connection=connection),
    }
