"""Issue 18 in a real browser, with the real worker and the sandbox: the bare demo tenant (nothing set up) is brought
to Ready with "Fix everything that can be fixed" and one approval.

The demo seed connects "Bare MSP" to the `bare` scenario; its partner has chosen the three companies
(two monthly, one annual: the annual one has no one-time agreement yet). The admin sets the defaults for new
annual agreements on the agreements page, presses the overview's button, reviews one plan grouped per step
(setup tables, then catalog, then agreements), approves it once, follows it live, and the re-check says Ready.
"""

from __future__ import annotations

import io
import json
from pathlib import Path

from django.core.management import call_command

from onboarding.models import CompanyChoice, RepairPlan, Tenant
from tests.e2e.conftest import SCENARIOS, login
from tests.e2e.helpers import WORKER_TIMEOUT, Visitor, check_all

BARE = json.loads(Path(SCENARIOS / "bare.json").read_text())
SECRETS = [m["privateKey"] for m in BARE["apiMembers"]]
PASSWORD = "demo-password-2026"


def test_bare_demo_tenant_reaches_ready_with_one_approval(live_stack, page, shot):
    web = live_stack["web"]
    call_command("seed_demo", "--no-checks", stdout=io.StringIO())
    tenant = Tenant.objects.get(slug="bare-msp")
    for company in BARE["records"]["company/companies"]:
        motion = "annual" if company["id"] == 3 else "monthly"
        CompanyChoice.objects.create(
            tenant=tenant, cw_company_id=company["id"], name=company["name"], motion=motion
        )
    visit = Visitor(page, shot, SECRETS)
    login(page, web, "admin@bare.example", PASSWORD)
    page.goto(f"{web}/t/bare-msp/")
    check_all(page)
    visit("overview-checked")
    assert "Ready for billing sync" not in page.locator("h1").inner_text()

    # Defaults for new agreements: the annual customer's agreement type (only allowed types are offered).
    page.goto(f"{web}/t/bare-msp/steps/agreements/#defaults")
    options = page.locator("select[name=annual_type] option").all_inner_texts()
    assert "Annual" in options and "Managed Services" not in options
    page.select_option("select[name=annual_type]", label="Annual")
    page.fill("input[name=annual_name]", "{company} - Annual seats")
    visit("defaults-form")
    page.get_by_role("button", name="Save defaults").click()
    page.wait_for_load_state()
    assert "Defaults saved" in page.locator(".alert").first.inner_text()

    page.goto(f"{web}/t/bare-msp/")
    page.locator("#repair").get_by_role("button", name="Fix everything that can be fixed").click()
    page.wait_for_url("**/plans/**", timeout=WORKER_TIMEOUT)
    page.wait_for_selector("table.plan-table")
    visit("combined-plan")
    groups = page.locator("#plan-groups").inner_text()
    assert groups.index("Setup tables") < groups.index("catalog") < groups.index("Agreements"), groups
    table = page.locator("table.plan-table").inner_text()
    assert "POST procurement/categories" in table and "POST procurement/catalog" in table
    assert "Northwind Traders - Annual seats" in table

    page.once("dialog", lambda d: d.accept())
    page.get_by_role("button", name="Approve and apply").click()
    page.wait_for_load_state()
    visit("combined-applying")
    page.wait_for_selector("#plan-body:not([hx-get])", timeout=WORKER_TIMEOUT)
    visit("combined-applied")
    body = page.locator("#plan-body").inner_text()
    assert "applied" in body and "Re-checked" in body, body
    assert page.locator("#tenant-ready").inner_text() == "Ready for billing sync."
    assert RepairPlan.objects.filter(tenant=tenant).count() == 1  # one plan, one approval
    page.goto(f"{web}/t/bare-msp/")
    assert "Ready for billing sync" in page.locator("h1").inner_text()
    visit("overview-ready")
    assert not page.console_errors, page.console_errors
