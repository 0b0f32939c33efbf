"""Issues 5 and 6 in a real browser, with the real worker and the sandbox ConnectWise: a partner signs up, connects
to the `broken` scenario and walks every step to ready.

Every repair the product offers on `broken` runs through the UI (setup tables, catalog, agreements: "Fix it for
me" → plan table → "Approve and apply" → live progress → re-verified result). The security role cannot be
repaired over the API, and the `billingsync` member's role is wrong on purpose; the same scenario also has the
`lockedsync` member, whose role is adequate but not readable (role.unreadable, a warning). So the walkthrough
ends the way a partner would: it switches the connection to that member, checks everything again, and the
summary says "Ready for billing sync". A second test repairs the `bare` scenario's missing setup tables and
creates its misc product.
"""

from __future__ import annotations

import json
from pathlib import Path

from connectwise.checks.registry import STEP_KEYS
from tests.e2e.conftest import SCENARIOS
from tests.e2e.helpers import (
    Visitor,
    approve_plan,
    build_plan,
    check_all,
    check_step,
    finding_codes,
    step_status,
    wait_for_run,
)

BROKEN = json.loads(Path(SCENARIOS / "broken.json").read_text())
BARE = json.loads(Path(SCENARIOS / "bare.json").read_text())
MEMBERS = {m["identifier"]: m for m in BROKEN["apiMembers"]}
BILLINGSYNC, LOCKEDSYNC = MEMBERS["billingsync"], MEMBERS["lockedsync"]
BARE_MEMBER = BARE["apiMembers"][0]
SECRETS = [m["privateKey"] for m in BROKEN["apiMembers"] + BARE["apiMembers"]]

# Companies of broken.json (ids): the ones that can be made ready, and the ones that cannot.
READY_CANDIDATES = {1: "Contoso Ltd", 2: "Contoso Limited", 7: "Adventure Works", 8: "Litware Inc",
                    9: "Proseware LLC", 15: "Margie's Travel", 16: "Lucerne Publishing"}  # fmt: skip
HOPELESS = {3: "Fabrikam Inc", 4: "Northwind Traders", 6: "Wide World Importers", 10: "Woodgrove Bank"}


def sign_up(page, web: str, visit, organisation: str, email: str) -> str:
    page.goto(f"{web}/accounts/signup/")
    visit("signup")
    page.fill("input[name=organisation]", organisation)
    page.fill("input[name=name]", "Pat Partner")
    page.fill("input[name=email]", email)
    page.fill("input[name=password1]", "walkthrough-pass-2026")
    page.fill("input[name=password2]", "walkthrough-pass-2026")
    page.get_by_role("button", name="Create account").click()
    page.wait_for_url("**/accounts/signup/sent/")
    visit("signup-sent")
    # The link of the confirmation e-mail (sent by the worker), made the same way from the database.
    from onboarding.models import User  # noqa: PLC0415
    from onboarding.views.accounts import signup_confirm_url  # noqa: PLC0415

    page.goto(web + signup_confirm_url(User.objects.get(email=email)))
    page.get_by_role("button", name="Confirm and start").click()
    page.wait_for_url("**/steps/connection/")
    assert "Welcome!" in page.locator(".alert").first.inner_text()
    return page.url.split("/t/", 1)[1].split("/", 1)[0]


def connect(page, visit, company: str, member: dict, name: str) -> None:
    page.select_option("select[name=region]", "sandbox")
    page.fill("input[name=company_id]", company)
    page.fill("input[name=public_key]", member["publicKey"])
    page.fill("input[name=private_key]", member["privateKey"])
    visit(f"{name}-form")
    page.get_by_role("button", name="Save and check connection").click()
    page.wait_for_load_state()
    visit(f"{name}-checking")
    wait_for_run(page)
    visit(f"{name}-result")
    assert step_status(page) == "pass", finding_codes(page)
    assert "Nothing to fix here" in page.locator("#result").inner_text()


def goto_step(page, web: str, slug: str, key: str) -> None:
    page.goto(f"{web}/t/{slug}/steps/{key}/")
    page.wait_for_load_state()


def company_box(page, cid: int):
    return page.locator(f"#directory-form input[name=company][value='{cid}']")


def test_partner_walks_broken_connectwise_to_ready(live_stack, page, shot):
    web = live_stack["web"]
    visit = Visitor(page, shot, SECRETS)

    slug = sign_up(page, web, visit, "Broken Walkthrough MSP", "pat@broken-walkthrough.example")
    visit("connection-empty")
    connect(page, visit, BROKEN["company"]["id"], BILLINGSYNC, "connection")

    # Check everything once: the overview shows a badge per step.
    page.goto(f"{web}/t/{slug}/")
    visit("home-before-check")
    check_all(page)
    visit("home-checked")
    cards = page.locator(".col-lg-8 .card")
    assert cards.count() == len(STEP_KEYS)  # seven: the advisory "Seats billed today" too

    # Security role: not repairable; the page lists the exact findings and no "Fix it for me".
    goto_step(page, web, slug, "security_role")
    visit("security-role-fail")
    assert step_status(page) == "fail"
    codes = finding_codes(page)
    assert {"role.insufficient_level", "role.missing_customize_item", "role.excess_permission"} <= codes
    assert page.locator("#repair").count() == 0
    assert "Finance > Agreements" in page.locator("#result").inner_text()

    # Setup tables: four inactive records, repaired through a plan.
    goto_step(page, web, slug, "setup_tables")
    visit("setup-tables-fail")
    assert step_status(page) == "fail"
    assert finding_codes(page) == {
        "tables.category_inactive",
        "tables.subcategory_inactive",
        "tables.product_type_inactive",
        "tables.uom_inactive",
    }
    build_plan(page, visit, "setup-tables")
    rows = page.locator("table.plan-table tbody tr")
    assert rows.count() == 4
    assert page.locator("table.plan-table").get_by_text("PATCH procurement/categories/1").is_visible()
    assert "Inactive" in page.locator("table.plan-table").inner_text()
    assert approve_plan(page, visit, "setup-tables") == "pass"
    page.get_by_role("link", name="See the re-checked result").click()
    page.wait_for_load_state()
    visit("setup-tables-pass")
    assert step_status(page) == "pass"

    # Catalog: misc-seat is inactive; one PATCH activates it.
    goto_step(page, web, slug, "catalog")
    check_step(page)  # the catalog's result of the first check predates the tables repair
    visit("catalog-fail")
    assert step_status(page) == "fail"
    assert finding_codes(page) == {"catalog.misc_inactive"}
    build_plan(page, visit, "catalog")
    plan_text = page.locator("table.plan-table").inner_text()
    assert page.locator("table.plan-table tbody tr").count() == 1
    assert "misc-seat" in plan_text and "Inactive" in plan_text
    assert approve_plan(page, visit, "catalog") == "pass"

    # Customers: read the company list, search it, choose the companies.
    goto_step(page, web, slug, "customers")
    visit("customers-start")
    page.get_by_role("button", name="Refresh company list").click()
    page.wait_for_load_state()
    visit("customers-refreshing")
    wait_for_run(page)
    visit("customers-list")
    assert page.locator("#directory-form tbody tr").count() == 15
    page.fill("#q", "contoso")
    page.get_by_role("button", name="Search").click()
    page.wait_for_load_state()
    visit("customers-search")
    assert page.locator("#directory-form tbody tr").count() == 2
    assert page.locator("#directory-form").get_by_text("Duplicate name").count() == 2
    page.locator("#directory-form thead input[data-select-all]").check()
    page.get_by_role("button", name="Add selected to the sync").click()
    page.wait_for_load_state()
    assert "Added 2 companies" in page.locator(".alert-success").inner_text()
    wait_for_run(page)  # the change re-checks by itself; the page reloads when it is done
    page.get_by_role("link", name="Clear filters").click()
    page.wait_for_load_state()
    for cid in [*READY_CANDIDATES, *HOPELESS]:
        if cid not in (1, 2):
            company_box(page, cid).check()
    visit("customers-selecting")
    page.get_by_role("button", name="Add selected to the sync").click()
    page.wait_for_load_state()
    assert "Added 9 companies" in page.locator(".alert-success").inner_text()
    assert "Chosen for the sync (11)" in page.locator("#chosen-heading").inner_text()
    wait_for_run(page)  # a change of choices re-checks customers and agreements by itself
    visit("customers-fail")
    assert step_status(page) == "fail"
    codes = finding_codes(page)
    assert {
        "customers.company_inactive",
        "customers.no_active_agreement",
        "customers.duplicate_name",
    } <= codes, codes
    # Remove the companies that cannot be billed (inactive, prospect, no active agreement).
    for cid in HOPELESS:
        company_box(page, cid).check()
    page.get_by_role("button", name="Remove selected").click()
    page.wait_for_load_state()
    assert "Removed 4 companies" in page.locator(".alert-success").inner_text()
    wait_for_run(page)
    visit("customers-warn")
    assert step_status(page) == "warn"
    assert finding_codes(page) == {"customers.duplicate_name"}
    assert "Chosen for the sync (7)" in page.locator("#chosen-heading").inner_text()

    # Agreements: one motion for all (bulk), then the annual customer and the ambiguous one by hand.
    goto_step(page, web, slug, "agreements")
    visit("agreements-start")
    page.locator("#agreements-form input[data-select-all]").check()
    page.select_option("#bulk-motion", "monthly")
    page.get_by_role("button", name="Set for selected").click()
    page.wait_for_load_state()
    assert "Billing motion set to" in page.locator(".alert-success").inner_text()
    wait_for_run(page)
    page.select_option("#motion-16", "annual")
    page.select_option("#agreement-15", "15")
    visit("agreements-mapping")
    page.get_by_role("button", name="Save mapping").click()
    page.wait_for_load_state()
    assert "Saved 2 changes." in page.locator(".alert-success").inner_text()
    wait_for_run(page)
    visit("agreements-fail")
    assert step_status(page) == "fail"
    codes = finding_codes(page)
    assert {
        "agreements.billing_cycle_not_monthly",
        "agreements.invoicing_cycle_not_calendar_year",
        "agreements.prorate_off",
        "agreements.multiple_active_same_type",
    } <= codes, codes
    assert page.locator("#mapping .rule-fail").count() >= 3
    build_plan(page, visit, "agreements")
    plan_text = page.locator("table.plan-table").inner_text()
    assert page.locator("table.plan-table tbody tr").count() == 3
    for path in ("finance/agreements/7", "finance/agreements/8", "finance/agreements/9"):
        assert path in plan_text
    assert "Quarterly" in plan_text and "Contract Year" in plan_text and "inactiveFlag" not in plan_text
    assert approve_plan(page, visit, "agreements") == "warn"
    page.get_by_role("link", name="See the re-checked result").click()
    page.wait_for_load_state()
    visit("agreements-warn")
    assert finding_codes(page) == {"agreements.multiple_active_same_type"}

    # Not ready yet: the security role of billingsync cannot be repaired over the API.
    page.goto(f"{web}/t/{slug}/summary/")
    visit("summary-not-ready")
    assert "Not ready yet: 1 step to finish" in page.locator("h1").inner_text()
    assert "Security role" in page.locator(".alert-warning").inner_text()

    # The partner switches to the API member whose role is right (lockedsync) and checks everything again.
    goto_step(page, web, slug, "connection")
    visit("connection-change")
    connect(page, visit, BROKEN["company"]["id"], LOCKEDSYNC, "connection-lockedsync")
    page.goto(f"{web}/t/{slug}/")
    check_all(page)
    visit("home-ready")
    assert page.locator("h1").inner_text() == "Ready for billing sync"
    goto_step(page, web, slug, "security_role")
    visit("security-role-warn")
    assert step_status(page) == "warn"
    assert finding_codes(page) == {"role.unreadable"}

    page.goto(f"{web}/t/{slug}/summary/")
    visit("summary-ready")
    assert page.locator("h1").inner_text() == "Ready for billing sync"
    assert page.locator(".summary-table .status-fail").count() == 0
    assert "Customers chosen" in page.locator(".summary-facts").inner_text()

    page.goto(f"{web}/t/{slug}/audit/")
    visit("audit-trail")
    kinds = page.locator("table tbody td span.fw-semibold").all_inner_texts()
    assert kinds.count("Repair plan approved") == 3, kinds
    assert kinds.count("Change applied in ConnectWise") == 8, kinds

    # A narrow phone screen: the pages stay usable at 390 px.
    page.set_viewport_size({"width": 390, "height": 844})
    for key in ("agreements", "customers"):
        goto_step(page, web, slug, key)
        visit(f"mobile-{key}")
    page.goto(f"{web}/t/{slug}/summary/")
    visit("mobile-summary")
    assert not page.console_errors, page.console_errors


def test_partner_repairs_bare_connectwise_tables_and_catalog(live_stack, page, shot):
    """bare.json has nothing set up: the plans create the category, subcategory, product type, unit of measure and
    then the misc product (which refers to the records created by the first plan)."""
    web = live_stack["web"]
    visit = Visitor(page, shot, SECRETS)
    slug = sign_up(page, web, visit, "Bare Walkthrough MSP", "pat@bare-walkthrough.example")
    connect(page, visit, BARE["company"]["id"], BARE_MEMBER, "connection")

    goto_step(page, web, slug, "setup_tables")
    check_step(page)
    visit("setup-tables-missing")
    assert finding_codes(page) == {
        "tables.category_missing",
        "tables.subcategory_missing",
        "tables.product_type_missing",
        "tables.uom_missing",
    }
    build_plan(page, visit, "setup-tables")
    plan_text = page.locator("table.plan-table").inner_text()
    # one operation per record; a create's fields are one row each (lined up with the changes' rows)
    assert page.locator("table.plan-table tbody tr", has_text="Create: ").count() == 4
    assert plan_text.count("Create: ") == 4 and "Miscellaneous" in plan_text and "Each" in plan_text
    assert approve_plan(page, visit, "setup-tables") == "pass"

    goto_step(page, web, slug, "catalog")
    check_step(page)
    visit("catalog-missing")
    assert finding_codes(page) == {"catalog.misc_missing"}
    build_plan(page, visit, "catalog")
    assert "POST procurement/catalog" in page.locator("table.plan-table").inner_text()
    assert approve_plan(page, visit, "catalog") == "pass"
    assert not page.console_errors, page.console_errors
