"""Issue 14: the broken demo tenant (Broken MSP, sandbox company `brokenco`) is brought to Ready with the
product's pages alone, in demo mode: the security role is changed with "Make this change in the sandbox", the
tables, catalog and agreements with "Fix it for me", the customers and agreements on their pages. The real
worker and the served sandbox; axe-core on the demo-only states at both sizes."""

from __future__ import annotations

from django.core.management import call_command

from tests.e2e.a11y import Tour
from tests.e2e.conftest import login
from tests.e2e.helpers import approve_plan, build_plan, finding_codes, step_status, wait_for_run

PASSWORD = "demo-password-2026"
# Companies of broken.json that can be billed (ids); Margie's Travel (15) has two candidates, Lucerne (16) bills
# annually.
READY = [1, 2, 7, 8, 9, 15, 16]


def _goto(page, url: str) -> None:
    page.goto(url)
    page.wait_for_load_state()


def test_broken_demo_tenant_reaches_ready_with_the_products_pages_alone(live_stack, browser, shot):
    web = live_stack["web"]
    call_command("seed_demo", "--no-checks")
    context = browser.new_context(viewport={"width": 1280, "height": 800}, bypass_csp=True)
    context.set_default_timeout(20_000)
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    tour = Tour(page, shot)
    login(page, web, "admin@broken.example", PASSWORD)
    slug = "broken-msp"

    # The connection page offers the sandbox's companies (demo mode), and this tenant is on "Broken MSP".
    _goto(page, f"{web}/t/{slug}/steps/connection/")
    tour("demo-connection")
    assert page.locator("#sandbox-companies").get_by_role("button", name="Connect to Broken MSP").count() == 1
    page.locator("#sandbox-companies").get_by_role("button", name="Connect to Broken MSP").click()
    page.wait_for_load_state()
    assert "Connected to the sandbox company Broken MSP" in page.locator(".alert-success").inner_text()
    wait_for_run(page)
    assert step_status(page) == "pass"

    # Security role: fixed only inside ConnectWise; demo mode makes each change in the sandbox.
    _goto(page, f"{web}/t/{slug}/steps/security_role/")
    tour("demo-security-role")
    assert step_status(page) == "fail"
    for _ in range(6):
        buttons = page.locator("#result").get_by_role("button", name="Make this change in the sandbox")
        if not buttons.count():
            break
        buttons.first.click()
        page.wait_for_load_state()
        assert "Changed in the sandbox" in page.locator(".alert-success").inner_text()
        wait_for_run(page)
    assert step_status(page) == "warn", finding_codes(page)
    assert finding_codes(page) == {"role.excess_permission"}

    # Setup tables and catalog: "Fix it for me".
    for key in ("setup_tables", "catalog"):
        _goto(page, f"{web}/t/{slug}/steps/{key}/")
        if step_status(page) != "pass":
            build_plan(page, tour if key == "catalog" else (lambda name: None), f"demo-{key}")
            assert approve_plan(page, lambda name: None, f"demo-{key}") == "pass"
            if key == "catalog":
                tour("demo-catalog-applied")
                assert "Next step: Setup tables" in page.locator("#plan-body").inner_text()

    # Customers: choose the companies that can be billed; the change re-checks by itself.
    _goto(page, f"{web}/t/{slug}/steps/customers/")
    for cid in READY:
        page.locator(f"#directory-form input[name=company][value='{cid}']").check()
    page.get_by_role("button", name="Add selected to the sync").click()
    page.wait_for_load_state()
    wait_for_run(page)
    assert step_status(page) == "warn", finding_codes(page)
    assert finding_codes(page) == {"customers.duplicate_name"}

    # Agreements: Lucerne bills annually (the page offers that motion), Margie's Travel has two candidates.
    _goto(page, f"{web}/t/{slug}/steps/agreements/")
    lucerne = page.locator("article.agreement-row", has_text="Lucerne Publishing")
    lucerne.get_by_role("button", name="Use Seat Based Annual").click()
    page.wait_for_load_state()
    wait_for_run(page)  # the change re-checks by itself; the page reloads when it is done
    page.select_option("#agreement-15", "15")
    page.get_by_role("button", name="Save mapping").click()
    page.wait_for_load_state()
    wait_for_run(page)
    assert step_status(page) == "fail"
    build_plan(page, lambda name: None, "demo-agreements")
    assert approve_plan(page, lambda name: None, "demo-agreements") == "warn"
    tour("demo-agreements-applied")

    _goto(page, f"{web}/t/{slug}/")
    tour("demo-ready")
    assert page.locator("h1").inner_text() == "Ready for billing sync"
    assert "What happens next" in page.locator("#next").inner_text()
    assert not errors, errors
    context.close()
