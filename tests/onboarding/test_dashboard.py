"""The support dashboard list: access, badges, markers, filters, search, sort, paging, funnel and summary cards."""

from __future__ import annotations

import re

import pytest
from django.urls import reverse

from connectwise.checks.registry import READINESS_KEYS, STEP_KEYS
from onboarding import monitoring

from .dashboard_factories import ALL_PASS, make_tenant, statuses

pytestmark = pytest.mark.django_db


def slugs_in(response) -> list[str]:
    """Tenant slugs in the list, in page order (the rows' checkbox values)."""
    return re.findall(r'name="tenant" value="([^"]+)"', response.content.decode())


@pytest.fixture
def cast(db):
    """Tenants in every state the filters tell apart."""
    return {
        "ready": make_tenant("ready-co", name="Alpha Ready", step_statuses=ALL_PASS, checked_hours_ago=2),
        "catalog": make_tenant(
            "catalog-co", name="Bravo Catalog", step_statuses=statuses(catalog="fail"), checked_hours_ago=5
        ),
        "stale": make_tenant("stale-co", name="Charlie Stale", step_statuses=ALL_PASS, checked_hours_ago=72),
        "error": make_tenant(
            "error-co", name="Delta Error", step_statuses=statuses(customers="error"), checked_hours_ago=3
        ),
        "drift": make_tenant(
            "drift-co",
            name="Echo Drift",
            step_statuses=statuses(setup_tables="fail"),
            checked_hours_ago=1,
            drift=("setup_tables",),
        ),
        "never": make_tenant("never-co", name="Foxtrot Never", checked_hours_ago=None),
        "unconnected": make_tenant(
            "unconnected-co", name="Golf Unconnected", checked_hours_ago=None, connected=False
        ),
    }


@pytest.mark.parametrize("who", ["admin_a", "member_a", "outsider_b"])
def test_it_is_not_found_for_everyone_but_support(client, request, who, tenant_a):
    client.force_login(request.getfixturevalue(who))
    for url in [
        reverse("dashboard"),
        reverse("support_tenant", args=[tenant_a.slug]),
        reverse("support_export"),
        reverse("support_api_tenants"),
        reverse("support_hosts"),
    ]:
        assert client.get(url).status_code == 404, url
    for url in [
        reverse("support_recheck", args=[tenant_a.slug]),
        reverse("support_bulk_recheck"),
        reverse("support_hosts"),
    ]:
        assert (
            client.post(url, {"tenant": [tenant_a.slug], "hostname": "cw.example.com"}).status_code == 404
        ), url


def test_it_sends_anonymous_visitors_to_sign_in(client):
    response = client.get(reverse("dashboard"))
    assert response.status_code == 302
    assert response["Location"].startswith(reverse("login"))


def test_it_shows_an_empty_state_without_tenants(client, support):
    client.force_login(support)
    response = client.get(reverse("dashboard"))
    assert response.status_code == 200
    assert "No tenants yet" in response.content.decode()


def test_it_lists_every_tenant_with_a_badge_per_step_and_its_markers(client, support, cast):
    client.force_login(support)
    response = client.get(reverse("dashboard"))
    html = response.content.decode()
    assert sorted(slugs_in(response)) == sorted(t.slug for t in cast.values())
    # Listed, but its checkbox is disabled: there is nothing to re-check without a connection.
    assert 'value="unconnected-co" form="bulk" aria-label="Select Golf Unconnected" disabled' in html
    # Six badges per tenant: Bravo's row has five passes and a failing catalog.
    row = re.search(r"Bravo Catalog.*?</tr>", html, re.S).group(0)
    assert row.count("status status-pass") == len(STEP_KEYS) - 1
    assert row.count("status status-fail") == 1
    assert "open: Product catalog" in row
    # The readiness score counts the steps that decide readiness (the advisory seats step is not one of them).
    assert f"{len(READINESS_KEYS) - 1} of {len(READINESS_KEYS)} steps" in row
    assert "Stale" in re.search(r"Charlie Stale.*?</tr>", html, re.S).group(0)
    assert "Drift: Setup tables" in re.search(r"Echo Drift.*?</tr>", html, re.S).group(0)
    assert "Error" in re.search(r"Delta Error.*?</tr>", html, re.S).group(0)
    never = re.search(r"Foxtrot Never.*?</tr>", html, re.S).group(0)
    assert "Never" in never and "Not checked" in never
    # Never checked but connected is stale; never connected is not (nothing to verify).
    assert "Stale" in never
    assert "Stale" not in re.search(r"Golf Unconnected.*?</tr>", html, re.S).group(0)


@pytest.mark.parametrize(
    ("show", "expected"),
    [
        ("ready", {"ready-co", "stale-co"}),
        ("not_ready", {"catalog-co", "error-co", "drift-co", "never-co", "unconnected-co"}),
        ("stale", {"stale-co", "never-co"}),
        ("errors", {"error-co"}),
        ("drift", {"drift-co"}),
        ("never", {"never-co", "unconnected-co"}),
    ],
)
def test_it_filters(client, support, cast, show, expected):
    client.force_login(support)
    response = client.get(reverse("dashboard"), {"show": show})
    html = response.content.decode()
    shown = {t.slug for t in cast.values() if f"{t.slug}</div>" in html}
    assert shown == expected


def test_it_filters_tenants_blocked_at_a_step(client, support, cast):
    client.force_login(support)
    response = client.get(reverse("dashboard"), {"step": "catalog"})
    assert slugs_in(response) == ["catalog-co"]
    response = client.get(reverse("dashboard"), {"step": "setup_tables", "show": "drift"})
    assert slugs_in(response) == ["drift-co"]


def test_it_searches_names_and_slugs(client, support, cast):
    client.force_login(support)
    assert slugs_in(client.get(reverse("dashboard"), {"q": "charlie"})) == ["stale-co"]
    assert slugs_in(client.get(reverse("dashboard"), {"q": "error-c"})) == ["error-co"]
    response = client.get(reverse("dashboard"), {"q": "nobody-like-this"})
    assert "No tenants match these filters" in response.content.decode()


def test_it_sorts(client, support, cast):
    client.force_login(support)
    by_name = slugs_in(client.get(reverse("dashboard")))
    assert by_name == [
        "ready-co",
        "catalog-co",
        "stale-co",
        "error-co",
        "drift-co",
        "never-co",
        "unconnected-co",
    ]
    assert slugs_in(client.get(reverse("dashboard"), {"sort": "-name"})) == by_name[::-1]
    newest = slugs_in(client.get(reverse("dashboard"), {"sort": "-last_checked"}))
    assert newest == [
        "drift-co",
        "ready-co",
        "error-co",
        "catalog-co",
        "stale-co",
        "never-co",
        "unconnected-co",
    ]
    oldest = slugs_in(client.get(reverse("dashboard"), {"sort": "last_checked"}))
    assert oldest[:3] == ["never-co", "unconnected-co", "stale-co"]  # never checked counts as the oldest
    most_ready = slugs_in(client.get(reverse("dashboard"), {"sort": "-readiness"}))
    assert set(most_ready[:2]) == {"ready-co", "stale-co"}
    assert most_ready[-2:] == ["never-co", "unconnected-co"]
    least_ready = slugs_in(client.get(reverse("dashboard"), {"sort": "readiness"}))
    assert least_ready[0] == "never-co"


def test_it_ignores_unknown_filter_values(client, support, cast):
    client.force_login(support)
    response = client.get(reverse("dashboard"), {"show": "bogus", "step": "nope", "sort": "drop table"})
    assert response.status_code == 200
    assert len(slugs_in(response)) == 7


def test_it_pages_by_fifty_and_keeps_the_filters(client, support):
    for i in range(55):
        make_tenant(f"t-{i:02d}", step_statuses=statuses(catalog="fail"))
    make_tenant("ready-one", step_statuses=ALL_PASS)
    client.force_login(support)
    first = client.get(reverse("dashboard"), {"show": "not_ready"})
    assert len(slugs_in(first)) == 50
    html = first.content.decode()
    assert "1–50 of 55 tenants" in html
    assert 'href="?show=not_ready&amp;page=2"' in html
    second = client.get(reverse("dashboard"), {"show": "not_ready", "page": 2})
    assert slugs_in(second) == [f"t-{i:02d}" for i in range(50, 55)]
    assert client.get(reverse("dashboard"), {"page": 99}).status_code == 200  # out of range: the last page


def test_the_funnel_and_cards_count_tenants_in_one_query(cast, django_assert_num_queries):
    with django_assert_num_queries(1):
        o = monitoring.overview()
    assert o["total"] == 7
    assert o["ready"] == 2
    assert o["stale"] == 2
    assert o["drift"] == 1
    assert o["errors"] == 1
    assert o["never"] == 2
    # Passing each step: 5 checked tenants pass connection; catalog fails for one, customers errors for one...
    assert o["passing"] == {
        "connection": 5,
        "security_role": 5,
        "catalog": 4,
        "setup_tables": 4,
        "customers": 4,
        "agreements": 5,
    }
    # ...and through each step (this one and all before it): the funnel narrows.
    assert o["through"] == {
        "connection": 5,
        "security_role": 5,
        "catalog": 4,
        "setup_tables": 3,
        "customers": 2,
        "agreements": 2,
    }


def test_the_page_draws_the_funnel_and_the_cards(client, support, cast):
    client.force_login(support)
    html = client.get(reverse("dashboard")).content.decode()
    assert "<svg" in html
    assert html.count('class="funnel-bar"') == len(READINESS_KEYS)
    assert "Product catalog: 4 through this step (57%), 4 pass it" in html
    cards = re.search(r'<div class="row g-3 mb-4 dash-cards">(.*?)</section>', html, re.S).group(1)
    assert [int(n) for n in re.findall(r'fs-3 fw-semibold[^"]*">(\d+)<', cards)] == [7, 2, 2, 1, 1]


def test_the_page_has_no_inline_scripts_or_styles(client, support, cast):
    client.force_login(support)
    html = client.get(reverse("dashboard")).content.decode()
    assert " style=" not in html
    assert "<style" not in html
    assert not re.search(r"<script(?![^>]*\bsrc=)", html)
    assert "table-responsive" in html


@pytest.mark.parametrize("status", ["pass", "warn", "fail", "error", "blocked", "weird<x>", "", None])
def test_the_status_badge_filter_renders_what_the_partial_renders(status):
    from django.template import Context, Template  # noqa: PLC0415
    from django.template.loader import render_to_string  # noqa: PLC0415

    partial = render_to_string("partials/status_badge.html", {"status": status})
    filtered = Template("{% load onboarding_tags %}{{ status|status_badge }}").render(
        Context({"status": status})
    )
    assert filtered == partial.rstrip("\n")  # the file's final newline only
