"""Support approval of on-premise ConnectWise hosts: the form, the list of approved hosts, and the audit event.

Staff only (everyone else gets 404). An approved host still has to resolve to public addresses when a partner
connects to it (``onboarding.netguard``).
"""

from __future__ import annotations

import re

from crispy_forms.helper import FormHelper
from crispy_forms.layout import Submit
from django import forms
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.db import IntegrityError, transaction
from django.shortcuts import redirect, render
from django.urls import path
from django.views.decorators.http import require_http_methods

from connectwise.sites import CLOUD_HOSTS

from ..access import require_support
from ..models import ApprovedHost, AuditEvent, Tenant

HOSTNAME_RE = re.compile(r"^(?=.{1,253}$)([a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z]{2,63}(:\d{1,5})?$")


class ApproveHostForm(forms.Form):
    hostname = forms.CharField(
        label="On-premise host name",
        max_length=260,
        help_text="The partner's ConnectWise server as its API is reached, e.g. cw.partner.example.",
        widget=forms.TextInput(attrs={"autocomplete": "off", "spellcheck": "false"}),
    )
    note = forms.CharField(
        label="Note",
        required=False,
        max_length=200,
        help_text="Why, or which partner asked (kept in the audit trail).",
    )
    tenant = forms.SlugField(required=False, widget=forms.HiddenInput)

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.helper = FormHelper()
        self.helper.add_input(Submit("approve", "Approve host"))

    def clean_hostname(self) -> str:
        host = self.cleaned_data["hostname"].strip().lower()
        host = re.sub(r"^[a-z]+://", "", host).split("/", 1)[0].rstrip(".")
        if not HOSTNAME_RE.match(host):
            raise forms.ValidationError("Enter a host name such as cw.partner.example (no address, no path).")
        if host in CLOUD_HOSTS:
            raise forms.ValidationError(
                "This is a ConnectWise cloud host: partners can use it without approval."
            )
        if ApprovedHost.objects.filter(hostname=host).exists():
            raise forms.ValidationError("This host is already approved.")
        return host

    def clean_tenant(self) -> Tenant | None:
        slug = self.cleaned_data.get("tenant")
        return Tenant.objects.filter(slug=slug).first() if slug else None


@login_required
@require_http_methods(["GET", "POST"])
def hosts(request):
    """Approve an on-premise ConnectWise host so that partners may connect to it (it still has to resolve to
    public addresses when they do: see onboarding.netguard)."""
    require_support(request)
    initial = {
        "hostname": request.GET.get("hostname", "")[:260],
        "tenant": request.GET.get("tenant", "")[:60],
    }
    form = ApproveHostForm(request.POST or None, initial=initial)
    if request.method == "POST" and form.is_valid():
        host, note, tenant = (
            form.cleaned_data["hostname"],
            form.cleaned_data["note"],
            form.cleaned_data["tenant"],
        )
        try:
            with transaction.atomic():
                ApprovedHost.objects.create(hostname=host, approved_by=request.user, note=note)
                AuditEvent.record(
                    AuditEvent.Kind.HOST_APPROVED,
                    tenant=tenant,
                    actor=request.user,
                    message=f"On-premise host {host} approved" + (f": {note}" if note else ""),
                    hostname=host,
                    note=note,
                )
        except IntegrityError:
            messages.info(request, f"{host} was already approved.")
        else:
            messages.success(request, f"{host} is approved. Partners can now connect to it.")
        if tenant is not None:
            return redirect("support_tenant", slug=tenant.slug)
        return redirect("support_hosts")
    approved = list(ApprovedHost.objects.select_related("approved_by").order_by("-approved_at")[:200])
    return render(request, "dashboard/hosts.html", {"form": form, "approved": approved})


urlpatterns = [
    path("support/hosts/", hosts, name="support_hosts"),
]
