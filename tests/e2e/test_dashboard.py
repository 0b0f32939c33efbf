"""The support dashboard in a real browser: several tenants in every state (made through the ORM exactly as runs
write them) plus one checked for real by the worker against the sandbox; filters, search, sort, paging, the
funnel, the tenant page with run history and the diff between runs, re-checking from the page, and the CSV and
JSON exports."""

from __future__ import annotations

import csv
import json
from pathlib import Path

from connectwise.checks.registry import STEP_KEYS
from tests.conftest import PASSWORD
from tests.e2e.conftest import SCENARIOS, login
from tests.e2e.helpers import Visitor, wait_for_run
from tests.onboarding.dashboard_factories import PRIVATE_KEY, finding, make_run, make_tenant, statuses

HEALTHY = json.loads(Path(SCENARIOS / "healthy.json").read_text())
MEMBER = HEALTHY["apiMembers"][0]
FILLERS = 50  # with the named tenants below: two pages of 50


def seed(sandbox: str):
    """The named tenants sort before the fillers ("Zz ..."), so they are all on page 1 sorted by name."""
    from onboarding.models import CompanyChoice, Connection, Tenant

    make_tenant("alpha-ready", name="Alpha Ready IT", step_statuses=statuses())
    make_tenant("bravo-catalog", name="Bravo Blocked Catalog", step_statuses=statuses(catalog="fail"))
    make_tenant(
        "charlie-stale", name="Charlie Stale Services", step_statuses=statuses(), checked_hours_ago=72
    )
    make_tenant("delta-error", name="Delta Error Networks", step_statuses=statuses(security_role="error"))
    make_tenant(
        "echo-drift", name="Echo Drift Partners", step_statuses=statuses(catalog="fail"), drift=("catalog",)
    )
    make_tenant("foxtrot-new", name="Foxtrot Never Checked", checked_hours_ago=None, connected=False)
    make_tenant(
        "golf-long",
        name="Golf International Managed Services and Cloud Solutions Provider Limited (EMEA region)",
        step_statuses=statuses(customers="fail", agreements="blocked"),
    )
    for i in range(FILLERS):
        make_tenant(
            f"zz-filler-{i:02d}", name=f"Zz Filler {i:02d}", step_statuses=statuses(agreements="warn")
        )

    # One tenant connected to the sandbox: an earlier (stored) run had a catalog failure; the real check passes.
    real = Tenant.objects.create(slug="hotel-real", name="Hotel Real Acme")
    connection = Connection(
        tenant=real,
        site=sandbox.split("://", 1)[1],
        company_id=HEALTHY["company"]["id"],
        public_key=MEMBER["publicKey"],
    )
    connection.set_private_key(MEMBER["privateKey"])
    connection.save()
    CompanyChoice.objects.create(tenant=real, cw_company_id=1, identifier="ContosoLtd", name="Contoso Ltd")
    make_run(
        real,
        {
            **{k: "pass" for k in STEP_KEYS},
            "catalog": ("fail", [finding("catalog.misc_inactive", "Product misc-seat")]),
        },
        hours_ago=30,
        ready=False,
    )
    return real


def table_names(page) -> list[str]:
    return [n.strip() for n in page.locator(".dash-table tbody th a").all_inner_texts()]


def choose(page, select: str, value: str) -> None:
    """The dashboard's selects submit the filter form on change (app.js)."""
    with page.expect_navigation():
        page.select_option(select, value)
    page.wait_for_load_state()


def show(page, value: str) -> None:
    choose(page, "#id_show", value)


def test_support_dashboard_filters_exports_and_rechecks(live_stack, page, shot, support):
    web, sandbox = live_stack["web"], live_stack["sandbox"]
    real = seed(sandbox)
    total = FILLERS + 8
    visit = Visitor(page, shot, [PRIVATE_KEY, MEMBER["privateKey"]])
    login(page, web, support.email, PASSWORD)
    page.wait_for_url("**/support/")
    visit("dashboard")

    # Overview cards and the funnel.
    cards = page.locator(".dash-cards .fs-3").all_inner_texts()
    assert cards[0] == str(total)
    assert page.locator("svg.funnel").is_visible()
    assert page.locator("svg.funnel > g").count() == 6
    assert "Connection:" in page.locator("#funnel-desc").text_content()
    assert f"1–50 of {total} tenants" in page.locator(".card-body p[aria-live]").inner_text()
    names = table_names(page)
    assert names[0] == "Alpha Ready IT" and len(names) == 50

    # Paging.
    page.get_by_role("link", name="Next").click()
    page.wait_for_load_state()
    visit("dashboard-page-2")
    assert len(table_names(page)) == total - 50
    assert "Page 2 of 2" in page.locator(".pagination").inner_text()

    # Filters: ready, stale, errors, drift, blocked at a step; search; sort.
    page.goto(f"{web}/support/")
    show(page, "ready")
    visit("filter-ready")
    assert "Alpha Ready IT" in table_names(page)
    assert "Bravo Blocked Catalog" not in table_names(page)
    show(page, "stale")
    visit("filter-stale")
    assert "Charlie Stale Services" in table_names(page) and "Alpha Ready IT" not in table_names(page)
    show(page, "errors")
    visit("filter-errors")
    assert table_names(page) == ["Delta Error Networks"]
    show(page, "drift")
    visit("filter-drift")
    assert table_names(page) == ["Echo Drift Partners"]
    assert "Drift: Product catalog" in page.locator(".dash-table").inner_text()
    show(page, "")
    choose(page, "#id_step", "catalog")
    visit("filter-blocked-catalog")
    assert table_names(page) == ["Bravo Blocked Catalog", "Echo Drift Partners"]
    page.get_by_role("link", name="Clear filters").click()
    page.wait_for_load_state()
    page.fill("#id_q", "delta")
    page.get_by_role("button", name="Apply").click()
    page.wait_for_load_state()
    visit("search-delta")
    assert table_names(page) == ["Delta Error Networks"]
    page.fill("#id_q", "no such partner")
    page.get_by_role("button", name="Apply").click()
    page.wait_for_load_state()
    visit("search-empty")
    assert "No tenants match these filters" in page.content()
    page.goto(f"{web}/support/")
    choose(page, "#id_sort", "readiness")
    visit("sort-readiness")
    first = table_names(page)[0]
    assert first in ("Foxtrot Never Checked", "Hotel Real Acme"), first  # nothing passed yet

    # The funnel links to the tenants blocked at a step.
    page.goto(f"{web}/support/")
    page.locator("svg.funnel a").nth(4).click()  # 5. Customers
    page.wait_for_load_state()
    assert "step=customers" in page.url
    assert table_names(page) == [
        "Golf International Managed Services and Cloud Solutions Provider Limited (EMEA region)"
    ]
    visit("funnel-customers")

    # Exports of the same data: CSV (download) and JSON (same session).
    page.goto(f"{web}/support/")
    with page.expect_download() as info:
        page.get_by_role("link", name="Export CSV").click()
    download = info.value
    assert download.suggested_filename.startswith("tenants-") and download.suggested_filename.endswith(".csv")
    rows = list(csv.DictReader(Path(download.path()).read_text().splitlines()))
    assert len(rows) == total
    by_slug = {r["slug"]: r for r in rows}
    assert by_slug["alpha-ready"]["ready"] == "yes"
    assert (
        by_slug["bravo-catalog"]["catalog"] == "fail"
        and by_slug["bravo-catalog"]["first_open_step"] == "catalog"
    )
    assert by_slug["charlie-stale"]["stale"] == "yes"
    assert by_slug["delta-error"]["has_error"] == "yes"
    assert by_slug["echo-drift"]["drift_steps"] == "catalog"
    assert PRIVATE_KEY not in Path(download.path()).read_text()

    response = page.request.get(f"{web}/support/api/tenants.json?show=drift")
    assert response.ok
    data = response.json()
    assert data["count"] == 1 and data["results"][0]["slug"] == "echo-drift"
    assert data["results"][0]["steps"]["catalog"] == "fail"
    everyone = page.request.get(f"{web}/support/api/tenants.json").json()
    assert everyone["count"] == total and everyone["pages"] == 2 and len(everyone["results"]) == 50
    assert PRIVATE_KEY not in json.dumps(everyone)

    # The real tenant: run history, re-check through the worker, and the diff against the earlier run.
    page.goto(f"{web}/support/?q=hotel")
    page.get_by_role("link", name="Hotel Real Acme").click()
    page.wait_for_load_state()
    visit("tenant-before-recheck")
    history = page.locator("#runs-title").locator("xpath=ancestor::section").locator("tbody tr")
    assert history.count() == 1
    assert "Kept by the partner; never shown to support." in page.content()
    page.get_by_role("button", name="Re-check now").click()
    page.wait_for_load_state()
    visit("tenant-rechecking")
    wait_for_run(page)
    visit("tenant-after-recheck")
    assert history.count() == 2
    assert "Started by support" in history.first.inner_text()
    assert "Done" in history.first.inner_text()
    changes = page.locator("#changes-title").locator("xpath=ancestor::section")
    assert "1 step changed" in changes.inner_text()
    changed_row = changes.locator("tr.dash-changed")
    assert changed_row.count() == 1
    assert "Product catalog" in changed_row.inner_text()
    assert "catalog.misc_inactive" in changed_row.inner_text()  # removed by the real run
    real.refresh_from_db()
    assert real.ready and real.last_checked_at is not None

    # Comparing two runs picked by hand: the other way round, the finding is added.
    page.select_option("#id_against", index=0)
    page.select_option("#id_run", index=1)
    page.get_by_role("button", name="Compare").click()
    page.wait_for_load_state()
    visit("tenant-diff-reversed")
    assert "catalog.misc_inactive" in changes.locator("tr.dash-changed").inner_text()

    # A tenant page with nothing yet, and the dashboard on a phone.
    page.goto(f"{web}/support/t/foxtrot-new/")
    visit("tenant-never-checked")
    assert "No checks have run for this tenant yet." in page.content()
    page.set_viewport_size({"width": 390, "height": 844})
    page.goto(f"{web}/support/")
    visit("mobile-dashboard")
    page.goto(f"{web}/support/t/{real.slug}/")
    visit("mobile-tenant")
    assert not page.console_errors, page.console_errors
