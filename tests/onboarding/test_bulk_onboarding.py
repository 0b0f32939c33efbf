"""Issue 18: two hundred customers onboarded with one approval, against the sandbox (the real client, in-process).

A generated tenant of 200 chosen companies without agreements (half monthly, a quarter Azure Plan, a quarter
annual): one approved plan creates exactly one fitting agreement per company, the tenant verifies ready, applying
again creates nothing; faults and a worker killed mid-apply never create a second one.
"""

from __future__ import annotations

import io
import json
import time
from collections import Counter

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.urls import reverse

from connectwise.checks.plans import COMBINED
from connectwise.sandbox import SandboxApp, parse_scenario, sandbox_transport
from connectwise.sandbox.generate import ONBOARDING_DEFAULTS, generate_onboarding, onboarding_motion
from onboarding import cw, repairs
from onboarding.models import AuditEvent, CompanyChoice, Connection, RepairOperation, RepairPlan, Tenant

SANDBOX = "http://sandbox.test"
COMPANIES = 200
TYPE_OF = {"monthly": "O365", "azure": "Azure Plan", "annual": "Annual"}


@pytest.fixture
def onboard(db, settings, monkeypatch):
    """(tenant, sandbox app): 200 chosen companies, no agreements, the connection stored."""
    app = SandboxApp([parse_scenario(generate_onboarding(COMPANIES, "onboard"))])
    settings.CONNECTWISE_SANDBOX_URL = SANDBOX
    monkeypatch.setattr(cw, "TRANSPORT_FACTORY", lambda: sandbox_transport(app))
    tenant = Tenant.objects.create(slug="onboard", name="Onboard MSP")
    conn = Connection(tenant=tenant, site="sandbox.test", company_id="onboard", public_key="onboardpub")
    conn.set_private_key("onboardpriv-0123456789")
    conn.save()
    CompanyChoice.objects.bulk_create(
        [
            CompanyChoice(tenant=tenant, cw_company_id=i, motion=onboarding_motion(i))
            for i in range(1, COMPANIES + 1)
        ]
    )
    return Tenant.objects.select_related("connection").get(pk=tenant.pk), app


def run(*args) -> str:
    out = io.StringIO()
    call_command(*args, stdout=out, stderr=io.StringIO())
    return out.getvalue()


def _defaults_file(tmp_path, data=ONBOARDING_DEFAULTS):
    path = tmp_path / "defaults.json"
    path.write_text(json.dumps(data))
    return str(path)


def _agreements(app) -> list[dict]:
    return list(app.tenant("onboard").tables["finance/agreements"].rows.values())


def _assert_one_fitting_agreement_per_company(app):
    rows = _agreements(app)
    per_company = Counter(a["company"]["id"] for a in rows)
    assert len(per_company) == COMPANIES and set(per_company.values()) == {1}
    for a in rows:
        motion = onboarding_motion(a["company"]["id"])
        assert a["type"]["name"] == TYPE_OF[motion]
        assert a["contact"]["id"] == a["company"]["id"]  # the company's Default Contact
        if motion == "annual":
            assert a["billOneTimeFlag"] is True
        else:
            assert (a["billingCycle"]["name"], a["invoicingCycle"], a["prorateFlag"]) == (
                "Monthly",
                "CalendarYear",
                True,
            )


def test_one_approved_plan_onboards_200_customers_and_again_creates_nothing(onboard, tmp_path):
    tenant, app = onboard
    before = json.loads(run("verify_tenant", "onboard", "--json"))
    assert before["ready"] is False
    app.clear_requests()
    result = json.loads(
        run("repair_tenant", "onboard", "--defaults", _defaults_file(tmp_path), "--yes", "--json")
    )
    assert result["ready"] is True, [s for s in result["steps"] if s["status"] not in ("pass", "warn")]
    _assert_one_fitting_agreement_per_company(app)
    assert app.request_counts("onboard")["onboard"]["POST finance/agreements"] == COMPANIES
    plan = RepairPlan.objects.get(tenant=tenant, step=COMBINED)
    assert plan.status == RepairPlan.Status.APPLIED and plan.operations.count() == COMPANIES
    assert set(plan.operations.values_list("step", flat=True)) == {"agreements"}
    assert AuditEvent.objects.filter(tenant=tenant, kind=AuditEvent.Kind.DEFAULTS_CHANGED).count() == 1

    # Applying the same plan again (a double delivery, a retry) and building a new one both write nothing.
    app.clear_requests()
    RepairOperation.objects.filter(plan=plan).update(status=RepairOperation.Status.PENDING)
    RepairPlan.objects.filter(pk=plan.pk).update(status=RepairPlan.Status.APPROVED)
    plan = repairs.apply(repairs.claim_for_apply(plan.pk), verify=False)
    assert set(plan.operations.values_list("status", flat=True)) == {RepairOperation.Status.ALREADY}
    again = json.loads(run("repair_tenant", "onboard", "--yes", "--json"))
    assert again["ready"] is True
    writes = {k: n for k, n in app.request_counts("onboard")["onboard"].items() if not k.startswith("GET")}
    assert writes == {}
    assert len(_agreements(app)) == COMPANIES


def test_faults_and_a_worker_killed_mid_apply_never_create_a_second_agreement(onboard, monkeypatch):
    tenant, app = onboard
    tenant.agreement_defaults = {
        "monthly": {"type_id": 1, "type_name": "O365", "name": "{company} - Microsoft 365", "start": ""},
        "azure": {"type_id": 2, "type_name": "Azure Plan", "name": "{company} - Azure Plan", "start": ""},
        "annual": {
            "type_id": 3,
            "type_name": "Annual",
            "name": "{company} - Annual seats",
            "start": "",
            "one_time": True,
        },
    }
    tenant.save()
    plan = repairs.create_plan(tenant, COMBINED)
    assert plan.operations.count() == COMPANIES
    repairs.approve(plan, by="operator")
    # The worker dies right after ConnectWise answered the 50th create, before it recorded the result.
    real_save, saved = RepairOperation.save, Counter()

    def dying_save(self, *args, **kwargs):
        if self.status != RepairOperation.Status.PENDING:
            saved["n"] += 1
            if saved["n"] == 50:
                raise KeyboardInterrupt("worker killed")
        return real_save(self, *args, **kwargs)

    monkeypatch.setattr(RepairOperation, "save", dying_save)
    with pytest.raises(KeyboardInterrupt):
        repairs.apply(repairs.claim_for_apply(plan.pk), verify=False)
    monkeypatch.setattr(RepairOperation, "save", real_save)
    assert RepairPlan.objects.get(pk=plan.pk).status == RepairPlan.Status.APPLYING
    assert len(_agreements(app)) == 50
    # The task is redelivered to another worker, while ConnectWise misbehaves: writes applied whose answer is
    # lost, 500s and resets on the creates.
    app.set_faults(
        {
            "seed": 3,
            "rates": {"resetAfter": 0.15, "500": 0.05, "reset": 0.05},
            "paths": ["finance/agreements"],
        },
        "onboard",
    )
    plan = repairs.apply(repairs.claim_for_apply(plan.pk, redelivered=True), verify=False)
    for _ in range(10):
        if plan.status == RepairPlan.Status.APPLIED:
            break
        repairs.reapply(plan)
        plan = repairs.apply(repairs.claim_for_apply(plan.pk), verify=False)
    app.set_faults({}, "onboard")
    if plan.status != RepairPlan.Status.APPLIED:
        repairs.reapply(plan)
        plan = repairs.apply(repairs.claim_for_apply(plan.pk), verify=False)
    assert plan.status == RepairPlan.Status.APPLIED, plan.error
    _assert_one_fitting_agreement_per_company(app)
    assert plan.operations.filter(status=RepairOperation.Status.ALREADY).exists()  # found, not sent again


def test_defaults_with_an_unknown_or_disallowed_type_are_refused_and_nothing_is_applied(onboard, tmp_path):
    tenant, app = onboard
    types = app.tenant("onboard").tables["finance/agreements/types"]
    types.replace(
        {**types.rows[4], "inactiveFlag": False}
    )  # active, but not in the role's Access Allowed list
    bad = {"monthly": {"type": "Managed Services"}, "azure": {"type": "Nope"}}
    app.clear_requests()
    with pytest.raises(CommandError) as caught:
        run("repair_tenant", "onboard", "--defaults", _defaults_file(tmp_path, bad), "--yes")
    text = str(caught.value)
    assert "nothing was applied" in text and "Access Allowed" in text and "'Nope'" in text
    tenant.refresh_from_db()
    assert tenant.agreement_defaults == {}
    assert not RepairPlan.objects.filter(tenant=tenant).exists()
    writes = [k for k in app.request_counts("onboard")["onboard"] if not k.startswith("GET")]
    assert writes == [] and _agreements(app) == []


def test_the_200_create_plan_page_is_grouped_paged_and_fast(onboard, client, django_user_model, capsys):
    tenant, _ = onboard
    tenant.agreement_defaults = {
        m: {"type_id": i, "type_name": TYPE_OF[m], "name": "{company} - " + TYPE_OF[m], "start": ""}
        for i, m in enumerate(("monthly", "azure", "annual"), start=1)
    }
    tenant.save()
    plan = repairs.create_plan(tenant, COMBINED)
    admin = django_user_model.objects.create_user("a@onboard.example", "a@onboard.example", "pw-123456789!")
    tenant.memberships.create(user=admin, role="admin")
    client.force_login(admin)
    url = reverse("plan", args=[tenant.slug, plan.uuid])
    client.get(url)  # templates compiled
    started = time.perf_counter()
    response = client.get(url)
    elapsed = time.perf_counter() - started
    with capsys.disabled():
        print(f"\nplan page of {COMPANIES} creates: {elapsed * 1000:.0f} ms, {len(response.content)} bytes")
    html = response.content.decode()
    assert response.status_code == 200
    assert f"Create {COMPANIES} records" in html and "Page 1 of 4" in html
    assert html.count('class="mono small text-body-secondary">POST finance/agreements') == 50
    page4 = client.get(url + "?page=4").content.decode()
    assert "Changes 151–200 of 200" in page4


def test_a_preview_with_defaults_lists_the_creates_and_stores_nothing(onboard, tmp_path):
    tenant, app = onboard
    app.clear_requests()
    preview = json.loads(run("repair_tenant", "onboard", "--defaults", _defaults_file(tmp_path), "--json"))
    agreements = next(p for p in preview["plans"] if p["step"] == "agreements")
    assert len(agreements["operations"]) == COMPANIES and agreements["combined"] is True
    assert agreements["operations"][0]["lookup"]["conditions"].startswith("company/id = ")
    tenant.refresh_from_db()
    assert tenant.agreement_defaults == {} and not RepairPlan.objects.filter(tenant=tenant).exists()
    assert not [k for k in app.request_counts("onboard")["onboard"] if not k.startswith("GET")]
