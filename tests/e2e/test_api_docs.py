"""The API docs page in a real browser: Swagger UI from vendored files renders the published document under the
product's Content-Security-Policy (no CDN, no inline code), and support's token and webhook pages work."""

from __future__ import annotations

from tests.conftest import PASSWORD
from tests.e2e.conftest import login


def test_the_api_docs_render_under_the_csp(live_server, page, shot, transactional_db):
    requests: list[str] = []
    page.on("request", lambda r: requests.append(r.url))
    response = page.goto(f"{live_server.url}/api/v1/docs/")
    assert "script-src 'self'" in response.headers["content-security-policy"]
    page.wait_for_selector(".swagger-ui .info .title")
    assert "Billing Sync Readiness API" in page.inner_text(".swagger-ui .info .title")
    page.wait_for_selector("text=/api/v1/tenants/{slug}/mapping/")
    shot(page, "api-docs")
    assert all(r.startswith(live_server.url) or r.startswith("data:") for r in requests), requests
    assert not [e for e in page.console_errors if "Content Security Policy" in e or "Refused" in e], (
        page.console_errors
    )


def test_support_creates_a_token_and_a_webhook_in_the_browser(live_server, page, shot, support, settings):
    settings.WEBHOOK_TRUSTED_HOSTS = ["127.0.0.1:9"]
    login(page, live_server.url, support.email, PASSWORD)
    page.get_by_role("link", name="API tokens").click()
    page.fill("input[name=name]", "billing sync")
    page.select_option("select[name=scope]", "read+verify")
    page.get_by_role("button", name="Create token").click()
    secret = page.inner_text("[data-testid=token-secret]")
    assert secret.startswith("bsr_")
    shot(page, "token-created")
    page.goto(f"{live_server.url}/support/api-tokens/")  # the secret is shown once, on the answer to the form
    assert secret not in page.content() and "billing sync" in page.content()
    page.get_by_role("link", name="Webhooks").click()
    page.fill("input[name=url]", "http://10.0.0.1/hook")
    page.get_by_role("button", name="Add endpoint").click()
    assert "Use https://" in page.inner_text("#div_id_url")
    page.fill("input[name=url]", "http://127.0.0.1:9/hook")
    page.get_by_role("button", name="Add endpoint").click()
    assert page.inner_text("[data-testid=webhook-secret]").startswith("whsec_")
    shot(page, "webhook-added")
    unexpected = [e for e in page.console_errors if "status of 400" not in e]  # the refused URL answers 400
    assert not unexpected, unexpected
