"""Issue 2's walking skeleton in a real browser: sign in, connect to the sandbox, the real worker checks the
connection and the page shows the stored result; then a wrong private key gives connection.auth_failed."""

from __future__ import annotations

import json
from pathlib import Path

from tests.conftest import PASSWORD
from tests.e2e.conftest import SCENARIOS, login
from tests.e2e.helpers import wait_for_run

HEALTHY = json.loads(Path(SCENARIOS / "healthy.json").read_text())
MEMBER = HEALTHY["apiMembers"][0]


def wait_for_result(page, timeout_ms: int = 60_000) -> None:
    """The progress card polls with htmx and reloads the page when the run ends."""
    wait_for_run(page, timeout_ms)


def test_admin_connects_checks_and_sees_auth_failure(live_stack, page, shot, admin_a, tenant_a):
    web = live_stack["web"]
    login(page, web, admin_a.email, PASSWORD)
    page.goto(f"{web}/t/{tenant_a.slug}/")
    shot(page, "tenant-home-empty")

    page.goto(f"{web}/t/{tenant_a.slug}/steps/connection/")
    page.select_option("select[name=region]", "sandbox")
    page.fill("input[name=company_id]", HEALTHY["company"]["id"])
    page.fill("input[name=public_key]", MEMBER["publicKey"])
    page.fill("input[name=private_key]", MEMBER["privateKey"])
    shot(page, "connection-form")
    page.get_by_role("button", name="Save and check connection").click()
    page.wait_for_load_state()
    shot(page, "connection-checking")
    wait_for_result(page)
    shot(page, "connection-passed")
    result = page.locator("section[aria-labelledby=result-heading]")
    assert "Nothing to fix here" in result.inner_text()
    assert page.locator("h1 ~ .status-pass, .d-flex > .status-pass").first.is_visible()
    assert MEMBER["privateKey"] not in page.content()

    # A wrong private key: the stored result is connection.auth_failed.
    page.fill("input[name=private_key]", "wrong-private-key-000")
    page.get_by_role("button", name="Save and check connection").click()
    page.wait_for_load_state()
    wait_for_result(page)
    shot(page, "connection-auth-failed")
    assert page.get_by_text("connection.auth_failed").first.is_visible()
    assert "wrong-private-key-000" not in page.content()
    assert not page.console_errors, page.console_errors
