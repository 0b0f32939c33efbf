"""The connection step's validation and error paths in a real browser: a clear message next to the problem,
nothing lost (the other fields keep their values; the private key is never echoed back), and the stored result
of a real check for an unknown company, a wrong key and a ConnectWise that is down (sandbox faults)."""

from __future__ import annotations

import json
from pathlib import Path

from tests.conftest import PASSWORD
from tests.e2e.conftest import SCENARIOS, login
from tests.e2e.helpers import Visitor, finding_codes, sandbox_post, step_status, wait_for_run

BROKEN = json.loads(Path(SCENARIOS / "broken.json").read_text())
MEMBER = BROKEN["apiMembers"][0]
COMPANY = BROKEN["company"]["id"]
SECRETS = [m["privateKey"] for m in BROKEN["apiMembers"]] + ["wrong-private-key-000"]


def fill_connection(page, *, region="sandbox", host="", company=COMPANY, public=None, private=None) -> None:
    page.select_option("select[name=region]", region)
    if region == "onprem":
        page.fill("input[name=onprem_host]", host)
    page.fill("input[name=company_id]", company)
    page.fill("input[name=public_key]", public or MEMBER["publicKey"])
    page.fill("input[name=private_key]", private or MEMBER["privateKey"])


def save(page) -> None:
    page.get_by_role("button", name="Save and check connection").click()
    page.wait_for_load_state()


def field_error(page, name: str) -> str:
    return page.locator(f"#div_id_{name} .invalid-feedback").inner_text()


def assert_kept(page, company: str = COMPANY) -> None:
    """The fields the partner typed are still there after a refusal; the private key is never sent back."""
    assert page.input_value("input[name=company_id]") == company
    assert page.input_value("input[name=public_key]") == MEMBER["publicKey"]
    assert page.input_value("input[name=private_key]") == ""


def test_connection_form_refuses_bad_hosts_and_keeps_the_other_fields(
    live_stack, page, shot, admin_a, tenant_a
):
    web = live_stack["web"]
    visit = Visitor(page, shot, SECRETS)
    login(page, web, admin_a.email, PASSWORD)
    url = f"{web}/t/{tenant_a.slug}/steps/connection/"

    # Nothing filled in: the browser asks for the required fields before anything is sent.
    page.goto(url)
    visit("connection-empty")
    page.locator(".onprem-only").wait_for(state="hidden")  # app.js hides it unless "On-premise" is chosen
    save(page)
    assert page.url == url
    assert page.eval_on_selector("input[name=company_id]", "e => e.validationMessage")
    assert page.eval_on_selector("input[name=private_key]", "e => e.validationMessage")

    # An on-premise host nobody approved.
    fill_connection(page, region="onprem", host="cw.unapproved-partner.example")
    visit("onprem-form")
    save(page)
    visit("onprem-not-approved")
    message = field_error(page, "onprem_host")
    assert "cw.unapproved-partner.example is not a ConnectWise cloud host" in message
    assert "approved by our support team" in message
    assert page.input_value("input[name=onprem_host]") == "cw.unapproved-partner.example"
    assert page.locator("select[name=region]").input_value() == "onprem"
    assert_kept(page)

    # A private address, however it is spelled.
    for host in ("10.1.2.3", "127.1"):
        fill_connection(page, region="onprem", host=host)
        save(page)
        visit(f"onprem-private-{host}")
        message = field_error(page, "onprem_host")
        assert "private" in message.lower() or "not allowed" in message.lower(), message
        assert page.input_value("input[name=onprem_host]") == host
        assert_kept(page)

    # On-premise without a host name.
    fill_connection(page, region="onprem", host="")
    save(page)
    assert "Enter your on-premise ConnectWise host name." in field_error(page, "onprem_host")
    assert_kept(page)

    # Nothing was saved by any of this: no connection, so no check ran.
    from onboarding.models import CheckRun, Connection

    assert not Connection.objects.filter(tenant=tenant_a).exists()
    assert not CheckRun.objects.filter(tenant=tenant_a).exists()

    # A phone screen shows the errors next to the field too.
    page.set_viewport_size({"width": 390, "height": 844})
    visit("mobile-onprem-error")
    # A refused form is answered with HTTP 400, which Chromium logs; nothing else may be in the console.
    unexpected = [e for e in page.console_errors if "status of 400 (Bad Request)" not in e]
    assert not unexpected, unexpected


def test_checks_report_unknown_company_wrong_key_and_connectwise_down(
    live_stack, page, shot, admin_a, tenant_a
):
    web, sandbox = live_stack["web"], live_stack["sandbox"]
    visit = Visitor(page, shot, SECRETS)
    login(page, web, admin_a.email, PASSWORD)
    page.goto(f"{web}/t/{tenant_a.slug}/steps/connection/")

    # A company id the site does not know.
    fill_connection(page, company="nosuchco")
    save(page)
    wait_for_run(page)
    visit("unknown-company")
    assert step_status(page) == "fail"
    assert finding_codes(page) == {"connection.unknown_company"}
    assert "nosuchco" in page.locator("#result").inner_text()
    # The saved connection is shown back, with the key masked; the form keeps the values.
    assert page.input_value("input[name=company_id]") == "nosuchco"

    # A wrong private key.
    fill_connection(page, private="wrong-private-key-000")
    save(page)
    wait_for_run(page)
    visit("auth-failed")
    assert step_status(page) == "fail"
    assert finding_codes(page) == {"connection.auth_failed"}

    # An inactive API member (oldsync) is refused the same way.
    old = next(m for m in BROKEN["apiMembers"] if m["identifier"] == "oldsync")
    fill_connection(page, public=old["publicKey"], private=old["privateKey"])
    save(page)
    wait_for_run(page)
    visit("inactive-member")
    assert finding_codes(page) == {"connection.auth_failed"}

    # ConnectWise answers 503 to everything, then drops every connection: a clear error, never a hang.
    try:
        for fault, name in (("503", "down-503"), ("reset", "down-reset")):
            sandbox_post(sandbox, "/_sandbox/faults", {"company": COMPANY, "rates": {fault: 1.0}})
            fill_connection(page)
            save(page)
            wait_for_run(page, timeout_ms=90_000)
            visit(name)
            status = step_status(page)
            text = page.locator("#result").inner_text()
            assert status in ("fail", "error"), status
            if status == "fail":
                assert finding_codes(page) == {"connection.unreachable"}
                assert "We could not get an answer from" in text
            else:
                assert "could not" in text.lower(), text
    finally:
        sandbox_post(sandbox, "/_sandbox/reset", {})

    # Back up: the same connection passes.
    fill_connection(page)
    save(page)
    wait_for_run(page)
    visit("recovered")
    assert step_status(page) == "pass"
    assert not page.console_errors, page.console_errors
