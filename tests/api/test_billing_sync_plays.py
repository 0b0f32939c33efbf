"""The billing sync plays its part, with real parts: the sandbox ConnectWise in its own process, a real Celery
worker, Django's live server, and a webhook receiver on loopback.

It gets a token from the operator's command, lists the ready tenants, reads a mapping, starts a verification
twice with one Idempotency-Key (one run), polls it, and receives the signed ``run.finished`` webhook, which the
receiver refuses twice before accepting (Celery retries it with backoff).
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from io import StringIO
from urllib.parse import urlsplit

import httpx
import pytest
from django.core.management import call_command

from onboarding import results, runs
from onboarding.models import CheckRun, CompanyChoice, Connection, Tenant, WebhookDelivery, WebhookEndpoint
from tests.api.receiver import Receiver, verify
from tests.e2e.conftest import ROOT, SCENARIOS, Worker, free_port, stop, wait_for, worker_env

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def receiver():
    with Receiver() as r:
        yield r


@pytest.fixture(scope="module")
def sync_sandbox(tmp_path_factory):
    port = free_port()
    log = open(tmp_path_factory.mktemp("logs") / "sandbox.log", "w")  # noqa: SIM115
    cmd = [
        sys.executable,
        "manage.py",
        "cw_sandbox",
        "--port",
        str(port),
        "--scenario",
        str(SCENARIOS / "healthy.json"),
    ]
    proc = subprocess.Popen(cmd, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    url = f"http://127.0.0.1:{port}"
    try:
        wait_for(f"{url}/_sandbox/", 30, proc)
        yield url
    finally:
        stop(proc)
        log.close()


@pytest.fixture(scope="module")
def sync_worker(django_db_setup, django_db_blocker, sync_sandbox, receiver, tmp_path_factory):
    from onboarding.celery import app

    with django_db_blocker.unblock():
        env = worker_env(sync_sandbox)
    env.update(WEBHOOK_TRUSTED_HOSTS=receiver.host, WEBHOOK_BACKOFF_SECONDS="1")
    app.control.purge()  # leftovers of an earlier run must not reach this database
    worker = Worker(env, tmp_path_factory.mktemp("logs") / "worker.log")
    worker.start()
    yield worker
    worker.stop()


def wait_until(predicate, seconds: float, what: str):
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.2)
    raise AssertionError(f"timed out after {seconds} s waiting for {what}")


def test_the_billing_sync_plays(
    transactional_db, live_server, sync_worker, sync_sandbox, receiver, settings, client, support
):
    settings.CONNECTWISE_SANDBOX_URL = sync_sandbox
    settings.WEBHOOK_TRUSTED_HOSTS = [receiver.host]

    # The partner's side: a connected tenant whose chosen customers are set up, verified once (ready).
    tenant = Tenant.objects.create(slug="acme-msp", name="Acme MSP")
    conn = Connection(
        tenant=tenant, site=urlsplit(sync_sandbox).netloc, company_id="acme", public_key="acmepub"
    )
    conn.set_private_key("acmepriv-0123456789")
    conn.save()
    CompanyChoice.objects.bulk_create(
        [
            CompanyChoice(tenant=tenant, cw_company_id=c, motion="annual" if c == 7 else "monthly")
            for c in range(1, 13)
        ]
    )  # the healthy scenario: company 7 (Litware) bills annually on a one-time agreement
    first = runs.run_now(Tenant.objects.get(pk=tenant.pk), trigger=CheckRun.Trigger.CLI)
    assert first.status == "done" and first.ready, json.dumps(results.run_as_dict(first), indent=1)[:3000]

    # Support registers the sync's endpoint (its secret shown once) and the operator makes a token.
    client.force_login(support)
    page = client.post("/support/webhooks/", {"url": receiver.url, "events": ["run.finished"]})
    assert page.status_code == 200, page.content.decode()[:2000]
    signing_secret = page.content.decode().split('data-testid="webhook-secret">', 1)[1].split("<", 1)[0]
    out = StringIO()
    call_command("api_token", "create", "billing sync", "--scope", "read+verify", stdout=out)
    token = out.getvalue().strip().splitlines()[-1]
    receiver.statuses[:] = [500, 502]  # the sync's receiver is down for the first two attempts

    sync = httpx.Client(base_url=live_server.url, headers={"Authorization": f"Bearer {token}"}, timeout=30)

    ready = sync.get("/api/v1/tenants/", params={"ready": "true"}).json()
    assert [t["slug"] for t in ready["results"]] == ["acme-msp"]

    mapping = sync.get("/api/v1/tenants/acme-msp/mapping/").json()["results"]
    assert len(mapping) == 12
    assert all(row["agreement_id"] and row["ready"] for row in mapping), json.dumps(mapping)[:2000]
    assert {r["company_id"]: r["agreement_name"] for r in mapping}[1] == "Contoso Ltd - O365"

    answers = [
        sync.post("/api/v1/tenants/acme-msp/runs/", json={}, headers={"Idempotency-Key": "sync-2026-12-01"})
        for _ in range(2)
    ]
    assert [a.status_code for a in answers] == [202, 202]
    assert answers[0].json()["uuid"] == answers[1].json()["uuid"]
    run_url = answers[0].headers["Location"]
    assert CheckRun.objects.filter(tenant=tenant, trigger="api").count() == 1

    def finished():
        body = sync.get(run_url).json()
        return body if body["status"] in ("done", "error") else None

    run = wait_until(finished, 90, "the verification to finish")
    assert run["status"] == "done" and run["ready"] is True
    assert {s["key"] for s in run["steps"]} >= {"connection", "customers", "agreements"}

    got = receiver.wait_for(3, 60)
    assert [r["answered"] for r in got[:3]] == [500, 502, 204]
    final = got[2]
    assert verify(signing_secret, final["headers"]["Webhook-Signature"], final["body"])
    event = json.loads(final["body"])
    assert event["type"] == "run.finished" and event["data"]["run"]["uuid"] == run["uuid"]
    assert event["data"]["tenant"]["slug"] == "acme-msp" and event["data"]["run"]["ready"] is True
    delivery = WebhookDelivery.objects.get(endpoint=WebhookEndpoint.objects.get())
    assert (delivery.status, delivery.attempts, delivery.response_code) == ("delivered", 3, 204)
