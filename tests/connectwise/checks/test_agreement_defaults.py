"""Issue 18: defaults per motion, and "create what is missing" from them."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from connectwise.checks import agreement_defaults as defaults
from connectwise.checks import codes
from connectwise.checks.plans import apply_operation, build_combined_report, plan_step
from connectwise.checks.runner import ChosenCompany, TenantChoices

from .fakes import codes_of, healthy_client, healthy_records, run_check

OPTIONS = [
    {"id": 3, "name": "O365", "allowed": True, "one_time": False, "inactive": False},
    {"id": 5, "name": "Annual", "allowed": True, "one_time": True, "inactive": False},
    {"id": 7, "name": "Azure Plan", "allowed": False, "one_time": False, "inactive": False},
    {"id": 8, "name": "Old", "allowed": True, "one_time": False, "inactive": True},
]
O365 = {"type_id": 3, "type_name": "O365", "name": "{company} - Microsoft 365", "start": ""}


def test_it_accepts_types_by_name_or_id_and_fills_the_name_pattern():
    got = defaults.validate(
        {"monthly": {"type": "o365", "name": "{company} - Microsoft 365"}, "annual": {"type": 5}}, OPTIONS
    )
    assert got["monthly"] == O365
    assert got["annual"] == {
        "type_id": 5,
        "type_name": "Annual",
        "name": "{company} - Annual seats",
        "start": "",
        "one_time": True,
    }


@pytest.mark.parametrize(
    ("raw", "reason"),
    [
        ({"monthly": {"type": "Nope"}}, "no agreement type 'Nope'"),
        ({"azure": {"type": "Azure Plan"}}, "Access Allowed"),
        ({"monthly": {"type": 8}}, "inactive"),
        ({"monthly": {"type": "Annual"}}, "bills one time"),
        ({"monthly": {"type": 3, "name": "{customer} seats"}}, "unknown placeholder"),
        ({"monthly": {"type": 3, "name": "x" * 100 + "{company}"}}, "ConnectWise allows 100"),
        ({"monthly": {"type": 3, "start": "01/12/2026"}}, "YYYY-MM-DD"),
        ({"weekly": {"type": 3}}, "unknown motion"),
        ({"monthly": {"type": 3, "colour": "red"}}, "unknown key"),
        ([1, 2], "JSON object"),
    ],
)
def test_it_refuses_bad_defaults_with_the_reason(raw, reason):
    with pytest.raises(defaults.DefaultsError) as caught:
        defaults.validate(raw, OPTIONS)
    assert reason in str(caught.value)


def test_one_bad_motion_refuses_all_of_them():
    with pytest.raises(defaults.DefaultsError) as caught:
        defaults.validate({"monthly": {"type": 3}, "azure": {"type": "Azure Plan"}}, OPTIONS)
    assert caught.value.problems[0].startswith("azure.type")


def test_a_rendered_name_never_exceeds_connectwise_maximum():
    name = defaults.render("{company} - Microsoft 365", company="A" * 150, identifier="")
    assert len(name) == defaults.NAME_MAX
    assert name.endswith(" - Microsoft 365")


def test_the_start_defaults_to_the_first_day_of_the_month():
    now = datetime(2026, 11, 30, 7, 0, tzinfo=UTC)
    assert defaults.start_date({"start": ""}, now) == "2026-11-01T00:00:00Z"
    assert defaults.start_date({"start": "2026-12-01"}, now) == "2026-12-01T00:00:00Z"


def _without_agreements(**extra):
    records = healthy_records()
    records["finance/agreements"] = []
    return healthy_client(records=records, **extra)


def test_without_defaults_a_monthly_customer_without_agreement_says_how_to_get_it_created():
    outcome = run_check("agreements", _without_agreements(), TenantChoices([ChosenCompany(2)]))
    finding = outcome.findings[0]
    assert finding.code == codes.AGREEMENTS_NOT_MAPPED and not finding.repairable
    assert "Defaults for new agreements" in finding.data["not_repairable"]


def test_with_defaults_a_monthly_customer_gets_one_ready_agreement_created_once():
    client = _without_agreements()
    choices = TenantChoices([ChosenCompany(2), ChosenCompany(3)], agreement_defaults={"monthly": O365})
    outcome = run_check("agreements", client, choices)
    assert [f.repairable for f in outcome.findings] == [True, True]
    plan = plan_step(client, choices, "agreements")
    assert len(plan) == 2
    op = plan[0]
    assert op.body == {
        "name": "Contoso Ltd - Microsoft 365",
        "type": {"id": 3},
        "company": {"id": 2},
        "contact": {"id": 200},
        "startDate": op.body["startDate"],
        "billingCycle": {"id": 1},
        "invoicingCycle": "CalendarYear",
        "prorateFlag": True,
    }
    assert op.body["startDate"].endswith("-01T00:00:00Z")
    assert (
        op.lookup["conditions"] == 'company/id = 2 and type/id = 3 and name = "Contoso Ltd - Microsoft 365"'
    )
    for o in plan:
        assert apply_operation(client, o, {}).status == "done"
    assert run_check("agreements", client, choices).findings == []
    # again: nothing to plan, and re-applying the old plan creates nothing
    assert plan_step(client, choices, "agreements") == []
    assert [apply_operation(client, o, {}).status for o in plan] == ["already", "already"]
    assert client.calls_to("POST", "finance/agreements") == 2


def test_a_company_without_default_contact_gets_a_finding_and_no_create():
    records = healthy_records()
    records["finance/agreements"] = []
    records["company/companies"][1]["defaultContact"] = None
    client = healthy_client(records=records)
    choices = TenantChoices([ChosenCompany(2), ChosenCompany(3)], agreement_defaults={"monthly": O365})
    outcome = run_check("agreements", client, choices)
    assert codes.AGREEMENTS_NO_DEFAULT_CONTACT in codes_of(outcome)
    contact = next(f for f in outcome.findings if f.code == codes.AGREEMENTS_NO_DEFAULT_CONTACT)
    assert "Fabrikam" in contact.subject and "Default Contact" in contact.fix
    plan = plan_step(client, choices, "agreements")
    assert [o.body["company"] for o in plan] == [{"id": 2}]


def test_defaults_whose_type_the_role_no_longer_allows_are_not_used():
    client = _without_agreements(
        customize_items=[
            {"customizeIdentifier": "Agreements", "itemIdentifier": "Annual"},
        ]
    )
    choices = TenantChoices([ChosenCompany(2, "azure")], agreement_defaults={"azure": O365})
    finding = run_check("agreements", client, choices).findings[0]
    assert not finding.repairable and "Access Allowed" in finding.data["not_repairable"]


def test_annual_defaults_create_a_one_time_agreement_named_by_the_pattern():
    client = _without_agreements()
    annual = {
        "type_id": 5,
        "type_name": "Annual",
        "name": "{identifier} yearly",
        "start": "",
        "one_time": True,
    }
    choices = TenantChoices([ChosenCompany(2, "annual")], agreement_defaults={"annual": annual})
    (op,) = plan_step(client, choices, "agreements")
    assert op.body["name"] == "Contoso yearly" and op.body["billOneTimeFlag"] is True
    assert op.body["billingCycle"] == {"id": 4} and "invoicingCycle" not in op.body


def test_the_agreement_types_the_form_offers_come_with_the_check():
    outcome = run_check("agreements", healthy_client(), TenantChoices([ChosenCompany(2)]))
    assert {(t["name"], t["allowed"]) for t in outcome.facts["agreement_types"]} == {
        ("O365", True),
        ("Annual", True),
    }


def test_the_combined_plan_orders_steps_and_creates_each_table_record_once():
    records = healthy_records()
    for key in ("procurement/categories", "procurement/subcategories", "procurement/catalog"):
        records[key] = []
    records["finance/agreements"] = []
    client = healthy_client(records=records)
    choices = TenantChoices([ChosenCompany(2)], agreement_defaults={"monthly": O365})
    report = build_combined_report(client, choices)
    assert [(o.step, o.path) for o in report.operations] == [
        ("setup_tables", "procurement/categories"),
        ("setup_tables", "procurement/subcategories"),
        ("catalog", "procurement/catalog"),
        ("agreements", "finance/agreements"),
    ]
    catalog = report.operations[2]
    assert catalog.body["category"] == {"id": {"$ref": "1"}} and catalog.body["subcategory"] == {
        "id": {"$ref": "2"}
    }
    created: dict = {}
    for seq, op in enumerate(report.operations, start=1):
        created[seq] = apply_operation(client, op, created).id
    assert build_combined_report(client, choices).operations == []


def test_the_combined_plan_lists_what_it_cannot_fix_per_step():
    records = healthy_records()
    records["finance/agreements"] = []
    report = build_combined_report(healthy_client(records=records), TenantChoices([ChosenCompany(2)]))
    assert report.operations == []
    assert [(s["step"], s["code"]) for s in report.skipped] == [("agreements", codes.AGREEMENTS_NOT_MAPPED)]


def test_defaults_of_another_motion_are_never_used():
    client = _without_agreements()
    choices = TenantChoices([ChosenCompany(2, "azure")], agreement_defaults={"monthly": O365})
    finding = run_check("agreements", client, choices).findings[0]
    assert not finding.repairable and "Azure Plan" in finding.data["not_repairable"]


def test_existing_billing_joins_the_combined_plan_only_once_a_cutover_is_chosen():
    from datetime import date

    from connectwise.checks.plans import combined_steps

    assert combined_steps(TenantChoices([ChosenCompany(2)])) == ("setup_tables", "catalog", "agreements")
    chosen = TenantChoices([ChosenCompany(2)], cutover=date(2026, 12, 31))
    assert combined_steps(chosen)[-1] == "existing_billing"
    client = healthy_client()
    build_combined_report(client, TenantChoices([ChosenCompany(2)]))
    assert not [p for p in client.calls if "additions" in str(p)]
