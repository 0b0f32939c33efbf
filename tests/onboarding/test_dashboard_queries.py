"""The dashboard's SQL query count does not grow with the number of tenants (or runs): no N+1."""

from __future__ import annotations

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from connectwise.checks.registry import STEP_KEYS

from .dashboard_factories import ALL_PASS, finding, make_run, make_tenant, statuses

pytestmark = pytest.mark.django_db

PAGES = {
    "list": ("dashboard", {}),
    "filtered list": (
        "dashboard",
        {"show": "not_ready", "step": "catalog", "sort": "-last_checked", "q": "t"},
    ),
    "stale by readiness": ("dashboard", {"show": "stale", "sort": "readiness"}),
    "export": ("support_export", {}),
    "filtered export": ("support_export", {"show": "drift"}),
    "json": ("support_api_tenants", {"show": "not_ready"}),
}


def add_tenants(start: int, count: int) -> None:
    for i in range(start, start + count):
        kind = i % 5
        if kind == 0:
            make_tenant(f"t-{i:03d}", step_statuses=ALL_PASS)
        elif kind == 1:
            make_tenant(f"t-{i:03d}", step_statuses=statuses(catalog="fail"), drift=("catalog",))
        elif kind == 2:
            make_tenant(f"t-{i:03d}", step_statuses=statuses(customers="error"), checked_hours_ago=80)
        elif kind == 3:
            make_tenant(f"t-{i:03d}", checked_hours_ago=None, connected=False)
        else:
            make_tenant(f"t-{i:03d}", step_statuses=statuses(catalog="fail"))


def count_queries(client, name: str, params: dict) -> int:
    with CaptureQueriesContext(connection) as ctx:
        response = client.get(reverse(name), params)
        assert response.status_code == 200
        if response.streaming:
            body = b"".join(response.streaming_content)  # the export queries while it streams
            assert body
    return len(ctx)


def test_list_filters_and_exports_cost_the_same_queries_for_5_and_60_tenants(client, support):
    client.force_login(support)
    add_tenants(0, 5)
    small = {page: count_queries(client, name, params) for page, (name, params) in PAGES.items()}
    add_tenants(5, 55)
    large = {page: count_queries(client, name, params) for page, (name, params) in PAGES.items()}
    assert large == small
    # And the count is small: session, user, the overview aggregate, the page count, the page, the page's
    # tenants that share a ConnectWise company.
    assert small["list"] <= 6
    assert small["export"] <= 3


def test_the_tenant_page_costs_the_same_queries_for_2_and_12_runs(client, support):
    tenant = make_tenant("busy", step_statuses=statuses(catalog="fail"))
    for h in range(2):
        make_run(
            tenant, {k: ("fail", [finding("catalog.misc_inactive", f"P{h}")]) for k in STEP_KEYS}, hours_ago=h
        )
    client.force_login(support)
    url = reverse("support_tenant", args=[tenant.slug])
    with CaptureQueriesContext(connection) as small:
        client.get(url)
    for h in range(2, 12):
        make_run(tenant, {k: "pass" for k in STEP_KEYS}, hours_ago=h, actor=support)
    with CaptureQueriesContext(connection) as large:
        client.get(url)
    assert len(large) == len(small)


@pytest.fixture
def counts_cached(settings):
    """The summary cards and funnel as deployed: computed at most once per DASHBOARD_COUNTS_SECONDS (the test
    suite's default is 0, every request counts afresh, so that one test's counts never leak into the next)."""
    from django.core.cache import cache

    from onboarding import monitoring

    settings.DASHBOARD_COUNTS_SECONDS = 30
    cache.delete(monitoring.OVERVIEW_CACHE_KEY)
    yield
    cache.delete(monitoring.OVERVIEW_CACHE_KEY)


def test_the_summary_counts_are_aggregated_once_per_interval_not_per_request(client, support, counts_cached):
    from django.core.cache import cache

    from onboarding import monitoring

    client.force_login(support)
    add_tenants(0, 5)
    first = count_queries(client, "dashboard", {})
    add_tenants(5, 5)
    with CaptureQueriesContext(connection) as ctx:
        again = client.get(reverse("dashboard"))
    # The aggregate over every tenant is not run again within the interval: the cards show the cached counts...
    assert len(ctx) == first - 1
    assert not any('COUNT("onboarding_tenant"."id") AS "total"' in q["sql"] for q in ctx.captured_queries)
    assert again.context["overview"]["total"] == 5
    # ...while the list itself is never cached: the page counts the 10 tenants.
    assert again.context["page"].paginator.count == 10
    cache.delete(monitoring.OVERVIEW_CACHE_KEY)  # the interval has passed
    assert client.get(reverse("dashboard")).context["overview"]["total"] == 10


def test_without_an_interval_every_request_counts_afresh(client, support, settings):
    settings.DASHBOARD_COUNTS_SECONDS = 0
    client.force_login(support)
    add_tenants(0, 3)
    assert client.get(reverse("dashboard")).context["overview"]["total"] == 3
    add_tenants(3, 2)
    assert client.get(reverse("dashboard")).context["overview"]["total"] == 5


@pytest.mark.parametrize("who", ["admin_a", "support"])
def test_a_progress_poll_costs_four_indexed_queries(client, request, tenant_a, who):
    """Session, user, the run with its tenant (by slug and uuid), the membership: whatever the tenant holds."""
    from onboarding.models import CheckRun

    user = request.getfixturevalue(who)
    run = CheckRun.objects.create(
        tenant=tenant_a,
        status=CheckRun.Status.RUNNING,
        progress={"done": 2, "total": 6, "current": "catalog"},
    )
    for h in range(5):
        make_run(tenant_a, {k: "pass" for k in STEP_KEYS}, hours_ago=h + 1)
    client.force_login(user)
    with CaptureQueriesContext(connection) as ctx:
        response = client.get(reverse("run_status", args=[tenant_a.slug, run.uuid]))
    assert response.status_code == 200
    assert b"Catalog" in response.content or b"catalog" in response.content.lower()
    assert len(ctx) <= 4, [q["sql"][:120] for q in ctx.captured_queries]
    # The encrypted key is never loaded for a progress poll.
    assert not any("private_key_encrypted" in q["sql"] for q in ctx.captured_queries)


@pytest.mark.parametrize("sort", ["name", "-name"])
def test_the_list_pages_through_tenants_by_name_on_an_index_without_sorting_them_all(sort):
    """The default list (by name, then pk) reads its 50 rows in index order instead of sorting every tenant."""
    from django.db import transaction
    from django.http import QueryDict
    from django.utils import timezone

    from onboarding.views.dashboard import TenantFilter

    add_tenants(0, 30)
    qs = TenantFilter.from_params(QueryDict(f"sort={sort}")).apply(timezone.now())[:50]
    if connection.vendor == "postgresql":
        with transaction.atomic(), connection.cursor() as cursor:
            # Forbid sorting where the planner has a choice: without an index on (name, id) it has none.
            cursor.execute("SET LOCAL enable_sort = off")
            plan = qs.explain()
        assert "Sort" not in plan, plan
    else:
        plan = qs.explain()
        assert "TEMP B-TREE FOR ORDER BY" not in plan, plan
