"""Errors a person can act on, and Retry-After (issue 11 items 6 and 9), end to end against the in-process
sandbox: the real client, the real checks, the stored run, verify_tenant --json, the step and support pages and
the exports."""

from __future__ import annotations

import csv
import functools
import importlib
import io
import json
from datetime import timedelta
from pathlib import Path

import pytest
from django.apps import apps as global_apps
from django.core.management import call_command
from django.urls import reverse
from django.utils import timezone

from connectwise.checks import codes
from connectwise.client import ConnectWiseClient
from connectwise.sandbox import SandboxApp, load_scenario, sandbox_transport
from onboarding import cw, results, runs, tasks
from onboarding.models import CheckRun, Membership, StepResult, Tenant

SCENARIOS = Path(__file__).resolve().parents[2] / "connectwise" / "sandbox" / "scenarios"
BOOLEAN_ERROR = {"code": "ConnectWiseApi", "message": "String was not recognized as a valid Boolean."}

pytestmark = pytest.mark.django_db


@pytest.fixture
def sandbox(settings, monkeypatch):
    app = SandboxApp([load_scenario(SCENARIOS / "healthy.json")])
    settings.CONNECTWISE_SANDBOX_URL = "http://sandbox.test"
    monkeypatch.setattr(cw, "TRANSPORT_FACTORY", lambda: sandbox_transport(app))
    # The real client with its retries, without waiting between them.
    monkeypatch.setattr(cw, "ConnectWiseClient", functools.partial(ConnectWiseClient, sleep=lambda s: None))
    return app


@pytest.fixture
def acme(sandbox, monkeypatch, django_user_model):
    monkeypatch.setenv("CW_PRIVATE_KEY", "acmepriv-0123456789")
    call_command(
        "tenant_connect",
        "acme",
        "--site",
        "sandbox.test",
        "--company",
        "acme",
        "--public-key",
        "acmepub",
        stdout=io.StringIO(),
    )
    tenant = Tenant.objects.get(slug="acme")
    admin = django_user_model.objects.create_user(username="boss@acme.example", email="boss@acme.example")
    Membership.objects.create(tenant=tenant, user=admin, role=Membership.Role.ADMIN)
    tenant.admin = admin
    return tenant


def verify(slug: str, *steps: str) -> dict:
    out = io.StringIO()
    args = ["verify_tenant", slug, "--json"]
    for s in steps:
        args += ["--step", s]
    call_command(*args, stdout=out, stderr=io.StringIO())
    return json.loads(out.getvalue())


def step_of(result: dict, key: str) -> dict:
    return next(s for s in result["steps"] if s["key"] == key)


def test_a_repeating_500_with_connectwise_message_is_kept_and_not_called_temporary(acme, sandbox):
    sandbox.set_faults({"paths": ["company/companies"], "rates": {"500": 1.0}, "errorBody": BOOLEAN_ERROR})
    result = verify("acme", "customers")

    step = step_of(result, "customers")
    assert step["status"] == "error"
    [finding] = step["findings"]
    assert finding["code"] == codes.STEP_CHECK_FAILED
    error = finding["error"]
    assert error["status"] == 500 and error["code"] == "ConnectWiseApi"
    assert error["message"] == BOOLEAN_ERROR["message"]
    assert error["path"].startswith("company/companies") and "?" not in error["path"]
    assert error["request_id"]  # the sandbox's x-cw-request-id, as ConnectWise sends one

    stored = StepResult.objects.get(tenant=acme, key="customers").findings[0]
    assert "usually temporary" not in stored["explanation"] and "did not answer" not in stored["explanation"]
    assert "repeats" in stored["explanation"] or "each of" in stored["explanation"]
    assert BOOLEAN_ERROR["message"] in stored["explanation"]
    assert "ConnectWise support" in stored["fix"] and BOOLEAN_ERROR["message"] in stored["fix"]
    assert error["request_id"] in stored["fix"]


def test_the_pages_and_exports_show_connectwise_message_and_request_id(acme, sandbox, client, support):
    sandbox.set_faults({"paths": ["company/companies"], "rates": {"500": 1.0}, "errorBody": BOOLEAN_ERROR})
    result = verify("acme", "customers")
    request_id = step_of(result, "customers")["findings"][0]["error"]["request_id"]

    client.force_login(acme.admin)
    page = client.get(reverse("step", args=["acme", "customers"])).content.decode()
    assert BOOLEAN_ERROR["message"] in page and request_id in page and "company/companies" in page

    client.force_login(support)
    page = client.get(reverse("support_tenant", args=["acme"])).content.decode()
    assert BOOLEAN_ERROR["message"] in page and request_id in page

    rows = list(csv.DictReader(io.StringIO(b"".join(client.get(reverse("support_export"))).decode())))
    [row] = [r for r in rows if r["slug"] == "acme"]
    assert BOOLEAN_ERROR["message"] in row["errors"] and request_id in row["errors"]
    assert row["errors"].startswith("customers: HTTP 500 ConnectWiseApi")

    data = client.get(reverse("support_api_tenants")).json()
    [record] = [r for r in data["results"] if r["slug"] == "acme"]
    assert record["errors"]["customers"]["message"] == BOOLEAN_ERROR["message"]
    assert record["errors"]["customers"]["request_id"] == request_id


def test_the_error_goes_away_from_the_exports_when_the_step_recovers(acme, sandbox):
    sandbox.set_faults({"paths": ["company/companies"], "rates": {"500": 1.0}, "errorBody": BOOLEAN_ERROR})
    verify("acme", "customers")
    assert Tenant.objects.get(pk=acme.pk).step_errors["customers"]["code"] == "ConnectWiseApi"
    sandbox.set_faults({})
    verify("acme", "customers")
    assert Tenant.objects.get(pk=acme.pk).step_errors == {}


def test_rate_limited_longer_than_the_cap_ends_the_step_at_once_and_the_schedule_waits(
    acme, sandbox, django_capture_on_commit_callbacks
):
    sandbox.set_faults({"paths": ["company/companies"], "rates": {"429": 1.0}, "retryAfterSeconds": 120})
    Tenant.objects.filter(pk=acme.pk).update(next_check_at=timezone.now() - timedelta(minutes=1))
    sandbox.clear_requests()
    before = timezone.now()
    result = verify("acme", "customers")

    step = step_of(result, "customers")
    assert step["status"] == "error"
    assert "rate limited by ConnectWise for 120 s" in step["summary"]
    assert step["findings"][0]["error"]["retry_after"] == 120
    counts = sandbox.request_counts("acme")["acme"]
    # Not retried early: each faulted read was sent once (no retry after the client's 30 s cap).
    assert counts.get("GET company/companies", 0) == 1, counts

    tenant = Tenant.objects.get(pk=acme.pk)
    assert tenant.next_check_at >= before + timedelta(seconds=119)
    with django_capture_on_commit_callbacks(execute=False):
        assert tasks.schedule_verifications() == 0
    assert not CheckRun.objects.filter(tenant=acme, trigger=CheckRun.Trigger.SCHEDULE).exists()


def test_a_failed_run_keeps_connectwise_details_and_the_pages_show_them(acme, client, support):
    run, _ = runs.start_run(acme, trigger=CheckRun.Trigger.MANUAL, enqueue=False)
    detail = {
        "kind": "ServerError",
        "status": 500,
        "code": "ConnectWiseApi",
        "message": BOOLEAN_ERROR["message"],
        "method": "GET",
        "path": "system/info",
        "request_id": "rq-42",
        "transient": True,
        "retry_after": None,
    }
    runs.fail(run, "ConnectWise error: GET system/info failed: HTTP 500", detail=detail)
    run.refresh_from_db()
    assert run.status == CheckRun.Status.ERROR and run.error_detail == detail
    assert results.run_as_dict(run)["error_detail"]["request_id"] == "rq-42"

    client.force_login(acme.admin)
    page = client.get(reverse("step", args=["acme", "connection"])).content.decode()
    assert "The last check could not run" in page and "rq-42" in page and BOOLEAN_ERROR["message"] in page

    client.force_login(support)
    page = client.get(reverse("support_tenant", args=["acme"]) + f"?run={run.uuid}").content.decode()
    assert "rq-42" in page and BOOLEAN_ERROR["message"] in page
    page = client.get(reverse("support_tenant", args=["acme"])).content.decode()  # the latest run, unasked
    assert "The latest check" in page and "rq-42" in page and BOOLEAN_ERROR["message"] in page


def test_the_data_migration_turns_stored_error_names_into_details_and_back(acme):
    migration = importlib.import_module("onboarding.migrations.0003_error_details")
    run, _ = runs.start_run(acme, trigger=CheckRun.Trigger.MANUAL, enqueue=False)
    old = {
        "code": codes.STEP_CHECK_FAILED,
        "severity": "error",
        "subject": "Read of company/companies",
        "explanation": "x",
        "fix": "y",
        "repairable": False,
        "record": None,
        "data": {"path": "company/companies", "error": "ServerError", "status": 500, "transient": True},
    }
    untouched = {**old, "code": "catalog.misc_missing", "data": {"elsewhere": [1]}}
    result = StepResult.objects.create(
        run=run, tenant=acme, key="customers", status="error", findings=[old, untouched]
    )

    migration.forwards(global_apps, None)
    result.refresh_from_db()
    new, same = result.findings
    assert same == untouched
    assert new["data"]["error"]["kind"] == "ServerError"
    assert new["data"]["error"]["status"] == 500 and new["data"]["error"]["path"] == "company/companies"
    assert new["data"]["error"]["message"] is None and new["data"]["error"]["request_id"] is None
    assert results.finding_error(new)["kind"] == "ServerError"

    migration.forwards(global_apps, None)  # idempotent
    result.refresh_from_db()
    assert result.findings[0] == new
    migration.backwards(global_apps, None)
    result.refresh_from_db()
    assert result.findings[0]["data"]["error"] == "ServerError"


def test_verify_tenant_prints_connectwise_message_for_people_too(acme, sandbox):
    sandbox.set_faults({"paths": ["company/companies"], "rates": {"500": 1.0}, "errorBody": BOOLEAN_ERROR})
    out = io.StringIO()
    call_command("verify_tenant", "acme", "--step", "customers", stdout=out, stderr=io.StringIO())
    text = out.getvalue()
    assert 'ConnectWise: HTTP 500 ConnectWiseApi "String was not recognized as a valid Boolean."' in text
    assert "on GET company/companies" in text and "request id " in text
