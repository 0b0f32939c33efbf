"""The wizard pages over real stored results: checks and repairs run against the in-process sandbox (the
broken scenario, see connectwise/sandbox/__init__.py for which data causes which finding), the pages render
what was stored. No worker: the test calls what the worker would call."""

from __future__ import annotations

from unittest import mock

import pytest
from django.urls import reverse

from connectwise.checks import codes
from onboarding import repairs, runs
from onboarding.models import CompanyChoice, CompanyDirectory, RepairOperation, RepairPlan
from tests.onboarding.wizard_helpers import (  # noqa: F401 (fixtures)
    clean_cache_fixture,
    sandboxed_fixture,
)

pytestmark = pytest.mark.django_db


def _verify(tenant, steps=None):
    run, _ = runs.start_run(tenant, steps=steps, enqueue=False)
    return runs.execute_run(runs.claim(run.pk))


def test_customers_agreements_and_a_repair_over_the_sandbox(client, admin_a, tenant_a, sandboxed):
    client.force_login(admin_a)
    _verify(tenant_a, ["customers"])  # what "Refresh company list" runs in the background
    assert CompanyDirectory.objects.filter(tenant=tenant_a).count() >= 15

    page = client.get(reverse("step", args=[tenant_a.slug, "customers"]), {"q": "contoso"})
    assert all(r["duplicate"] for r in page.context["rows"])  # Contoso Ltd and Contoso Limited

    with mock.patch("onboarding.tasks.run_checks.delay"):
        client.post(
            reverse("customers_select", args=[tenant_a.slug]),
            {"action": "add", "company": [str(i) for i in range(7, 17)]},
        )
        client.post(
            reverse("agreements_save", args=[tenant_a.slug]),
            {"action": "bulk", "company": ["12"], "bulk_motion": "annual"},
        )
        client.post(  # Trey Research: its Azure Plan agreement, a child of the O365 one, chosen explicitly
            reverse("agreements_save", args=[tenant_a.slug]),
            {"action": "save", "row": ["14"], "motion-14": "azure", "agreement-14": "114"},
        )
    assert CompanyChoice.objects.filter(tenant=tenant_a).count() == 10
    run = _verify(tenant_a)
    assert run.status == "done", run.error

    page = client.get(reverse("step", args=[tenant_a.slug, "agreements"]))
    assert page.status_code == 200
    rules = {
        r["choice"].cw_company_id: {x["key"]: x["state"] for x in r["rules"]} for r in page.context["rows"]
    }
    assert rules[7]["monthly"] == "fail"  # Adventure Works: Quarterly
    assert rules[8]["calendar"] == "fail"  # Litware: ContractYear
    assert rules[9]["prorate"] == "fail"  # Proseware: prorate off
    # Blue Yonder: its Managed Services agreement is hidden from the member (not in Access Allowed, issue 17)
    assert rules[13]["target"] == "fail"
    assert rows_hidden(page)[13] == ["Managed Services"]
    assert "so ConnectWise hides those agreements from it" in page.content.decode()
    assert rules[15]["target"] == "fail"  # Margie's Travel: two candidates
    assert rules[12]["one_time"] == "fail"  # Coho Winery: annual on a monthly cycle
    assert rules[14]["top_level"] == "warn"  # Trey Research: a child agreement
    rows = {r["choice"].cw_company_id: r for r in page.context["rows"]}
    assert rows[7]["auto"]["id"] == 7 and len(rows[15]["candidates"]) == 2

    summary = client.get(reverse("summary", args=[tenant_a.slug]))
    assert not summary.context["ready"]
    assert "agreements.prorate_off" in summary.content.decode()

    # "Fix it for me": the worker builds the plan, the page shows the exact changes.
    plan = repairs.create_plan(tenant_a, "agreements", actor=admin_a)
    page = client.get(reverse("plan", args=[tenant_a.slug, plan.uuid]))
    changes = [c for r in page.context["rows"] for c in r["changes"]]
    assert {
        "field": "Prorate Agreement",
        "api_field": "prorateFlag",
        "before": "No",
        "after": "Yes",
    } in changes
    assert {
        "field": "Billing Cycle",
        "api_field": "billingCycle",
        "before": "Quarterly",
        "after": "Monthly",
    } in changes
    assert any(c["field"] == "Cycle Based On" and c["before"] == "Contract Year" for c in changes)
    html = page.content.decode()
    assert "PATCH finance/agreements/9" in html
    # Issue 17: Coho Winery's one-time agreement cannot be created (the role may not add agreements): said so.
    assert [n["code"] for n in page.context["not_repaired"]] == [codes.AGREEMENTS_ANNUAL_NOT_ONE_TIME]
    assert "Not in this plan" in html and "Finance &gt; Agreements: Add set to None" in html

    with mock.patch("onboarding.tasks.apply_plan.delay"):
        client.post(reverse("plan_approve", args=[tenant_a.slug, plan.uuid]))
    repairs.apply(repairs.claim_for_apply(plan.pk), verify=False)
    plan.refresh_from_db()
    # The broken scenario's role may edit agreements but not add them: the PATCHes are planned and done, and
    # creating Coho Winery's one-time agreement is not offered (it would be refused with 403).
    statuses = set(plan.operations.values_list("status", flat=True))
    assert plan.status == RepairPlan.Status.APPLIED and statuses == {RepairOperation.Status.DONE}
    assert not plan.operations.filter(method="POST").exists()
    html = client.get(reverse("plan_status", args=[tenant_a.slug, plan.uuid])).content.decode()
    assert "PATCH finance/agreements/9" in html


def test_agreements_page_uses_the_checks_candidate_rule_and_offers_the_motion_change(
    client, admin_a, tenant_a, sandboxed
):
    """Lucerne Publishing (16) has only a one-time agreement: as Seat Based Monthly the check finds no target, and
    the page must say so (never "Automatically: ... the only agreement that fits") and offer Seat Based Annual."""
    from connectwise.checks import codes

    client.force_login(admin_a)
    CompanyChoice.objects.create(tenant=tenant_a, cw_company_id=16, name="Lucerne Publishing")
    CompanyChoice.objects.create(tenant=tenant_a, cw_company_id=7, name="Adventure Works")
    _verify(tenant_a)
    page = client.get(reverse("step", args=[tenant_a.slug, "agreements"]))
    rows = {r["choice"].cw_company_id: r for r in page.context["rows"]}
    findings = {(f["code"], f["data"].get("company_id")) for f in page.context["result"].findings}
    assert (codes.AGREEMENTS_NOT_MAPPED, 16) in findings
    assert rows[16]["auto"] is None and rows[16]["candidates"] == []
    assert [o["motion"] for o in rows[16]["offers"]] == ["annual"] and rows[16]["offers"][0]["agreement"][
        "id"
    ] == 16
    assert rows[7]["auto"]["id"] == 7 and rows[7]["offers"] == []  # Adventure Works: its one agreement fits
    html = page.content.decode()
    assert "Changing the billing motion to <strong>Seat Based Annual</strong>" in html
    assert "Automatically: <strong>Lucerne" not in html

    with mock.patch("onboarding.tasks.run_checks.delay"):
        client.post(
            reverse("agreements_save", args=[tenant_a.slug]),
            {"action": "save", "row": ["16"], "motion-16": "annual", "agreement-16": "", "next": "/"},
        )
    assert CompanyChoice.objects.get(tenant=tenant_a, cw_company_id=16).motion == "annual"
    run = runs.execute_run(runs.claim(runs.CheckRun.objects.get(tenant=tenant_a, status="queued").pk))
    assert run.status == "done"
    page = client.get(reverse("step", args=[tenant_a.slug, "agreements"]))
    rows = {r["choice"].cw_company_id: r for r in page.context["rows"]}
    assert rows[16]["auto"]["id"] == 16
    assert (codes.AGREEMENTS_NOT_MAPPED, 16) not in {
        (f["code"], f["data"].get("company_id")) for f in page.context["result"].findings
    }


def rows_hidden(page) -> dict[int, list[str]]:
    return {r["choice"].cw_company_id: r["hidden_types"] for r in page.context["rows"]}
