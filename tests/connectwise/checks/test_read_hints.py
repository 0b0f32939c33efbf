"""Two levels when nothing changed: the last counts and the codebase plan the first wave of a verify, and stale
knowledge costs at most one more level, never a different finding. The real client against the in-process
sandbox (latency on, so that the levels the client observes are real round trips)."""

from __future__ import annotations

import math

import pytest

from connectwise.checks.context import ReadHints
from connectwise.checks.runner import ChosenCompany, ConnectionInfo, TenantChoices, run_steps
from connectwise.client import ConnectWiseClient, Credentials
from connectwise.sandbox import SandboxApp, generate_scenario, parse_scenario, sandbox_transport

COMPANY = "bigco"
SITE = ConnectionInfo("api-na.myconnectwise.net", "api-na.myconnectwise.net", company_id=COMPANY)
# Long next to any scheduling delay on a busy machine, so that a level is a round trip (200 ms once saw 2 levels
# for 1 under load: a thread of the first wave sent after another's answer).
LATENCY_MS = 400
# Companies 1..1500: in the smaller tenant the last 300 are gone (customers.company_missing findings).
CHOICES = TenantChoices([ChosenCompany(i) for i in range(1, 1501)])


@pytest.fixture(scope="module")
def apps():
    """The same ConnectWise company at two sizes: before (1,200 companies) and after growing (2,300)."""
    out = {}
    for label, companies in (("small", 1200), ("large", 2300)):
        scenario = parse_scenario(generate_scenario(companies, 2 * companies, company_id=COMPANY))
        app = SandboxApp([scenario], prerender=True)
        app.set_faults({"latencyMs": LATENCY_MS})
        out[label] = app
    return out


def _client(app, *, codebase=None, max_in_flight=32) -> ConnectWiseClient:
    creds = Credentials(
        origin="http://sandbox.test",
        company_id=COMPANY,
        public_key=f"{COMPANY}pub",
        private_key=f"{COMPANY}priv-0123456789",
        client_id="0f0f0f0f-0000-1111-2222-333344445555",
    )
    return ConnectWiseClient(
        creds, transport=sandbox_transport(app), codebase=codebase, max_in_flight=max_in_flight
    )


def _verify(app, *, hints=None, codebase="v4_6_release/", max_in_flight=32):
    with _client(app, codebase=codebase, max_in_flight=max_in_flight) as client:
        outcomes = run_steps(client, CHOICES, connection=SITE, hints=hints)
        stats = client.stats
    findings = {o.key: (str(o.status), sorted((f.code, f.subject) for f in o.findings)) for o in outcomes}
    return findings, stats


def test_the_first_verify_learns_the_counts_and_the_next_one_needs_one_level(apps):
    app = apps["small"]
    learned = ReadHints()
    baseline, first = _verify(app, hints=learned, codebase=None)
    assert learned.observed == {"companies": 1200, "agreements": 2400}
    # Without a codebase: companyinfo, then everything else, then the pages after page 1 once /count answered.
    assert first.levels() == 3

    again, stats = _verify(app, hints=ReadHints.from_stored(learned.to_stored()))
    assert again == baseline
    assert stats.levels() == 1  # every read at once: the calls fit in flight
    assert stats.calls == first.calls  # companyinfo, system/info, a /count per paged resource, pages, tables
    assert baseline["customers"][0] == "fail"
    assert sum(code == "customers.company_missing" for code, _ in baseline["customers"][1]) == 300


def test_the_in_flight_bound_makes_the_levels_it_must(apps):
    hints = ReadHints(counts={"companies": 1200, "agreements": 2400})
    _, stats = _verify(apps["small"], hints=hints, max_in_flight=16)
    assert stats.calls > 16 and stats.levels() == math.ceil(stats.calls / 16) == 2


def test_counts_from_before_the_data_grew_cost_one_level_and_no_finding(apps):
    app = apps["large"]
    truth, fresh = _verify(app, hints=ReadHints(counts={"companies": 2300, "agreements": 4600}))
    stale = ReadHints(counts={"companies": 1200, "agreements": 2400})
    findings, stats = _verify(app, hints=stale)
    assert findings == truth
    assert stats.levels() == fresh.levels() + 1 == 2
    assert stats.calls == fresh.calls  # the pages growth added, nothing more
    assert stale.observed == {"companies": 2300, "agreements": 4600}


def test_counts_from_before_the_data_shrank_cost_the_empty_pages_and_no_finding(apps):
    app = apps["small"]
    truth, fresh = _verify(app, hints=ReadHints(counts={"companies": 1200, "agreements": 2400}))
    stale = ReadHints(counts={"companies": 2300, "agreements": 4600})
    findings, stats = _verify(app, hints=stale)
    assert findings == truth
    assert stats.levels() == 1
    # Predicted pages past the end come back empty: at most one more per page the old count predicted.
    extra = (math.ceil(2300 / 1000) - math.ceil(1200 / 1000)) + (
        math.ceil(4600 / 1000) - math.ceil(2400 / 1000)
    )
    assert fresh.calls <= stats.calls <= fresh.calls + extra
    assert stale.observed == {"companies": 1200, "agreements": 2400}


def test_a_moved_codebase_costs_one_rediscovery_and_no_finding(apps):
    app = apps["small"]
    hints = {"counts": {"companies": 1200, "agreements": 2400}}
    truth, fresh = _verify(app, hints=ReadHints.from_stored(hints))
    findings, stats = _verify(app, hints=ReadHints.from_stored(hints), codebase="v2019_3/")
    assert findings == truth
    discovery = sum(n for (_, path), n in stats.by_endpoint.items() if path.startswith("login/companyinfo"))
    assert discovery <= 2  # the one in the wave, at most one more after the 404s
    assert stats.levels() == fresh.levels() + 1  # the 404 wave, then the same reads on the new codebase


@pytest.mark.parametrize(
    "stored",
    [
        None,
        [],
        {"counts": "x"},
        {"counts": {"companies": -1, "agreements": True, "nope": 3}},
        {"counts": None},
    ],
)
def test_unreadable_stored_hints_are_ignored(stored):
    assert ReadHints.from_stored(stored).counts == {}


def test_the_wave_sends_the_paged_resources_before_the_small_tables(apps, monkeypatch):
    """Their pages take the longest to parse once in: they are requested first (after the connection step's own
    two reads), so their parsing starts while the small tables' answers are still coming. With one request at a
    time the order of the requests is the order of the wave."""
    from connectwise.checks import context
    from connectwise.checks.context import RESOURCES

    monkeypatch.setattr(context, "MAX_PARALLEL_RESOURCES", 1)
    app = apps["small"]
    app.set_faults({"latencyMs": 0})  # one request at a time: no need to wait for each
    try:
        learned = ReadHints()
        _verify(app, hints=learned)
        app.clear_requests()
        with _client(app, codebase="v4_6_release/", max_in_flight=1) as client:
            run_steps(client, CHOICES, connection=SITE, hints=ReadHints.from_stored(learned.to_stored()))
    finally:
        app.set_faults({"latencyMs": LATENCY_MS})
    order = [key.split(" ", 1)[1] for key in app.tenant(COMPANY).requests]  # each path at its first request
    large = {r.path for r in RESOURCES.values() if r.large}
    paged = large | {f"{p}/count" for p in large}
    assert order[:2] == [f"login/companyinfo/{COMPANY}", "system/info"]
    assert set(order[2 : 2 + len(paged)]) == paged
    assert not paged & set(order[2 + len(paged) :]) and len(order) > 2 + len(paged)
