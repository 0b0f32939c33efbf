"""Support staff's pages for the billing sync hand-off: API tokens (create, revoke; the secret shown once) and
webhook endpoints (register through the SSRF guard, enable/disable, delivery log, redeliver).

Staff only (everyone else gets 404, like the dashboard). Every change is audited.
"""

from __future__ import annotations

from crispy_forms.helper import FormHelper
from crispy_forms.layout import Submit
from django import forms
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.paginator import Paginator
from django.db import transaction
from django.http import Http404
from django.shortcuts import redirect, render
from django.urls import path
from django.utils import timezone
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from .. import webhooks
from ..access import require_support
from ..api import tokens
from ..models import ApiToken, AuditEvent, WebhookDelivery, WebhookEndpoint

DELIVERIES_PER_PAGE = 50


class TokenForm(forms.Form):
    name = forms.CharField(
        max_length=100, help_text="Who or what uses it, e.g. “billing sync production”. Must be unique."
    )
    scope = forms.ChoiceField(
        choices=[
            (ApiToken.Scope.READ, "read: tenants, mappings and runs"),
            (ApiToken.Scope.READ_VERIFY, "read+verify: also start verifications"),
        ],
        initial=ApiToken.Scope.READ,
    )
    expires_days = forms.IntegerField(
        label="Expires after (days)",
        required=False,
        min_value=1,
        max_value=tokens.MAX_EXPIRY_DAYS,
        help_text="Leave empty for a token that does not expire.",
    )

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.helper = FormHelper()
        self.helper.add_input(Submit("create", "Create token"))


class WebhookForm(forms.Form):
    url = forms.CharField(
        label="Endpoint URL",
        max_length=500,
        help_text="An https:// URL of the billing sync that accepts POST requests.",
        widget=forms.URLInput(attrs={"autocomplete": "off", "spellcheck": "false"}),
    )
    events = forms.MultipleChoiceField(
        choices=[(e, e) for e in webhooks.EVENTS],
        initial=list(webhooks.EVENTS),
        widget=forms.CheckboxSelectMultiple,
    )

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.helper = FormHelper()
        self.helper.add_input(Submit("add", "Add endpoint"))

    def clean_url(self) -> str:
        url = self.cleaned_data["url"].strip()
        reason = webhooks.url_refuse_reason(url)
        if reason:
            raise forms.ValidationError(reason)
        return url


def _tokens_page(request, form: TokenForm, *, secret: str | None = None, created=None, status=200):
    return render(
        request,
        "dashboard/api_tokens.html",
        {
            "form": form,
            "tokens": ApiToken.objects.select_related("created_by"),
            "secret": secret,
            "created": created,
            "events": AuditEvent.objects.filter(kind__startswith="token.").select_related("actor")[:50],
        },
        status=status,
    )


@login_required
@require_http_methods(["GET", "POST"])
def api_tokens(request):
    """List tokens; POST creates one and shows its secret on this answer only."""
    require_support(request)
    if request.method == "GET":
        return _tokens_page(request, TokenForm())
    form = TokenForm(request.POST)
    if not form.is_valid():
        return _tokens_page(request, form, status=400)
    try:
        token, secret = tokens.create(
            form.cleaned_data["name"],
            form.cleaned_data["scope"],
            expires_days=form.cleaned_data.get("expires_days"),
            by=request.user,
        )
    except tokens.TokenError as exc:
        form.add_error("name", str(exc))
        return _tokens_page(request, form, status=400)
    return _tokens_page(request, TokenForm(), secret=secret, created=token)


@login_required
@require_POST
def revoke_token(request, token_uuid):
    require_support(request)
    token = ApiToken.objects.filter(uuid=token_uuid).first()
    if token is None:
        raise Http404
    if tokens.revoke(token, by=request.user):
        messages.success(request, f"Token “{token.name}” is revoked; calls with it are refused from now on.")
    else:
        messages.info(request, f"Token “{token.name}” was already revoked.")
    return redirect("support_api_tokens")


def _webhooks_page(request, form: WebhookForm, *, secret: str | None = None, created=None, status=200):
    return render(
        request,
        "dashboard/webhooks.html",
        {
            "form": form,
            "endpoints": WebhookEndpoint.objects.all(),
            "secret": secret,
            "created": created,
            "events": webhooks.EVENTS,
        },
        status=status,
    )


@login_required
@require_http_methods(["GET", "POST"])
def webhook_list(request):
    """List endpoints; POST registers one (URL through the SSRF guard) and shows its signing secret once."""
    require_support(request)
    if request.method == "GET":
        return _webhooks_page(request, WebhookForm())
    form = WebhookForm(request.POST)
    if not form.is_valid():
        return _webhooks_page(request, form, status=400)
    secret = webhooks.new_secret()
    with transaction.atomic():
        endpoint = WebhookEndpoint(
            url=form.cleaned_data["url"], events=form.cleaned_data["events"], created_by=request.user
        )
        endpoint.set_secret(secret)
        endpoint.save()
        AuditEvent.record(
            AuditEvent.Kind.WEBHOOK_ADDED,
            actor=request.user,
            message=f"Webhook endpoint {endpoint.url} added for {', '.join(endpoint.events)}",
            endpoint=str(endpoint.uuid),
        )
    return _webhooks_page(request, WebhookForm(), secret=secret, created=endpoint)


def _endpoint(uuid) -> WebhookEndpoint:
    endpoint = WebhookEndpoint.objects.filter(uuid=uuid).first()
    if endpoint is None:
        raise Http404
    return endpoint


@login_required
@require_GET
def webhook_detail(request, endpoint_uuid):
    """One endpoint's delivery log: each delivery's event, status, attempts and last response code."""
    require_support(request)
    endpoint = _endpoint(endpoint_uuid)
    status = request.GET.get("status", "")
    deliveries = endpoint.deliveries.select_related("tenant")
    if status in WebhookDelivery.Status.values:
        deliveries = deliveries.filter(status=status)
    page = Paginator(deliveries, DELIVERIES_PER_PAGE).get_page(request.GET.get("page"))
    return render(
        request,
        "dashboard/webhook.html",
        {"endpoint": endpoint, "page": page, "status": status, "statuses": WebhookDelivery.Status.choices},
    )


@login_required
@require_POST
def webhook_toggle(request, endpoint_uuid):
    """Disable an endpoint, or enable it again (its failure clock starts afresh)."""
    require_support(request)
    endpoint = _endpoint(endpoint_uuid)
    enable = request.POST.get("action") == "enable"
    with transaction.atomic():
        WebhookEndpoint.objects.filter(pk=endpoint.pk).update(
            active=enable,
            failing_since=None,
            disabled_at=None if enable else endpoint.disabled_at or timezone.now(),
            disabled_reason="" if enable else "Disabled by support.",
        )
        AuditEvent.record(
            AuditEvent.Kind.WEBHOOK_CHANGED,
            actor=request.user,
            message=f"Webhook endpoint {endpoint.url} {'enabled' if enable else 'disabled'}",
            endpoint=str(endpoint.uuid),
        )
    messages.success(request, f"Endpoint {'enabled' if enable else 'disabled'}.")
    return redirect("support_webhook", endpoint_uuid=endpoint.uuid)


@login_required
@require_POST
def webhook_redeliver(request, delivery_uuid):
    """Send a delivery's event again (same event id and payload, a new signature)."""
    require_support(request)
    delivery = WebhookDelivery.objects.select_related("endpoint").filter(uuid=delivery_uuid).first()
    if delivery is None:
        raise Http404
    if not delivery.endpoint.active:
        messages.error(request, "The endpoint is disabled; enable it first, then redeliver.")
        return redirect("support_webhook", endpoint_uuid=delivery.endpoint.uuid)
    with transaction.atomic():
        webhooks.redeliver(delivery, by=request.user)
    messages.success(request, f"The {delivery.event} event is being delivered again.")
    return redirect("support_webhook", endpoint_uuid=delivery.endpoint.uuid)


urlpatterns = [
    path("support/api-tokens/", api_tokens, name="support_api_tokens"),
    path("support/api-tokens/<uuid:token_uuid>/revoke/", revoke_token, name="support_revoke_token"),
    path("support/webhooks/", webhook_list, name="support_webhooks"),
    path("support/webhooks/<uuid:endpoint_uuid>/", webhook_detail, name="support_webhook"),
    path("support/webhooks/<uuid:endpoint_uuid>/toggle/", webhook_toggle, name="support_webhook_toggle"),
    path(
        "support/webhooks/deliveries/<uuid:delivery_uuid>/redeliver/",
        webhook_redeliver,
        name="support_webhook_redeliver",
    ),
]
