"""One access helper per object type, called first in every view (healthchecks' _get_check_for_user).

- not a member (and not support): 404, so that tenant slugs do not leak
- read-only member or support staff asking to change something: 403
"""

from __future__ import annotations

from dataclasses import dataclass

from django.core.exceptions import PermissionDenied
from django.http import Http404

from .models import CheckRun, Membership, RepairPlan, Tenant


@dataclass(frozen=True)
class TenantAccess:
    tenant: Tenant
    role: str  # "admin", "member" or "support"

    @property
    def can_change(self) -> bool:
        return self.role == Membership.Role.ADMIN

    @property
    def is_support(self) -> bool:
        return self.role == "support"


def get_tenant(request, slug: str, *, change: bool = False) -> TenantAccess:
    user = request.user
    if not user.is_authenticated:
        raise Http404
    tenant = Tenant.objects.filter(slug=slug).select_related("connection").first()
    if tenant is None:
        raise Http404
    role = tenant.role_of(user)
    if role is None:
        raise Http404
    access = TenantAccess(tenant, role)
    if change and not access.can_change:
        raise PermissionDenied("Only the partner's admins can change this.")
    return access


def get_run(access: TenantAccess, run_uuid) -> CheckRun:
    run = CheckRun.objects.filter(tenant=access.tenant, uuid=run_uuid).first()
    if run is None:
        raise Http404
    return run


def get_run_access(request, slug: str, run_uuid) -> tuple[TenantAccess, CheckRun]:
    """The run and the caller's access to its tenant for a progress poll, in two indexed queries: the run joined
    with its tenant (by slug and uuid; the connection and its encrypted key are not loaded) and the membership.
    Same rules as ``get_tenant``: not a member (or no such run): 404."""
    user = request.user
    if not user.is_authenticated:
        raise Http404
    run = CheckRun.objects.select_related("tenant").filter(tenant__slug=slug, uuid=run_uuid).first()
    if run is None:
        raise Http404
    role = run.tenant.role_of(user)
    if role is None:
        raise Http404
    return TenantAccess(run.tenant, role), run


def get_plan(access: TenantAccess, plan_uuid) -> RepairPlan:
    plan = RepairPlan.objects.filter(tenant=access.tenant, uuid=plan_uuid).first()
    if plan is None:
        raise Http404
    return plan


def require_support(request) -> None:
    if not request.user.is_authenticated:
        raise Http404
    if not getattr(request.user, "is_support", False):
        raise Http404
