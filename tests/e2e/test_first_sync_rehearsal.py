"""The first-sync rehearsal in the browser (issue 19), against the real worker and the sandbox (billing.json):
choose the customers, find the seats billed today, end them at a cutover through an approved plan, and preview
the first sync from a subscription CSV, with its CSV export."""

from __future__ import annotations

import csv
import io
import json
from datetime import date, timedelta
from pathlib import Path

from tests.e2e.conftest import SCENARIOS
from tests.e2e.helpers import Visitor, approve_plan, check_step, finding_codes, step_status, wait_for_run
from tests.e2e.test_wizard_walkthrough import company_box, connect, goto_step, sign_up

BILLING = json.loads(Path(SCENARIOS / "billing.json").read_text())
MEMBER = BILLING["apiMembers"][0]
CUTOVER = (date.today() + timedelta(days=40)).isoformat()
SUBSCRIPTIONS = (
    "customer,product,quantity,term,start date\n"
    "Contoso Ltd,Microsoft 365 Business Premium,25,monthly,2026-01-01\n"
    "Fourth Coffee,Microsoft 365 E3,4,monthly,2026-01-01\n"
    "Contoso Ltd,Microsoft 365 E5,2,annual,2026-01-01\n"
)


def test_partner_ends_the_seats_billed_today_and_previews_the_first_sync(live_stack, page, shot, tmp_path):
    web = live_stack["web"]
    visit = Visitor(page, shot, [MEMBER["privateKey"]])
    slug = sign_up(page, web, visit, "Rehearsal MSP", "pat@rehearsal.example")
    connect(page, visit, BILLING["company"]["id"], MEMBER, "connection")

    goto_step(page, web, slug, "customers")
    page.get_by_role("button", name="Refresh company list").click()
    page.wait_for_load_state()
    wait_for_run(page)
    for cid in range(1, 7):
        company_box(page, cid).check()
    page.get_by_role("button", name="Add selected to the sync").click()
    page.wait_for_load_state()
    assert "Added 6 companies" in page.locator(".alert-success").inner_text()

    # Seats billed today: three customers by hand, one on a second agreement.
    goto_step(page, web, slug, "existing_billing")
    visit("existing-billing-start")
    check_step(page)
    visit("existing-billing-warn")
    assert step_status(page) == "warn"
    assert finding_codes(page) == {"billing.existing_additions", "billing.addition_on_other_agreement"}
    assert page.locator("#cutover input[name=addition]").count() == 4

    # The cutover plan: one PATCH of Cancelled Date per ticked addition, approved, then re-checked.
    page.fill("#cutover input[name=cutover]", CUTOVER)
    page.get_by_role("button", name="Plan to end the ticked additions at the cutover").click()
    page.wait_for_url("**/plans/**", timeout=60_000)
    page.wait_for_selector("table.plan-table")
    visit("existing-billing-plan")
    plan = page.locator("table.plan-table").inner_text()
    assert plan.count("PATCH") == 4 and CUTOVER in plan and "2030-12-31" in plan
    assert approve_plan(page, visit, "existing-billing") == "pass"

    # The preview: nothing is written; the page and its CSV export show the same lines.
    page.goto(f"{web}/t/{slug}/preview/")
    visit("preview-upload")
    path = tmp_path / "subscriptions.csv"
    path.write_text(SUBSCRIPTIONS)
    page.set_input_files("input[name=file]", str(path))
    page.get_by_role("button", name="Preview").click()
    page.wait_for_load_state()
    for _ in range(60):
        if page.locator("#preview-table").count():
            break
        page.wait_for_timeout(500)
        page.reload()
    visit("preview-result")
    rows = page.locator("#preview-table tbody tr")
    assert rows.count() == 3
    assert "Contoso Ltd - O365" in rows.nth(0).inner_text()
    assert "Customer not matched" in rows.nth(1).inner_text()
    assert "Annual on a recurring agreement" in rows.nth(2).inner_text()
    with page.expect_download() as info:
        page.get_by_role("link", name="Export as CSV").click()
    exported = list(csv.reader(io.StringIO(Path(info.value.path()).read_text())))
    assert [r[0] for r in exported[1:]] == ["2", "3", "4"]
    assert exported[1][exported[0].index("agreement")] == "Contoso Ltd - O365"
    assert exported[2][exported[0].index("cause")] == "customer_unmatched"
