"""The large healthy tenant generator and its command line."""

from __future__ import annotations

import json

from connectwise.sandbox import generate_scenario, load_scenario, parse_scenario
from connectwise.sandbox.generate import main


def test_it_generates_the_requested_sizes_and_a_valid_scenario():
    data = generate_scenario(companies=50, agreements=120, company_id="bigco", seed=3)
    scenario = parse_scenario(data)
    assert len(scenario.records["company/companies"]) == 50
    assert len(scenario.records["finance/agreements"]) == 120
    assert scenario.api_members[0]["publicKey"] == "bigcopub"
    assert generate_scenario(companies=50, agreements=120, seed=3) == generate_scenario(
        companies=50, agreements=120, seed=3
    )


def test_every_company_gets_an_agreement_before_any_gets_a_second():
    data = generate_scenario(companies=10, agreements=15)
    companies = [a["company"]["id"] for a in data["records"]["finance/agreements"]]
    assert companies[:10] == list(range(1, 11))
    types_of_company_1 = [
        a["type"]["name"] for a in data["records"]["finance/agreements"] if a["company"]["id"] == 1
    ]
    assert types_of_company_1 == ["O365", "Azure Plan"]


def test_the_cli_writes_a_loadable_file(tmp_path):
    out = tmp_path / "big.json"
    assert main(["--companies", "20", "--agreements", "30", "-o", str(out)]) == 0
    assert load_scenario(out).id == "bigco"
    assert len(json.loads(out.read_text())["records"]["finance/agreements"]) == 30
