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
