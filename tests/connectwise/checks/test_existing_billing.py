"""Step 7, existing_billing: seat additions that would be billed twice, and the cutover repair (in-process sandbox,
the real client, the shipped billing.json scenario)."""

from __future__ import annotations

import copy
import json
import uuid
from datetime import UTC, date, datetime
from pathlib import Path

import pytest

from connectwise.checks import codes, existing_billing
from connectwise.checks.base import Status
from connectwise.checks.plans import apply_operation, plan_step
from connectwise.checks.registry import READINESS_KEYS, STEP_KEYS, get_step
from connectwise.checks.runner import ChosenCompany, ConnectionInfo, TenantChoices, run_steps
from connectwise.client import ConnectWiseClient, Credentials
from connectwise.sandbox import SandboxApp, load_scenario, parse_scenario, sandbox_transport

SCENARIOS = Path(__file__).resolve().parents[3] / "connectwise" / "sandbox" / "scenarios"
SITE = ConnectionInfo("api-na.myconnectwise.net", "api-na.myconnectwise.net")
CHOICES = TenantChoices([ChosenCompany(i) for i in range(1, 7)])
CUTOVER = date(2026, 12, 31)
FLAGGED = {1, 3, 4, 5}  # Contoso, Fabrikam, Northwind on their targets; Tailspin on its Azure Plan agreement


@pytest.fixture
def sandbox():
    return SandboxApp([load_scenario(SCENARIOS / "billing.json")], enable_faults=True)


def client_for(app, company="billco", public="billpub", private="billpriv-0123456789") -> ConnectWiseClient:
    creds = Credentials("http://sandbox.test", company, public, private, str(uuid.uuid4()))
    return ConnectWiseClient(creds, transport=sandbox_transport(app), sleep=lambda s: None)


def run(app, choices=CHOICES):
    with client_for(app) as client:
        (outcome,) = run_steps(client, choices, steps=["existing_billing"], connection=SITE)
        return outcome, client.stats


def flagged(outcome) -> dict[str, set[int]]:
    out: dict[str, set[int]] = {}
    for f in outcome.findings:
        out.setdefault(f.code, set()).update(a["id"] for a in f.data["additions"])
    return out


def test_it_is_the_seventh_step_and_never_decides_readiness():
    assert STEP_KEYS[-1] == "existing_billing" and get_step("existing_billing").advisory
    assert "existing_billing" not in READINESS_KEYS and len(READINESS_KEYS) == 6
    assert set(codes.PRODUCT_CODES["existing_billing"]) <= codes.ALL_CODES


def test_it_names_each_customer_that_already_bills_seats(sandbox):
    outcome, _ = run(sandbox, TenantChoices(CHOICES.companies, cutover=CUTOVER))
    assert outcome.status == Status.WARN
    assert flagged(outcome) == {
        codes.BILLING_EXISTING_ADDITIONS: {1, 3, 4},
        codes.BILLING_ADDITION_ON_OTHER_AGREEMENT: {5},
    }
    by_company = {f.data["company_id"]: f for f in outcome.findings}
    assert set(by_company) == {1, 2, 3, 4}
    assert "Contoso Ltd" in by_company[1].subject and "Tailspin Toys" in by_company[4].subject
    contoso = by_company[1].data["additions"]
    assert contoso == [
        {
            "id": 1,
            "agreement_id": 1,
            "product": "misc-seat",
            "product_id": 1,
            "description": "Microsoft 365 Business Premium",
            "quantity": 25,
            "effective_date": "2025-01-01",
            "cancelled_date": None,
            "cancelled_value": None,
        }
    ]
    assert by_company[4].data["agreement_id"] == 16 and all(f.severity == "warning" for f in outcome.findings)
    assert "25 x" in by_company[1].explanation and "2025-01-01" in by_company[1].explanation


def test_it_costs_one_read_per_active_agreement_of_a_chosen_customer(sandbox):
    _, stats = run(sandbox)
    additions = {k: v for k, v in stats.by_endpoint.items() if "/additions" in k[1]}
    # companies 1-4 have two active agreements each (O365 and Azure Plan), 5 and 6 one: ten reads, one call each
    assert additions == {("GET", "finance/agreements/{id}/additions"): 10}


def test_the_cutover_plan_ends_exactly_the_flagged_additions_once(sandbox):
    choices = TenantChoices(CHOICES.companies, cutover=CUTOVER)
    before = {
        a["id"]: dict(a)
        for a in sandbox.tenant("billco").tables["finance/agreements/additions"].rows.values()
    }
    with client_for(sandbox) as client:
        plan = plan_step(client, choices, "existing_billing")
        assert sorted(int(op.path.rsplit("/", 1)[1]) for op in plan) == sorted(FLAGGED)
        assert {op.method for op in plan} == {"PATCH"}
        assert all(
            op.body == [{"op": "replace", "path": "cancelledDate", "value": "2026-12-31T00:00:00Z"}]
            for op in plan
        )
        fabrikam = next(op for op in plan if op.path.endswith("/3"))
        assert (
            fabrikam.before == {"cancelledDate": "2030-12-31T00:00:00Z"}
            and "2030-12-31 -> 2026-12-31" in fabrikam.description
        )
        assert [apply_operation(client, op).status for op in plan] == ["done"] * 4
        assert [apply_operation(client, op).status for op in plan] == ["already"] * 4
    after = sandbox.tenant("billco").tables["finance/agreements/additions"].rows
    for aid, record in before.items():
        if aid in FLAGGED:
            assert after[aid]["cancelledDate"] == "2026-12-31T00:00:00Z"
        else:
            assert after[aid] == record  # nothing else touched
    outcome, _ = run(sandbox, choices)
    assert outcome.status == Status.PASS and outcome.findings == []


def test_a_plan_can_end_only_the_additions_the_partner_picked(sandbox):
    with client_for(sandbox) as client:
        (outcome,) = run_steps(client, CHOICES, steps=["existing_billing"], connection=SITE)
        from connectwise.checks.context import RunContext

        ops = existing_billing.plan_operations(RunContext(client, CHOICES), outcome, addition_ids={4})
    assert [op.path for op in ops] == ["finance/agreements/3/additions/4"]


def test_the_default_cutover_is_the_end_of_the_current_month():
    assert existing_billing.end_of_month(date(2026, 11, 30)) == date(2026, 11, 30)
    assert existing_billing.end_of_month(date(2028, 2, 3)) == date(2028, 2, 29)
    from connectwise.checks.context import RunContext

    ctx = RunContext(None, TenantChoices(), now=datetime(2026, 12, 15, 23, 0, tzinfo=UTC))
    assert existing_billing.cutover_of(ctx) == date(2026, 12, 31)
    ctx = RunContext(None, TenantChoices(cutover=date(2027, 1, 31)))
    assert existing_billing.cutover_of(ctx) == date(2027, 1, 31)


def test_an_addition_ending_before_the_cutover_is_not_flagged(sandbox):
    # Fabrikam's addition ends 2030-12-31: with a cutover after that it no longer overlaps the sync's seats
    outcome, _ = run(sandbox, TenantChoices(CHOICES.companies, cutover=date(2031, 1, 31)))
    assert 3 not in flagged(outcome).get(codes.BILLING_EXISTING_ADDITIONS, set())


def test_no_customers_chosen_is_waiting_for_customers_not_a_pass(sandbox):
    # A Pass on nothing read as "nothing billed twice" before any customer was chosen (issue 14 item 8).
    outcome, stats = run(sandbox, TenantChoices())
    assert outcome.status == Status.BLOCKED
    assert "waiting for customers" in outcome.summary.lower()
    assert outcome.summary == existing_billing.blocked_reason(TenantChoices())
    assert not any("/additions" in k[1] for k in stats.by_endpoint)


def test_it_is_not_blocked_once_a_customer_is_chosen():
    assert existing_billing.blocked_reason(CHOICES) is None


def test_a_failed_additions_read_is_an_error_naming_the_path(sandbox):
    sandbox.set_faults({"rates": {"500": 1.0}, "paths": ["finance/agreements/3/additions"]})
    outcome, _ = run(sandbox)
    assert outcome.status == Status.ERROR
    assert outcome.findings[0].code == codes.STEP_CHECK_FAILED
    assert "finance/agreements/3/additions" in outcome.findings[0].subject


def test_a_role_that_may_not_read_agreements_makes_it_error_with_the_role_named():
    data = json.loads((SCENARIOS / "billing.json").read_text())
    for row in data["securityRoles"][0]["settings"]:
        if row["moduleFunctionName"] == "Agreements":
            row["inquireLevel"] = "None"
    app = SandboxApp([parse_scenario(data)])
    outcome, _ = run(app)
    assert outcome.status == Status.ERROR and outcome.findings[0].code == codes.STEP_READ_FORBIDDEN
    assert "Finance > Agreements" in outcome.findings[0].explanation


def test_a_full_page_of_additions_is_read_to_the_end():
    data = json.loads((SCENARIOS / "billing.json").read_text())
    template = data["records"]["finance/agreements/additions"][0]
    data["records"]["finance/agreements/additions"] = [
        {**copy.deepcopy(template), "id": i, "agreementId": 1} for i in range(1, 1202)
    ]
    app = SandboxApp([parse_scenario(data)])
    outcome, _ = run(app, TenantChoices([ChosenCompany(1)]))
    assert len(outcome.findings[0].data["additions"]) == 1201
