"""Signed webhooks to the billing sync: ``tenant.ready``, ``tenant.not_ready``, ``tenant.drift``,
``mapping.changed`` and ``run.finished``.

- **Outbox**: ``emit`` stores one ``WebhookDelivery`` per subscribed endpoint in the caller's transaction (a run's
  results and its events commit together, or neither) and enqueues the send after commit.
- **Signature**: HMAC-SHA256 with the endpoint's secret over ``"{timestamp}.{body}"`` (the raw body bytes),
  sent as ``Webhook-Signature: t=<unix seconds>,v1=<hex digest>``; ``Webhook-Id`` (the event id, the same for a
  redelivery) and ``Webhook-Event`` name the event. Receivers recompute the digest, compare in constant time and
  refuse timestamps older than five minutes (README, "Integrating the billing sync").
- **Retries**: a non-2xx answer, a timeout or a refused connection is retried with exponential backoff (base
  ``WEBHOOK_BACKOFF_SECONDS``, doubling, capped at two hours, with jitter) until ``WEBHOOK_RETRY_HOURS`` after the
  event; short waits are a Celery countdown, long ones are picked up by the ``webhook_retries`` beat task.
- **Disable**: an endpoint whose deliveries failed without a success for ``WEBHOOK_RETRY_HOURS`` is disabled,
  audited, and support is e-mailed.
- **SSRF**: an endpoint URL must be https and resolve only to public addresses (``netguard``, the guard used for
  ConnectWise hosts), checked when support saves it and again at connect time by ``GuardedTransport``. Hosts in
  ``WEBHOOK_TRUSTED_HOSTS`` (a receiver inside the operator's network) are exempt and may use http.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import random
import secrets
import time
import uuid
from datetime import timedelta
from urllib.parse import urlsplit

import httpx
import orjson
from celery import shared_task
from django.conf import settings
from django.core.mail import send_mail
from django.db import transaction
from django.db.models import Q
from django.urls import reverse
from django.utils import timezone

from connectwise.checks.base import OK_STATUSES
from connectwise.checks.registry import STEP_KEYS

from . import crypto, netguard
from .models import AuditEvent, CheckRun, DriftAlert, Tenant, WebhookDelivery, WebhookEndpoint

log = logging.getLogger(__name__)

EVENTS = ("tenant.ready", "tenant.not_ready", "tenant.drift", "mapping.changed", "run.finished")
SIGNATURE_HEADER = "Webhook-Signature"
MAX_BACKOFF_SECONDS = 2 * 3600
COUNTDOWN_LIMIT_SECONDS = (
    600  # longer waits go through the beat task, not a Celery ETA (see module docstring)
)
SECRET_PREFIX = "whsec_"


# Signing -------------------------------------------------------------------------------------------------------


def new_secret() -> str:
    """A fresh signing secret (shown to support once; stored encrypted)."""
    return SECRET_PREFIX + secrets.token_urlsafe(32)


def signature(secret: str, timestamp: int, body: bytes) -> str:
    """The ``Webhook-Signature`` value: ``t=<timestamp>,v1=<hex HMAC-SHA256(secret, b"<timestamp>." + body)>``."""
    digest = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256).hexdigest()
    return f"t={timestamp},v1={digest}"


# Endpoint URLs (SSRF guard) -------------------------------------------------------------------------------------


def _host_port(url: str) -> tuple[str, str]:
    parts = urlsplit(url)
    host = (parts.hostname or "").lower()
    netloc_host = f"[{host}]" if ":" in host else host
    port = parts.port
    return host, f"{netloc_host}:{port}" if port else netloc_host


def is_trusted(url: str) -> bool:
    """The URL's host (or host:port) is listed in WEBHOOK_TRUSTED_HOSTS."""
    host, host_port = _host_port(url)
    trusted = set(settings.WEBHOOK_TRUSTED_HOSTS)
    return host_port in trusted or host in trusted


def url_refuse_reason(url: str) -> str | None:
    """None when support may register ``url``; else why not, in plain words. Never raises for bad input."""
    try:
        parts = urlsplit(url.strip())
        parts.port  # noqa: B018 - raises ValueError on a bad port
    except ValueError:
        return "That is not a valid URL."
    if parts.scheme not in ("https", "http") or not parts.hostname:
        return "Give a full https:// URL."
    if parts.username or parts.password:
        return "Put no user name or password in the URL; deliveries are authenticated by their signature."
    if is_trusted(url):
        return None
    if parts.scheme != "https":
        return "Use https://; plain http is allowed only for hosts in WEBHOOK_TRUSTED_HOSTS."
    _, host_port = _host_port(url)
    return netguard.refuse_reason(host_port)


def _transport(url: str) -> httpx.BaseTransport:
    if is_trusted(url):
        return httpx.HTTPTransport(trust_env=False)
    return netguard.GuardedTransport(limits=httpx.Limits(max_connections=1, max_keepalive_connections=0))


# Emitting --------------------------------------------------------------------------------------------------------


def _absolute(path: str) -> str:
    return settings.SITE_URL.rstrip("/") + path


def tenant_ref(tenant: Tenant) -> dict:
    """How an event names a tenant: slug, name, readiness and the API URL to read more."""
    return {
        "slug": tenant.slug,
        "name": tenant.name,
        "ready": bool(tenant.ready),
        "blocked_at": tenant.first_open_step or None,
        "url": _absolute(reverse("api:tenant", args=[tenant.slug])),
    }


def emit(event: str, tenant: Tenant | None, data: dict) -> list[WebhookDelivery]:
    """Store one delivery per active endpoint subscribed to ``event`` and send each after commit."""
    if event not in EVENTS:
        raise ValueError(f"unknown webhook event {event!r}")
    endpoints = [e for e in WebhookEndpoint.objects.filter(active=True) if event in (e.events or [])]
    if not endpoints:
        return []
    event_id = uuid.uuid4()
    now = timezone.now()
    payload = {"id": str(event_id), "type": event, "created_at": now.isoformat(), "data": data}
    deliveries = WebhookDelivery.objects.bulk_create(
        [
            WebhookDelivery(
                endpoint=e,
                event_id=event_id,
                event=event,
                tenant=tenant,
                payload=payload,
                next_attempt_at=now,
            )
            for e in endpoints
        ]
    )
    ids = [d.pk for d in deliveries]
    transaction.on_commit(lambda: [deliver.delay(pk) for pk in ids])
    return deliveries


# The events a run's end may emit (on_run_ended).
RUN_EVENTS = ("run.finished", "tenant.ready", "tenant.not_ready", "tenant.drift")


def subscribed(events) -> bool:
    """True when an active endpoint subscribes to one of ``events`` (one query)."""
    wanted = set(events)
    return any(
        wanted & set(e or [])
        for e in WebhookEndpoint.objects.filter(active=True).values_list("events", flat=True)
    )


def on_run_ended(run: CheckRun, previous_statuses: dict | None = None) -> None:
    """Called by ``runs.finish`` (and ``runs.fail``) inside their transaction, after the tenant row is saved:
    marks the tenant updated for ``updated_since`` and emits run.finished, plus tenant.ready / tenant.not_ready
    when readiness flipped and tenant.drift when this run opened a drift."""
    now = timezone.now()
    Tenant.objects.filter(pk=run.tenant_id).update(updated_at=now)
    if not subscribed(RUN_EVENTS):
        return  # no endpoint listens: nothing to build (every run of the fleet ends here)
    tenant = Tenant.objects.get(pk=run.tenant_id)
    run = CheckRun.objects.get(pk=run.pk)
    emit(
        "run.finished",
        tenant,
        {
            "tenant": tenant_ref(tenant),
            "run": {
                "uuid": str(run.uuid),
                "url": _absolute(reverse("api:run", args=[run.uuid])),
                "status": run.status,
                "ready": run.ready,
                "trigger": run.trigger,
                "finished_at": run.finished_at.isoformat() if run.finished_at else None,
            },
        },
    )
    if previous_statuses is None or run.status != CheckRun.Status.DONE:
        return
    was_ready = bool(previous_statuses) and all(previous_statuses.get(k) in OK_STATUSES for k in STEP_KEYS)
    if tenant.ready and not was_ready:
        emit("tenant.ready", tenant, {"tenant": tenant_ref(tenant), "run": str(run.uuid)})
    elif was_ready and not tenant.ready:
        emit("tenant.not_ready", tenant, {"tenant": tenant_ref(tenant), "run": str(run.uuid)})
    opened = list(DriftAlert.objects.filter(run=run).values_list("step", flat=True))
    if opened:
        emit(
            "tenant.drift",
            tenant,
            {
                "tenant": tenant_ref(tenant),
                "run": str(run.uuid),
                "steps": opened,
                "drift_steps": tenant.drift_steps,
            },
        )


def on_mapping_changed(tenant: Tenant, summary: str) -> None:
    """The chosen companies, motions, agreements or billing matches changed: mark updated, emit mapping.changed."""
    Tenant.objects.filter(pk=tenant.pk).update(updated_at=timezone.now())
    emit(
        "mapping.changed",
        tenant,
        {
            "tenant": tenant_ref(tenant),
            "summary": summary,
            "mapping_url": _absolute(reverse("api:mapping", args=[tenant.slug])),
        },
    )


# Sending ---------------------------------------------------------------------------------------------------------


def backoff_seconds(attempts: int, rng: random.Random | None = None) -> float:
    """Wait before attempt ``attempts + 1``: base * 2^(attempts-1), capped at two hours, +-10 % jitter."""
    base = settings.WEBHOOK_BACKOFF_SECONDS * (2 ** max(0, attempts - 1))
    return min(MAX_BACKOFF_SECONDS, base) * (rng or random).uniform(0.9, 1.1)


def _claim(delivery_id: int, now) -> WebhookDelivery | None:
    """Take a due delivery for one attempt; a lease on next_attempt_at keeps a duplicate message from sending
    it twice at once, and a worker that dies mid-send leaves it to the beat task when the lease ends."""
    lease = now + timedelta(seconds=settings.WEBHOOK_TIMEOUT_SECONDS + 60)
    claimed = WebhookDelivery.objects.filter(
        pk=delivery_id,
        status__in=[WebhookDelivery.Status.PENDING, WebhookDelivery.Status.RETRYING],
        next_attempt_at__lte=now,
    ).update(next_attempt_at=lease)
    if not claimed:
        return None
    return WebhookDelivery.objects.select_related("endpoint").get(pk=delivery_id)


def send_once(
    delivery: WebhookDelivery, *, transport: httpx.BaseTransport | None = None
) -> tuple[int | None, str]:
    """POST the signed payload once; returns (status code or None, error text). Never raises for the network."""
    endpoint = delivery.endpoint
    body = orjson.dumps(delivery.payload)
    timestamp = int(time.time())
    try:
        secret = endpoint.get_secret()
    except crypto.DecryptionError:  # an encryption key removed too early: nothing can be signed, say so
        return None, "The endpoint's signing secret cannot be decrypted with FIELD_ENCRYPTION_KEYS."
    headers = {
        "Content-Type": "application/json",
        "User-Agent": "billing-sync-readiness-webhooks/1",
        "Webhook-Id": str(delivery.event_id),
        "Webhook-Event": delivery.event,
        "Webhook-Timestamp": str(timestamp),
        SIGNATURE_HEADER: signature(secret, timestamp, body),
    }
    try:
        with httpx.Client(
            transport=transport or _transport(endpoint.url),
            timeout=httpx.Timeout(settings.WEBHOOK_TIMEOUT_SECONDS),
            follow_redirects=False,
        ) as client:
            response = client.post(endpoint.url, content=body, headers=headers)
    except httpx.HTTPError as exc:
        # The exception's class and its own message (no headers, no body; the URL is support's own).
        return None, f"{type(exc).__name__}: {str(exc)[:200]}"
    if 200 <= response.status_code < 300:
        return response.status_code, ""
    return response.status_code, f"HTTP {response.status_code}"


def attempt(delivery_id: int, *, transport: httpx.BaseTransport | None = None, now=None) -> str:
    """One attempt of a due delivery and its bookkeeping; returns the delivery's status (or "skipped")."""
    now = now or timezone.now()
    delivery = _claim(delivery_id, now)
    if delivery is None:
        return "skipped"
    endpoint = delivery.endpoint
    if not endpoint.active:
        WebhookDelivery.objects.filter(pk=delivery.pk).update(
            status=WebhookDelivery.Status.FAILED, last_error="The endpoint is disabled.", next_attempt_at=None
        )
        return WebhookDelivery.Status.FAILED
    code, error = send_once(delivery, transport=transport)
    now = timezone.now()
    attempts = delivery.attempts + 1
    if not error:
        WebhookDelivery.objects.filter(pk=delivery.pk).update(
            status=WebhookDelivery.Status.DELIVERED,
            attempts=attempts,
            response_code=code,
            last_error="",
            last_attempt_at=now,
            delivered_at=now,
            next_attempt_at=None,
        )
        WebhookEndpoint.objects.filter(pk=endpoint.pk).update(failing_since=None)
        return WebhookDelivery.Status.DELIVERED
    wait = backoff_seconds(attempts)
    give_up = delivery.created_at + timedelta(hours=settings.WEBHOOK_RETRY_HOURS) < now + timedelta(
        seconds=wait
    )
    WebhookDelivery.objects.filter(pk=delivery.pk).update(
        status=WebhookDelivery.Status.FAILED if give_up else WebhookDelivery.Status.RETRYING,
        attempts=attempts,
        response_code=code,
        last_error=error[:300],
        last_attempt_at=now,
        next_attempt_at=None if give_up else now + timedelta(seconds=wait),
    )
    WebhookEndpoint.objects.filter(pk=endpoint.pk, failing_since__isnull=True).update(failing_since=now)
    _disable_if_failing(endpoint.pk, now)
    if not give_up and wait <= COUNTDOWN_LIMIT_SECONDS:
        deliver.apply_async((delivery.pk,), countdown=wait)
    return WebhookDelivery.Status.FAILED if give_up else WebhookDelivery.Status.RETRYING


def _disable_if_failing(endpoint_id: int, now) -> bool:
    """Disable an endpoint that has failed without a success for WEBHOOK_RETRY_HOURS; tell support once."""
    cutoff = now - timedelta(hours=settings.WEBHOOK_RETRY_HOURS)
    with transaction.atomic():
        if not WebhookEndpoint.objects.filter(pk=endpoint_id, active=True, failing_since__lte=cutoff).update(
            active=False,
            disabled_at=now,
            disabled_reason=f"Every delivery failed for {settings.WEBHOOK_RETRY_HOURS} hours.",
        ):
            return False
        endpoint = WebhookEndpoint.objects.get(pk=endpoint_id)
        WebhookDelivery.objects.filter(
            endpoint=endpoint, status__in=[WebhookDelivery.Status.PENDING, WebhookDelivery.Status.RETRYING]
        ).update(
            status=WebhookDelivery.Status.FAILED,
            last_error="The endpoint was disabled.",
            next_attempt_at=None,
        )
        AuditEvent.record(
            AuditEvent.Kind.WEBHOOK_DISABLED,
            actor="webhooks",
            message=f"Webhook endpoint {endpoint.url} disabled: {endpoint.disabled_reason}",
            endpoint=str(endpoint.uuid),
        )
    send_mail(
        "Webhook endpoint disabled",
        f"The webhook endpoint {endpoint.url} was disabled: {endpoint.disabled_reason}\n"
        f"Check the receiver, then enable it again at {_absolute(reverse('support_webhooks'))}.",
        settings.DEFAULT_FROM_EMAIL,
        [settings.SUPPORT_EMAIL],
        fail_silently=True,
    )
    log.warning("webhook endpoint %s disabled after a day of failures", endpoint.uuid)
    return True


def redeliver(delivery: WebhookDelivery, *, by=None) -> WebhookDelivery:
    """Send the same event (same id and payload) to the same endpoint again, as a new delivery."""
    copy = WebhookDelivery.objects.create(
        endpoint=delivery.endpoint,
        event_id=delivery.event_id,
        event=delivery.event,
        tenant=delivery.tenant,
        payload=delivery.payload,
        redelivery_of=delivery,
        next_attempt_at=timezone.now(),
    )
    transaction.on_commit(lambda: deliver.delay(copy.pk))
    return copy


@shared_task(name="onboarding.deliver_webhook", soft_time_limit=120, time_limit=150)
def deliver(delivery_id: int) -> str:
    """Celery: one attempt of a delivery (ids only; safe to run twice: the claim lets one through)."""
    return attempt(delivery_id)


@shared_task(name="onboarding.webhook_retries")
def retry_due() -> int:
    """Beat: enqueue deliveries that are due (long backoffs, lost messages, expired leases)."""
    due = WebhookDelivery.objects.filter(
        Q(status__in=[WebhookDelivery.Status.PENDING, WebhookDelivery.Status.RETRYING]),
        next_attempt_at__lte=timezone.now(),
    ).values_list("pk", flat=True)[:500]
    ids = list(due)
    for pk in ids:
        deliver.delay(pk)
    return len(ids)
