"""Webhooks: signed deliveries checked by an independent HMAC, retries with backoff to a local receiver,
redelivery, auto-disable after a day, the SSRF guard on endpoint URLs, and the events runs and mapping changes
emit."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest
from django.core import mail
from django.utils import timezone

from connectwise.checks.base import Status, StepOutcome
from connectwise.checks.registry import STEP_KEYS
from onboarding import runs, webhooks
from onboarding.models import AuditEvent, CheckRun, Tenant, WebhookDelivery, WebhookEndpoint
from tests.api.receiver import Receiver, hmac_sha256_by_hand, verify
from tests.api.test_api import make_tenant
from tests.onboarding.test_cli import sandbox  # noqa: F401 (fixture)

SECRET = "whsec_test-secret-0123456789"


@pytest.fixture
def sent(monkeypatch):
    """Celery sends recorded instead of published: (task name, args, countdown)."""
    calls = []
    monkeypatch.setattr(webhooks.deliver, "delay", lambda *a: calls.append(("delay", a, None)))
    monkeypatch.setattr(
        webhooks.deliver,
        "apply_async",
        lambda args, countdown=None: calls.append(("apply_async", args, countdown)),
    )
    return calls


def endpoint_for(url, events=webhooks.EVENTS, **fields):
    e = WebhookEndpoint(url=url, events=list(events), **fields)
    e.set_secret(SECRET)
    e.save()
    return e


def test_the_independent_hmac_matches_the_standard_one():
    import hashlib
    import hmac

    for key in (b"k", b"x" * 64, b"y" * 100):
        assert hmac_sha256_by_hand(key, b"msg") == hmac.new(key, b"msg", hashlib.sha256).hexdigest()


@pytest.mark.django_db
def test_a_delivery_is_signed_over_timestamp_and_body(settings, sent, django_capture_on_commit_callbacks):
    tenant = make_tenant("acme")
    with Receiver() as receiver:
        settings.WEBHOOK_TRUSTED_HOSTS = [receiver.host]
        endpoint = endpoint_for(receiver.url)
        with django_capture_on_commit_callbacks(execute=True):
            (delivery,) = webhooks.emit("mapping.changed", tenant, {"tenant": webhooks.tenant_ref(tenant)})
        assert sent == [("delay", (delivery.pk,), None)]  # the task gets an id, never a secret or payload
        assert webhooks.attempt(delivery.pk) == "delivered"
        got = receiver.received[0]
    headers, body = got["headers"], got["body"]
    assert verify(SECRET, headers["Webhook-Signature"], body)
    assert not verify("whsec_other", headers["Webhook-Signature"], body)
    assert not verify(SECRET, headers["Webhook-Signature"], body + b" ")
    assert headers["Webhook-Event"] == "mapping.changed" and headers["Webhook-Id"] == str(delivery.event_id)
    payload = json.loads(body)
    assert payload["type"] == "mapping.changed" and payload["data"]["tenant"]["slug"] == "acme"
    assert SECRET not in body.decode() and SECRET not in json.dumps(dict(headers))
    stored = WebhookDelivery.objects.get(pk=delivery.pk)
    assert (stored.status, stored.attempts, stored.response_code) == ("delivered", 1, 204)
    assert endpoint.secret_encrypted and SECRET not in endpoint.secret_encrypted


@pytest.mark.django_db
def test_a_receiver_that_fails_twice_gets_it_on_the_third_attempt_with_growing_waits(settings, sent):
    settings.WEBHOOK_BACKOFF_SECONDS = 60
    tenant = make_tenant("acme")
    with Receiver([500, 503, 200]) as receiver:
        settings.WEBHOOK_TRUSTED_HOSTS = [receiver.host]
        endpoint_for(receiver.url)
        (delivery,) = webhooks.emit("run.finished", tenant, {"x": 1})
        waits = []
        for expected in ("retrying", "retrying", "delivered"):
            WebhookDelivery.objects.filter(pk=delivery.pk).update(next_attempt_at=timezone.now())
            assert webhooks.attempt(delivery.pk) == expected
            d = WebhookDelivery.objects.get(pk=delivery.pk)
            if expected == "retrying":
                waits.append((d.next_attempt_at - d.last_attempt_at).total_seconds())
        assert [r["answered"] for r in receiver.received] == [500, 503, 200]
        assert len({r["headers"]["Webhook-Id"] for r in receiver.received}) == 1
    assert 54 <= waits[0] <= 66 and 108 <= waits[1] <= 132  # 1 min, then 2 min (+-10 % jitter)
    assert [c[2] for c in sent if c[0] == "apply_async"] == [
        pytest.approx(waits[0], abs=1),
        pytest.approx(waits[1], abs=1),
    ]
    d = WebhookDelivery.objects.get(pk=delivery.pk)
    assert (d.status, d.attempts, d.response_code, d.last_error) == ("delivered", 3, 200, "")
    assert WebhookEndpoint.objects.get().failing_since is None


@pytest.mark.django_db
def test_a_delivery_not_yet_due_or_already_done_is_not_sent_again(settings, sent):
    tenant = make_tenant("acme")
    with Receiver() as receiver:
        settings.WEBHOOK_TRUSTED_HOSTS = [receiver.host]
        endpoint_for(receiver.url)
        (delivery,) = webhooks.emit("run.finished", tenant, {})
        assert webhooks.attempt(delivery.pk) == "delivered"
        assert webhooks.attempt(delivery.pk) == "skipped"  # a duplicate message
    assert len(receiver.received) == 1


@pytest.mark.django_db
def test_retries_stop_a_day_after_the_event(settings, sent):
    settings.WEBHOOK_BACKOFF_SECONDS = 60
    tenant = make_tenant("acme")
    with Receiver([500]) as receiver:
        settings.WEBHOOK_TRUSTED_HOSTS = [receiver.host]
        endpoint_for(receiver.url)
        (delivery,) = webhooks.emit("run.finished", tenant, {})
        WebhookDelivery.objects.filter(pk=delivery.pk).update(
            created_at=timezone.now()
            - timedelta(hours=23, minutes=59, seconds=50)  # the next wait (~60 s) ends past the day
        )
        assert webhooks.attempt(delivery.pk) == "failed"
    assert WebhookDelivery.objects.get().next_attempt_at is None


@pytest.mark.django_db
def test_an_endpoint_failing_for_a_day_is_disabled_and_support_is_told(settings, sent):
    settings.SUPPORT_EMAIL = "support@distributor.example"
    tenant = make_tenant("acme")
    with Receiver([500, 500]) as receiver:
        settings.WEBHOOK_TRUSTED_HOSTS = [receiver.host]
        endpoint = endpoint_for(receiver.url)
        (first,) = webhooks.emit("run.finished", tenant, {})
        (second,) = webhooks.emit("run.finished", tenant, {})
        assert webhooks.attempt(first.pk) == "retrying"
        assert WebhookEndpoint.objects.get().active  # one failure is not a day of failures
        WebhookEndpoint.objects.filter(pk=endpoint.pk).update(
            failing_since=timezone.now() - timedelta(hours=24, minutes=1)
        )
        webhooks.attempt(second.pk)
    endpoint.refresh_from_db()
    assert not endpoint.active and endpoint.disabled_at is not None
    assert set(WebhookDelivery.objects.values_list("status", flat=True)) == {"failed"}
    assert [m.to for m in mail.outbox] == [["support@distributor.example"]]
    assert receiver.url in mail.outbox[0].body and SECRET not in mail.outbox[0].body
    assert AuditEvent.objects.filter(kind="webhook.disabled").count() == 1
    assert webhooks.emit("run.finished", tenant, {}) == []  # a disabled endpoint gets no new events


@pytest.mark.django_db
def test_the_beat_task_picks_up_due_deliveries(sent):
    tenant = make_tenant("acme")
    endpoint_for("https://hooks.example.com/x")
    (due,) = webhooks.emit("run.finished", tenant, {})
    (later,) = webhooks.emit("run.finished", tenant, {})
    WebhookDelivery.objects.filter(pk=later.pk).update(next_attempt_at=timezone.now() + timedelta(hours=1))
    sent.clear()
    assert webhooks.retry_due() == 1
    assert sent == [("delay", (due.pk,), None)]


# SSRF guard ------------------------------------------------------------------------------------------------------


@pytest.mark.django_db
@pytest.mark.parametrize(
    "url",
    [
        "https://127.0.0.1/hook",
        "https://10.1.2.3/hook",
        "https://169.254.169.254/latest/meta-data",
        "https://[::1]:8443/hook",
        "https://0x7f.1/hook",
        "https://2130706433/hook",
        "https://localhost/hook",
        "http://hooks.example.com/hook",
        "https://user:pw@hooks.example.com/hook",
        "ftp://hooks.example.com/hook",
        "https://hooks.example.com:99999/hook",
        "not a url",
    ],
)
def test_support_cannot_register_a_private_or_odd_webhook_url(client, support, url, monkeypatch):
    from tests.onboarding.test_hosts import fake_resolver

    fake_resolver(monkeypatch, {"localhost": ["127.0.0.1"], "hooks.example.com": ["93.184.216.34"]})
    client.force_login(support)
    response = client.post("/support/webhooks/", {"url": url, "events": ["run.finished"]})
    assert response.status_code == 400
    assert not WebhookEndpoint.objects.exists()


@pytest.mark.django_db
def test_a_public_https_url_is_accepted_and_its_secret_shown_once(client, support, monkeypatch):
    from tests.onboarding.test_hosts import fake_resolver

    fake_resolver(monkeypatch, {"hooks.example.com": ["93.184.216.34"]})
    client.force_login(support)
    response = client.post(
        "/support/webhooks/", {"url": "https://hooks.example.com/billing", "events": ["run.finished"]}
    )
    assert response.status_code == 200
    endpoint = WebhookEndpoint.objects.get()
    secret = endpoint.get_secret()
    page = response.content.decode()
    assert f'data-testid="webhook-secret">{secret}<' in page
    assert 'id="new-webhook"' in page and "Endpoint added: https://hooks.example.com/billing" in page
    assert '<h2 class="h6" id="add-title">Add an endpoint</h2>' in page
    assert secret not in client.get("/support/webhooks/").content.decode()
    assert secret not in client.get(f"/support/webhooks/{endpoint.uuid}/").content.decode()
    assert AuditEvent.objects.filter(kind="webhook.added").count() == 1


@pytest.mark.django_db
def test_at_send_time_a_host_that_now_resolves_privately_is_refused(settings, sent, monkeypatch):
    """DNS rebinding: the URL was public when saved; the guarded transport re-checks every connect."""
    from tests.onboarding.test_hosts import fake_resolver

    tenant = make_tenant("acme")
    with Receiver() as receiver:
        port = receiver.server.server_address[1]
        fake_resolver(monkeypatch, {"hooks.example.com": ["127.0.0.1"]})
        endpoint_for(f"https://hooks.example.com:{port}/hook")
        (delivery,) = webhooks.emit("run.finished", tenant, {})
        assert webhooks.attempt(delivery.pk) == "retrying"
    assert receiver.received == []
    assert "private or reserved" in WebhookDelivery.objects.get().last_error


# Support pages ---------------------------------------------------------------------------------------------------


@pytest.mark.django_db
def test_support_redelivers_a_delivery_with_the_same_event_id(
    client, support, settings, sent, django_capture_on_commit_callbacks
):
    tenant = make_tenant("acme")
    with Receiver() as receiver:
        settings.WEBHOOK_TRUSTED_HOSTS = [receiver.host]
        endpoint = endpoint_for(receiver.url)
        (original,) = webhooks.emit("tenant.ready", tenant, {"tenant": webhooks.tenant_ref(tenant)})
        webhooks.attempt(original.pk)
        client.force_login(support)
        page = client.get(f"/support/webhooks/{endpoint.uuid}/")
        assert "tenant.ready" in page.content.decode() and "204" in page.content.decode()
        with django_capture_on_commit_callbacks(execute=True):
            response = client.post(f"/support/webhooks/deliveries/{original.uuid}/redeliver/")
        assert response.status_code == 302
        copy = WebhookDelivery.objects.exclude(pk=original.pk).get()
        assert copy.redelivery_of == original and copy.event_id == original.event_id
        assert webhooks.attempt(copy.pk) == "delivered"
    assert [r["headers"]["Webhook-Id"] for r in receiver.received] == [str(original.event_id)] * 2
    assert json.loads(receiver.received[0]["body"]) == json.loads(receiver.received[1]["body"])


@pytest.mark.django_db
def test_webhook_pages_are_support_only(client, admin_a):
    client.force_login(admin_a)
    assert client.get("/support/webhooks/").status_code == 404
    assert (
        client.post(
            "/support/webhooks/", {"url": "https://hooks.example.com/", "events": ["run.finished"]}
        ).status_code
        == 404
    )
    assert client.get("/support/api-tokens/").status_code == 404


# Events ----------------------------------------------------------------------------------------------------------


def outcomes(status_of: dict[str, Status]):
    return [StepOutcome(key=k, status=status_of.get(k, Status.PASS)) for k in STEP_KEYS]


@pytest.mark.django_db
def test_runs_emit_run_finished_ready_not_ready_and_drift(sent, django_capture_on_commit_callbacks):
    tenant = make_tenant("acme")
    endpoint_for("https://hooks.example.com/x")

    def finish(status_of):
        run = CheckRun.objects.create(tenant=tenant, status=CheckRun.Status.RUNNING)
        before = WebhookDelivery.objects.count()
        with django_capture_on_commit_callbacks(execute=True):
            runs.finish(run, outcomes(status_of), calls=1, retries=0, started=0)
        return list(WebhookDelivery.objects.order_by("id").values_list("event", flat=True)[before:])

    assert finish({"catalog": Status.FAIL}) == ["run.finished"]
    assert finish({}) == ["run.finished", "tenant.ready"]
    assert finish({}) == ["run.finished"]
    assert finish({"catalog": Status.FAIL}) == ["run.finished", "tenant.not_ready", "tenant.drift"]
    drift = WebhookDelivery.objects.filter(event="tenant.drift").get()
    assert drift.payload["data"]["steps"] == ["catalog"]
    finished = WebhookDelivery.objects.filter(event="run.finished").last()
    assert finished.payload["data"]["run"]["status"] == "done"
    assert finished.payload["data"]["run"]["url"].endswith(
        f"/api/v1/runs/{finished.payload['data']['run']['uuid']}/"
    )


@pytest.mark.django_db
def test_a_run_end_no_endpoint_listens_to_costs_two_queries(sent, django_assert_num_queries):
    """Issue 16: every run of the fleet ends through on_run_ended; with no endpoint for its events, it marks the
    tenant updated and builds nothing (no reload of the tenant and run, no URL, no drift query)."""
    tenant = make_tenant("acme")
    endpoint_for("https://hooks.example.com/a", events=["mapping.changed"])
    endpoint_for("https://hooks.example.com/b", events=["run.finished"], active=False)
    run = CheckRun.objects.create(tenant=tenant, status=CheckRun.Status.DONE)
    before = Tenant.objects.get(pk=tenant.pk).updated_at
    with django_assert_num_queries(2):  # the tenant's updated_at, the active endpoints' events
        webhooks.on_run_ended(run, {})
    assert Tenant.objects.get(pk=tenant.pk).updated_at > before
    assert not WebhookDelivery.objects.exists()


@pytest.mark.django_db
def test_a_run_that_fails_emits_run_finished_with_its_error(sent):
    tenant = make_tenant("acme")
    endpoint_for("https://hooks.example.com/x", events=["run.finished"])
    run = CheckRun.objects.create(tenant=tenant, status=CheckRun.Status.RUNNING)
    runs.fail(run, "ConnectWise error: boom")
    assert WebhookDelivery.objects.get().payload["data"]["run"]["status"] == "error"


@pytest.mark.django_db
def test_endpoints_get_only_the_events_they_chose(sent):
    tenant = make_tenant("acme")
    endpoint_for("https://hooks.example.com/a", events=["mapping.changed"])
    assert webhooks.emit("run.finished", tenant, {}) == []
    with pytest.raises(ValueError):
        webhooks.emit("tenant.exploded", tenant, {})


@pytest.mark.django_db
def test_mapping_changes_from_the_page_and_the_command_emit_mapping_changed(
    client, admin_a, tenant_a, sent, tmp_path, monkeypatch
):
    from onboarding.models import Tenant
    from tests.onboarding.wizard_helpers import directory_row

    endpoint_for("https://hooks.example.com/a", events=["mapping.changed"])
    directory_row(tenant_a, 7, "Contoso")
    Tenant.objects.filter(pk=tenant_a.pk).update(updated_at=timezone.now() - timedelta(days=3))
    client.force_login(admin_a)
    client.post(f"/t/{tenant_a.slug}/customers/select/", {"action": "add", "company": ["7"]})
    event = WebhookDelivery.objects.get()
    assert event.event == "mapping.changed" and event.payload["data"]["tenant"]["slug"] == tenant_a.slug
    assert event.payload["data"]["mapping_url"].endswith(f"/api/v1/tenants/{tenant_a.slug}/mapping/")
    assert Tenant.objects.get(pk=tenant_a.pk).updated_at > timezone.now() - timedelta(minutes=1)
    client.post(
        f"/t/{tenant_a.slug}/customers/select/", {"action": "add", "company": ["7"]}
    )  # nothing changed
    assert WebhookDelivery.objects.count() == 1

    from onboarding import mapping

    mapping.record_change(tenant_a, "operator (command line)", "2 companies chosen from x.csv")
    assert WebhookDelivery.objects.count() == 2


def test_the_readme_signature_snippet_accepts_our_signatures_and_refuses_others():
    """Keeps README's "Integrating the billing sync" snippet true."""
    import re
    import time
    from pathlib import Path

    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text()
    section = readme.split("## Integrating the billing sync", 1)[1]
    code = re.search(r"```python\n(.*?)```", section, re.S).group(1)
    namespace: dict = {}
    exec(code, namespace)  # noqa: S102 - our own README
    check = namespace["verify_webhook"]
    body = b'{"type":"run.finished"}'
    now = int(time.time())
    header = webhooks.signature(SECRET, now, body)
    assert check(SECRET, header, body)
    assert not check(SECRET, header, body + b"x")
    assert not check("whsec_wrong", header, body)
    assert not check(SECRET, webhooks.signature(SECRET, now - 3600, body), body)
    assert not check(SECRET, "v1=abc", body)


@pytest.mark.django_db
def test_a_secret_that_cannot_be_decrypted_fails_the_attempt_clearly(settings, sent):
    from cryptography.fernet import Fernet

    tenant = make_tenant("acme")
    endpoint_for("https://hooks.example.com/x")
    (delivery,) = webhooks.emit("run.finished", tenant, {})
    settings.FIELD_ENCRYPTION_KEYS = [Fernet.generate_key().decode()]  # the old key removed too early
    assert webhooks.attempt(delivery.pk) == "retrying"
    assert "cannot be decrypted" in WebhookDelivery.objects.get().last_error


@pytest.mark.django_db
def test_rotate_keys_re_encrypts_webhook_secrets(settings):
    from io import StringIO

    from cryptography.fernet import Fernet
    from django.core.management import call_command

    endpoint = endpoint_for("https://hooks.example.com/x")
    new = Fernet.generate_key().decode()
    settings.FIELD_ENCRYPTION_KEYS = [new, *settings.FIELD_ENCRYPTION_KEYS]
    out = StringIO()
    call_command("rotate_keys", stdout=out)
    assert "1 webhook signing secret" in out.getvalue()
    settings.FIELD_ENCRYPTION_KEYS = [new]
    endpoint.refresh_from_db()
    assert endpoint.get_secret() == SECRET


@pytest.mark.django_db
def test_the_tenant_customers_command_emits_mapping_changed(sandbox, monkeypatch, tmp_path, sent):  # noqa: F811
    """The command path of the one mapping service (against the in-process sandbox); a refused file emits nothing."""
    from django.core.management.base import CommandError

    from tests.onboarding.test_cli import connect, run

    endpoint_for("https://hooks.example.com/a", events=["mapping.changed"])
    connect(monkeypatch, "acme", "acme")
    good = tmp_path / "good.csv"
    good.write_text("company,motion\nContosoLtd,monthly\n")
    run("tenant_customers", "acme", "--csv", str(good))
    (event,) = WebhookDelivery.objects.all()
    assert event.event == "mapping.changed" and event.payload["data"]["tenant"]["slug"] == "acme"
    bad = tmp_path / "bad.csv"
    bad.write_text("company,motion\nNoSuchCo,monthly\n")
    with pytest.raises(CommandError):
        run("tenant_customers", "acme", "--csv", str(bad))
    assert WebhookDelivery.objects.count() == 1
