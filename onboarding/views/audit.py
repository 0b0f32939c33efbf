"""The tenant's audit trail: who changed the connection, started checks, approved plans, and every change applied
in ConnectWise with its before and after values. Read-only for everyone; the trail is append-only."""

from __future__ import annotations

from django.contrib.auth.decorators import login_required
from django.core.paginator import Paginator
from django.shortcuts import render
from django.urls import path
from django.views.decorators.http import require_GET

from ..access import get_tenant
from ..models import AuditEvent


@login_required
@require_GET
def audit(request, slug):
    access = get_tenant(request, slug)
    events = AuditEvent.objects.filter(tenant=access.tenant).select_related("actor")
    kind = request.GET.get("kind", "")
    if kind in AuditEvent.Kind.values:
        events = events.filter(kind=kind)
    page = Paginator(events, 50).get_page(request.GET.get("page"))
    return render(
        request,
        "onboarding/audit.html",
        {
            "access": access,
            "tenant": access.tenant,
            "page": page,
            "kind": kind,
            "kinds": AuditEvent.Kind.choices,
        },
    )


urlpatterns = [path("t/<slug:slug>/audit/", audit, name="audit")]
