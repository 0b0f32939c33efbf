from __future__ import annotations

from collections import Counter

from connectwise.checks import codes
from connectwise.checks.base import Status
from connectwise.checks.registry import READINESS_KEYS, STEP_KEYS
from connectwise.checks.runner import ChosenCompany, ConnectionInfo, TenantChoices, run_steps
from connectwise.errors import AuthFailed

from .fakes import codes_of, healthy_client

SITE = ConnectionInfo("api-na.myconnectwise.net", "api-na.myconnectwise.net", company_id="acme")
CHOSEN = TenantChoices([ChosenCompany(2), ChosenCompany(3)])


def _statuses(outcomes):
    return {o.key: str(o.status) for o in outcomes}


def test_a_healthy_tenant_passes_every_step():
    outcomes = run_steps(healthy_client(), CHOSEN, connection=SITE)
    assert [o.key for o in outcomes] == list(READINESS_KEYS)  # the advisory step runs only when asked for
    assert _statuses(outcomes) == dict.fromkeys(READINESS_KEYS, "pass"), [o.findings for o in outcomes]
    outcomes = run_steps(healthy_client(), CHOSEN, steps=list(STEP_KEYS), connection=SITE)
    assert _statuses(outcomes) == dict.fromkeys(STEP_KEYS, "pass"), [o.findings for o in outcomes]


def test_it_reads_every_resource_at_most_once():
    client = healthy_client()
    run_steps(client, CHOSEN, connection=SITE)
    reads = Counter(p for m, p in client.calls if m == "GET")
    assert max(reads.values()) == 1, reads
    assert len(client.calls) <= 26


def test_agreements_is_blocked_until_a_company_is_chosen():
    outcomes = {o.key: o for o in run_steps(healthy_client(), TenantChoices(), connection=SITE)}
    assert outcomes["agreements"].status == Status.BLOCKED
    assert "company is chosen" in outcomes["agreements"].summary
    assert codes_of(outcomes["customers"]) == [codes.CUSTOMERS_NONE_SELECTED]


def test_every_step_is_blocked_without_a_working_connection():
    client = healthy_client(system_info_error=AuthFailed("401", status=401))
    outcomes = run_steps(client, CHOSEN, steps=list(STEP_KEYS), connection=SITE)
    assert _statuses(outcomes) == {"connection": "fail", **dict.fromkeys(STEP_KEYS[1:], "blocked")}
    # system/info starts in one wave with every other read (their answers are discarded): discovery first, as
    # this client does not know the codebase yet.
    assert client.calls[0] == ("GET", "login/companyinfo")
    assert client.calls_to("GET", "system/info") == 1


def test_an_unknown_company_costs_one_call_when_the_codebase_is_not_known():
    from connectwise.errors import UnknownCompany  # noqa: PLC0415

    client = healthy_client(discover_error=UnknownCompany("null", status=200))
    outcomes = run_steps(client, CHOSEN, connection=SITE)
    assert codes_of(outcomes[0]) == [codes.CONNECTION_UNKNOWN_COMPANY]
    assert {o.status for o in outcomes[1:]} == {Status.BLOCKED}
    assert client.calls == [("GET", "login/companyinfo")]


def test_a_refused_host_makes_no_call_and_needs_no_client():
    info = ConnectionInfo("10.0.0.1", "10.0.0.1", host_refused_reason="Private addresses are not allowed.")
    outcomes = run_steps(None, CHOSEN, connection=info)
    assert codes_of(outcomes[0]) == [codes.CONNECTION_HOST_NOT_ALLOWED]
    assert {o.status for o in outcomes[1:]} == {Status.BLOCKED}


def test_a_refused_read_errors_only_the_steps_that_need_it():
    client = healthy_client(forbidden=("procurement/catalog",))
    outcomes = {o.key: o for o in run_steps(client, CHOSEN, connection=SITE)}
    assert outcomes["catalog"].status == Status.ERROR
    assert codes_of(outcomes["catalog"]) == [codes.STEP_READ_FORBIDDEN]
    assert outcomes["catalog"].findings[0].data["role_function"] == "Procurement > Product Catalog: Inquire"
    assert outcomes["setup_tables"].status == Status.PASS
    assert outcomes["agreements"].status == Status.PASS


def test_other_steps_still_run_when_the_security_role_fails():
    security = [r for r in healthy_client().my_security if r["moduleFunctionName"] != "Agreements"]
    outcomes = {o.key: o for o in run_steps(healthy_client(my_security=security), CHOSEN, connection=SITE)}
    assert outcomes["security_role"].status == Status.FAIL
    assert outcomes["agreements"].status == Status.PASS


def test_it_runs_only_the_requested_steps_but_checks_the_connection_first():
    client = healthy_client()
    outcomes = run_steps(client, CHOSEN, steps=["catalog"], connection=SITE)
    assert [o.key for o in outcomes] == ["catalog"]
    assert ("GET", "system/info") in client.calls
    assert not any(p.startswith("finance/") or p.startswith("company/") for _, p in client.calls)


def test_it_reports_progress_per_requested_step():
    seen = []
    run_steps(
        healthy_client(),
        CHOSEN,
        steps=["customers", "connection"],
        on_progress=lambda k, d: seen.append((k, d)),
        connection=SITE,
    )
    assert seen == [("connection", 0), ("customers", 1)]


def test_a_large_tenant_costs_its_pages_plus_a_constant():
    from .fakes import agreement, company, healthy_records

    records = healthy_records()
    records["company/companies"] = [company(i, f"Customer {i}") for i in range(1, 5001)]
    records["finance/agreements"] = [agreement(i, (i % 5000) + 1) for i in range(1, 10_001)]
    client = healthy_client(records=records)
    choices = TenantChoices([ChosenCompany(i) for i in range(1, 5001, 7)])
    outcomes = run_steps(client, choices, connection=SITE)
    agreements = outcomes[-1]
    # every company has two active O365 agreements: ambiguous target, and a same-type warning
    assert set(codes_of(agreements)) == {
        codes.AGREEMENTS_AMBIGUOUS,
        codes.AGREEMENTS_MULTIPLE_ACTIVE_SAME_TYPE,
    }
    pages = 5 + 10
    assert len(client.calls) <= pages + 20, Counter(p for _, p in client.calls)


def test_the_callers_own_work_runs_while_the_first_wave_is_on_the_wire():
    """Issue 16: ``while_reading`` (onboarding's digest of the choices) overlaps the round trip instead of adding
    to it: it is called once, after every read of the wave was started and before any step is evaluated."""
    import threading

    client = healthy_client()
    released = threading.Event()
    real_get = client.get

    def get(path, **kwargs):
        assert released.wait(5), "a read finished before the caller's work ran"
        return real_get(path, **kwargs)

    client.get = get
    seen = []

    def while_reading():
        seen.append((len(client.calls), [k for k, _ in progress]))
        released.set()

    progress: list[tuple[str, int]] = []
    outcomes = run_steps(
        client,
        CHOSEN,
        connection=SITE,
        on_progress=lambda key, done: progress.append((key, done)),
        while_reading=while_reading,
    )
    assert _statuses(outcomes) == dict.fromkeys(READINESS_KEYS, "pass")
    assert len(seen) == 1
    assert seen[0][1] == []  # before any step was evaluated
