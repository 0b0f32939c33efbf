"""Demo mode (issue 14): the connection page offers the sandbox's companies and connects with their keys, and a
finding fixed inside ConnectWise offers "Make this change in the sandbox". Never present outside demo mode."""

from __future__ import annotations

import json
from pathlib import Path
from unittest import mock

import pytest
from django.conf import settings
from django.urls import reverse

from connectwise.checks import codes
from connectwise.sandbox import SandboxApp, load_scenario, sandbox_transport
from onboarding import cw, demo, runs
from onboarding.models import AuditEvent, CheckRun, Connection
from tests.onboarding.wizard_helpers import clean_cache_fixture  # noqa: F401 (autouse fixture)

pytestmark = pytest.mark.django_db

SCENARIOS = Path(settings.BASE_DIR) / "connectwise" / "sandbox" / "scenarios"
BROKEN = json.loads((SCENARIOS / "broken.json").read_text())
PRIVATE_KEYS = [
    m["privateKey"] for f in SCENARIOS.glob("*.json") for m in json.loads(f.read_text())["apiMembers"]
]


@pytest.fixture(autouse=True)
def _no_worker():
    with mock.patch("onboarding.tasks.run_checks.delay") as delay:
        yield delay


@pytest.fixture
def sandboxed(settings, monkeypatch, tenant_a):
    settings.CONNECTWISE_SANDBOX_URL = "http://sandbox.test"
    app = SandboxApp([load_scenario(SCENARIOS / "broken.json")], sleep=lambda s: None, enable_faults=False)
    monkeypatch.setattr(cw, "TRANSPORT_FACTORY", lambda: sandbox_transport(app))
    monkeypatch.setattr(demo, "TRANSPORT_FACTORY", lambda: sandbox_transport(app))
    conn = Connection(tenant=tenant_a, site="sandbox.test", company_id="brokenco", public_key="brokenpub")
    conn.set_private_key("brokenpriv-0123456789")
    conn.save()
    tenant_a.refresh_from_db()
    return app


def _verify(tenant, steps=None):
    run, _ = runs.start_run(tenant, steps=steps, enqueue=False)
    return runs.execute_run(runs.claim(run.pk))


def _role_findings(client, tenant):
    page = client.get(reverse("step", args=[tenant.slug, "security_role"]))
    return page, page.context["result"].findings


def test_the_connection_page_offers_the_sandbox_companies_without_their_keys(
    client, admin_a, tenant_a, settings
):
    settings.CONNECTWISE_SANDBOX_URL = "http://sandbox.test"
    client.force_login(admin_a)
    html = client.get(reverse("step", args=[tenant_a.slug, "connection"])).content.decode()
    assert 'id="sandbox-companies"' in html
    assert "Connect to Broken MSP" in html and "brokenco" in html and "Connect to Acme MSP" in html
    for key in PRIVATE_KEYS:
        assert key not in html


def test_connecting_to_a_sandbox_company_fills_its_keys_and_checks_every_step(
    client, admin_a, tenant_a, settings
):
    settings.CONNECTWISE_SANDBOX_URL = "http://sandbox.test"
    client.force_login(admin_a)
    response = client.post(reverse("demo_connect", args=[tenant_a.slug]), {"company": "brokenco"})
    assert response.status_code == 302
    conn = Connection.objects.get(tenant=tenant_a)
    assert (conn.company_id, conn.public_key, conn.site) == ("brokenco", "brokenpub", "sandbox.test")
    assert conn.get_private_key() == BROKEN["apiMembers"][0]["privateKey"]
    run = CheckRun.objects.get(tenant=tenant_a)
    assert run.requested_steps() == list(runs.STEP_KEYS)
    assert (
        client.post(reverse("demo_connect", args=[tenant_a.slug]), {"company": "nosuchco"}).status_code == 302
    )
    assert Connection.objects.get(tenant=tenant_a).company_id == "brokenco"  # nothing half-applied


def test_make_this_change_in_the_sandbox_fixes_the_role_and_rechecks(client, admin_a, tenant_a, sandboxed):
    client.force_login(admin_a)
    _verify(tenant_a)
    page, findings = _role_findings(client, tenant_a)
    html = page.content.decode()
    assert html.count("Make this change in the sandbox") == sum(
        1 for f in findings if f["code"] in (codes.ROLE_INSUFFICIENT_LEVEL, codes.ROLE_MISSING_CUSTOMIZE_ITEM)
    )
    index, finding = next(
        (i, f)
        for i, f in enumerate(findings)
        if f["code"] == codes.ROLE_INSUFFICIENT_LEVEL and f["data"]["function"] == "Agreements"
    )
    response = client.post(
        reverse("demo_sandbox_change", args=[tenant_a.slug, "security_role"]),
        {"finding": str(index), "code": finding["code"]},
    )
    assert response.status_code == 302
    role = next(r for r in sandboxed.tenant("brokenco").roles if r["name"] == "Billing Sync")
    row = next(s for s in role["settings"] if s["moduleFunctionName"] == "Agreements")
    assert row[f"{finding['data']['level']}Level"] == finding["data"]["required"]
    assert AuditEvent.objects.filter(tenant=tenant_a, kind=AuditEvent.Kind.SANDBOX_CHANGED).count() == 1
    run = CheckRun.objects.get(tenant=tenant_a, status="queued")
    assert run.trigger == CheckRun.Trigger.CHANGE and run.requested_steps() == list(runs.STEP_KEYS)
    runs.execute_run(runs.claim(run.pk))
    _, after = _role_findings(client, tenant_a)
    assert finding["subject"] not in {f["subject"] for f in after}


def test_a_stale_or_wrong_finding_changes_nothing(client, admin_a, tenant_a, sandboxed):
    client.force_login(admin_a)
    _verify(tenant_a, ["connection", "security_role"])
    before = json.dumps(sandboxed.tenant("brokenco").roles, sort_keys=True)
    url = reverse("demo_sandbox_change", args=[tenant_a.slug, "security_role"])
    for data in (
        {"finding": "999", "code": "role.insufficient_level"},
        {"finding": "x"},
        {"finding": "0", "code": "nope"},
    ):
        response = client.post(url, data, follow=True)
        assert response.status_code == 200 and "no longer on this step" in response.content.decode()
    assert json.dumps(sandboxed.tenant("brokenco").roles, sort_keys=True) == before


def test_a_read_only_member_gets_no_button_and_403(client, member_a, tenant_a, sandboxed):
    _verify(tenant_a, ["connection", "security_role"])
    client.force_login(member_a)
    page, findings = _role_findings(client, tenant_a)
    assert "Make this change in the sandbox" not in page.content.decode()
    response = client.post(
        reverse("demo_sandbox_change", args=[tenant_a.slug, "security_role"]),
        {"finding": "0", "code": findings[0]["code"]},
    )
    assert response.status_code == 403


def test_nothing_of_demo_mode_exists_outside_it(client, admin_a, tenant_a, sandboxed, settings):
    client.force_login(admin_a)
    _verify(tenant_a, ["connection", "security_role"])
    settings.CONNECTWISE_SANDBOX_URL = ""
    assert not demo.enabled() and demo.sandbox_companies() == []
    html = client.get(reverse("step", args=[tenant_a.slug, "connection"])).content.decode()
    assert "sandbox-companies" not in html and "Connect to Broken MSP" not in html
    page, findings = _role_findings(client, tenant_a)
    assert findings and "Make this change in the sandbox" not in page.content.decode()
    assert (
        client.post(reverse("demo_connect", args=[tenant_a.slug]), {"company": "brokenco"}).status_code == 404
    )
    response = client.post(
        reverse("demo_sandbox_change", args=[tenant_a.slug, "security_role"]),
        {"finding": "0", "code": findings[0]["code"]},
    )
    assert response.status_code == 404


def test_production_is_never_demo_mode(settings):
    settings.CONNECTWISE_SANDBOX_URL = "http://sandbox.test"
    settings.PRODUCTION = True
    assert not demo.enabled()


def test_a_non_sandbox_connection_gets_no_sandbox_change(client, admin_a, tenant_a, settings):
    from tests.onboarding.wizard_helpers import finding, stored_result

    settings.CONNECTWISE_SANDBOX_URL = "http://sandbox.test"
    conn = Connection(tenant=tenant_a, site="api-na.myconnectwise.net", company_id="acme", public_key="p")
    conn.set_private_key("k-0123456789")
    conn.save()
    stored_result(
        tenant_a,
        "security_role",
        "fail",
        [
            finding(
                codes.ROLE_INSUFFICIENT_LEVEL,
                data={
                    "module": "Finance",
                    "function": "Agreements",
                    "level": "add",
                    "current": "None",
                    "required": "All",
                },
            )
        ],
    )
    client.force_login(admin_a)
    html = client.get(reverse("step", args=[tenant_a.slug, "security_role"])).content.decode()
    assert "Make this change in the sandbox" not in html
    response = client.post(
        reverse("demo_sandbox_change", args=[tenant_a.slug, "security_role"]),
        {"finding": "0", "code": codes.ROLE_INSUFFICIENT_LEVEL},
        follow=True,
    )
    assert "not connected to the sandbox" in response.content.decode()
    assert not AuditEvent.objects.filter(kind=AuditEvent.Kind.SANDBOX_CHANGED).exists()
