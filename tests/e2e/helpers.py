"""Browser steps shared by the end-to-end tests: waiting on the live progress cards, checking a step, and the
"Fix it for me" flow from the plan to the re-verified result. Everything waits on page state, never on sleeps."""

from __future__ import annotations

import json
import time
import urllib.request

from playwright.sync_api import Error as PlaywrightError

WORKER_TIMEOUT = 60_000  # ms: a real worker job (check, plan build, apply + re-verify)


class Visitor:
    """Screenshots every page it is told about and asserts that none of them contains a secret in its HTML."""

    def __init__(self, page, shot, secrets: list[str]):
        self.page, self.shot, self.secrets = page, shot, list(secrets)
        self.pages = 0

    def __call__(self, name: str) -> None:
        self.page.wait_for_load_state()
        html = self.page.content()
        for secret in self.secrets:
            assert secret not in html, f"a private key appears in the HTML of {self.page.url} ({name})"
        self.shot(self.page, name)
        self.pages += 1


def wait_for_run(page, timeout_ms: int = WORKER_TIMEOUT) -> None:
    """The run progress card polls with htmx and reloads the page when the run ends.

    Waiting for the card to go away is not enough: it goes away when the old page starts unloading, and the old
    page (still "Not checked") could then be read. So the page is marked, and we wait for a new, fully loaded
    document without the card."""
    if not page.locator("#run-progress").count():
        return  # the run had finished before this page was rendered: its result is on the page
    try:
        page.evaluate("() => { window.__waitingForRun = true; }")
    except PlaywrightError:  # the run ended meanwhile and the page is reloading (seen once in 3 runs)
        page.wait_for_load_state()
        if not page.locator("#run-progress").count():
            return
        page.evaluate("() => { window.__waitingForRun = true; }")
    deadline = time.monotonic() + timeout_ms / 1000
    while True:
        try:
            done = page.evaluate(
                "() => !window.__waitingForRun && document.readyState === 'complete'"
                " && !document.querySelector('#run-progress')"
            )
        except PlaywrightError:  # the page is navigating: its context went away mid-call
            done = False
        if done:
            break
        if time.monotonic() > deadline:
            raise AssertionError(f"the run did not finish within {timeout_ms / 1000:.0f} s")
        page.wait_for_timeout(100)
    page.wait_for_selector("main#main")


def check_step(page) -> None:
    """Press the step page's "Check now" and wait for the real worker's result."""
    page.locator("#result").get_by_role("button", name="Check now").click()
    page.wait_for_load_state()
    wait_for_run(page)


def check_all(page) -> None:
    page.get_by_role("button", name="Check all steps").click()
    page.wait_for_load_state()
    wait_for_run(page)


def step_status(page) -> str:
    """The status badge next to the step page's heading (pass, warn, fail, error, blocked or none)."""
    badge = page.locator("h1 + .status").first
    return (badge.get_attribute("class") or "").split("status-")[-1].strip()


def finding_codes(page, scope: str = "#result") -> set[str]:
    return {t.strip() for t in page.locator(f"{scope} .finding [title='Finding code']").all_inner_texts()}


def build_plan(page, visit, name: str) -> None:
    """ "Fix it for me" on a step page: the worker builds the plan and the page moves to it."""
    page.locator("#repair").get_by_role("button", name="Fix it for me").click()
    page.wait_for_load_state()
    if page.locator("#plan-building").count():
        visit(f"{name}-plan-building")
    page.wait_for_url("**/plans/**", timeout=WORKER_TIMEOUT)
    page.wait_for_selector("table.plan-table")
    visit(f"{name}-plan")


def approve_plan(page, visit, name: str) -> str:
    """Approve the plan shown (accepting the confirmation), follow it live and return the re-checked status."""
    page.once("dialog", lambda d: d.accept())
    page.get_by_role("button", name="Approve and apply").click()
    page.wait_for_load_state()
    visit(f"{name}-applying")
    # The body polls while the worker applies and re-verifies; it stops polling (no hx-get) when both are done.
    page.wait_for_selector("#plan-body:not([hx-get])", timeout=WORKER_TIMEOUT)
    visit(f"{name}-applied")
    body = page.locator("#plan-body")
    assert "applied" in body.inner_text(), body.inner_text()
    assert "Re-checked" in body.inner_text(), body.inner_text()
    assert page.locator("#plan-status").inner_text() == "Applied"  # the header badge follows the live updates
    badge = body.locator("p", has_text="Re-checked").locator(".status").first
    return (badge.get_attribute("class") or "").split("status-")[-1].strip()


def sandbox_post(sandbox: str, path: str, payload: dict | None = None) -> dict:
    data = json.dumps(payload or {}).encode()
    req = urllib.request.Request(
        f"{sandbox}{path}", data=data, method="POST", headers={"Content-Type": "application/json"}
    )
    with urllib.request.urlopen(req, timeout=10) as resp:
        body = resp.read()
    return json.loads(body) if body else {}
