"""Demo-mode views (onboarding.demo): connect to a sandbox company with its keys, and make a finding's
ConnectWise-side change in the sandbox. Both answer 404 outside demo mode."""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import Http404
from django.shortcuts import redirect
from django.urls import path
from django.views.decorators.http import require_POST

from connectwise.checks.registry import STEP_KEYS

from .. import demo
from ..access import get_tenant
from ..connections import ConnectionRefused, save_connection
from ..models import AuditEvent, CheckRun
from ..results import latest_results
from ..runs import start_run, with_dependents


@login_required
@require_POST
def demo_connect(request, slug):
    """Connect the tenant to one of the sandbox's companies (company=<id>) with its API member's keys."""
    access = get_tenant(request, slug, change=True)
    if not demo.enabled():
        raise Http404
    wanted = request.POST.get("company", "")
    company = next((c for c in demo.sandbox_companies() if c.company_id == wanted), None)
    if company is None:
        messages.error(request, "That sandbox company is not offered here.")
        return redirect("step", slug=slug, key="connection")
    try:
        save_connection(
            access.tenant,
            site=demo.settings.CONNECTWISE_SANDBOX_URL.split("://", 1)[1],
            company_id=company.company_id,
            public_key=company.public_key,
            private_key=company.private_key,
            actor=request.user,
        )
    except ConnectionRefused as exc:
        messages.error(request, str(exc))
        return redirect("step", slug=slug, key="connection")
    _, created = start_run(access.tenant, actor=request.user, steps=[])
    messages.success(
        request,
        f"Connected to the sandbox company {company.name} as {company.member}. "
        + ("Checking every step now." if created else "A check is already running."),
    )
    return redirect("step", slug=slug, key="connection")


@login_required
@require_POST
def sandbox_change(request, slug, key):
    """Make the change a finding's click path describes in the sandbox (finding=<index in the step's latest
    result>, code=<its code>), then re-check every step (a role change can change any of them)."""
    access = get_tenant(request, slug, change=True)
    connection = getattr(access.tenant, "connection", None)
    if not demo.enabled() or key not in STEP_KEYS:
        raise Http404
    if not demo.on_sandbox(connection):
        messages.error(
            request, "This organisation is not connected to the sandbox: make the change in ConnectWise."
        )
        return redirect("step", slug=slug, key=key)
    result = latest_results(access.tenant).get(key)
    try:
        index = int(request.POST.get("finding", ""))
    except ValueError:
        index = -1
    findings = result.findings if result else []
    finding = findings[index] if 0 <= index < len(findings) else None
    change = demo.sandbox_change_for(finding) if finding else None
    if finding is None or finding.get("code") != request.POST.get("code") or change is None:
        messages.error(request, "That finding is no longer on this step; the page shows the current ones.")
        return redirect("step", slug=slug, key=key)
    try:
        demo.apply_in_sandbox(connection, change)
    except demo.SandboxChangeFailed as exc:
        messages.error(request, str(exc))
        return redirect("step", slug=slug, key=key)
    AuditEvent.record(
        AuditEvent.Kind.SANDBOX_CHANGED,
        tenant=access.tenant,
        actor=request.user,
        message=f"Demo: changed in the sandbox: {finding['subject']}",
        code=finding["code"],
    )
    start_run(
        access.tenant,
        trigger=CheckRun.Trigger.CHANGE,
        actor=request.user,
        steps=with_dependents(["security_role"]),
    )
    messages.success(request, f"Changed in the sandbox: {finding['subject']}. Checking every step again now.")
    return redirect("step", slug=slug, key=key)


urlpatterns = [
    path("t/<slug:slug>/demo/connect/", demo_connect, name="demo_connect"),
    path("t/<slug:slug>/steps/<str:key>/demo/sandbox-change/", sandbox_change, name="demo_sandbox_change"),
]
