"""Issue 13 item 1: the agreements page and the agreements check use one candidate rule. On every shipped scenario,
the candidates the page shows (``agreements.directory_candidates`` over the customers step's stored directory rows)
are exactly the ones the check picks from (``agreement_targets.candidates_for``), for every company and every motion."""

from __future__ import annotations

import uuid
from pathlib import Path

import pytest

from connectwise.checks import agreement_facts, agreement_targets, agreements
from connectwise.checks.choices import MOTIONS, ChosenCompany, ConnectionInfo, TenantChoices
from connectwise.checks.context import RunContext
from connectwise.checks.runner import run_steps
from connectwise.client import ConnectWiseClient, Credentials
from connectwise.sandbox import SandboxApp, load_scenario, sandbox_transport

SCENARIOS = sorted(
    (Path(__file__).resolve().parents[3] / "connectwise" / "sandbox" / "scenarios").glob("*.json")
)
SITE = ConnectionInfo("api-na.myconnectwise.net", "api-na.myconnectwise.net")


@pytest.mark.parametrize("path", SCENARIOS, ids=lambda p: p.stem)
def test_the_page_and_the_check_offer_the_same_candidates(path):
    scenario = load_scenario(path)
    member = scenario.api_members[0]
    creds = Credentials(
        origin="http://sandbox.test",
        company_id=scenario.company["id"],
        public_key=member["publicKey"],
        private_key=member["privateKey"],
        client_id=str(uuid.uuid4()),
    )
    app = SandboxApp([scenario], enable_faults=False)
    with ConnectWiseClient(creds, transport=sandbox_transport(app), sleep=lambda s: None) as client:
        (customers,) = [
            o
            for o in run_steps(client, TenantChoices(), steps=["customers"], connection=SITE)
            if o.key == "customers"
        ]
        directory = customers.facts["directory"]
        ctx = RunContext(client, TenantChoices([ChosenCompany(row["id"]) for row in directory]))
        ctx.prefetch(set(agreements.needs(ctx.choices)))
        by_company = agreement_facts.agreements_by_company(ctx)
        compared = 0
        for row in directory:
            for motion in MOTIONS:
                page = agreements.directory_candidates(row["agreements"], motion)
                check = agreement_targets.candidates_for(by_company.get(row["id"], []), motion, ctx)
                assert page is not None, f"{path.stem}: company {row['id']} stored without fits"
                assert sorted(a["id"] for a in page) == sorted(a["id"] for a in check), (
                    f"{path.stem}: company {row['id']} ({row['name']}), motion {motion}"
                )
                compared += bool(check)
    assert compared or not any(row["agreements"] for row in directory)
