from __future__ import annotations

from connectwise.checks import codes
from connectwise.checks.base import Status
from connectwise.checks.plans import apply_operation, plan_step
from connectwise.checks.runner import ChosenCompany, TenantChoices

from .fakes import (
    agreement,
    codes_of,
    company,
    healthy_client,
    healthy_customize_items,
    healthy_records,
    run_check,
)

MONTHLY = TenantChoices([ChosenCompany(2)])
ANNUAL = TenantChoices([ChosenCompany(2, "annual")])


def _client(agreements, **kwargs):
    records = healthy_records()
    records["finance/agreements"] = agreements
    return healthy_client(records=records, **kwargs)


def test_it_selects_the_only_candidate_automatically_and_passes():
    outcome = run_check("agreements", healthy_client(), MONTHLY)
    assert outcome.status == Status.PASS
    fact = outcome.facts["companies"][0]
    assert fact["how"] == "auto" and fact["agreement_id"] == 10
    assert "chosen automatically" in fact["note"]


def test_an_explicit_agreement_wins_over_candidates():
    client = _client([agreement(10, 2), agreement(12, 2, name="Azure", type_id=5, type_name="Annual")])
    outcome = run_check("agreements", client, TenantChoices([ChosenCompany(2, "monthly", agreement_id=12)]))
    assert outcome.facts["companies"][0]["how"] == "explicit"
    assert outcome.facts["companies"][0]["agreement_id"] == 12


def test_it_flags_a_company_without_a_candidate():
    outcome = run_check("agreements", _client([agreement(10, 2, cancelledFlag=True)]), MONTHLY)
    assert codes_of(outcome) == [codes.AGREEMENTS_NOT_MAPPED]
    assert not outcome.findings[0].repairable


def test_it_flags_an_explicit_agreement_of_another_company_as_not_mapped():
    outcome = run_check("agreements", healthy_client(), TenantChoices([ChosenCompany(2, agreement_id=11)]))
    assert codes_of(outcome) == [codes.AGREEMENTS_NOT_MAPPED]
    assert "no longer exists or belongs to another company" in outcome.findings[0].explanation


def test_it_refuses_to_guess_between_several_candidates():
    client = _client([agreement(10, 2), agreement(12, 2, name="Other", type_id=5, type_name="Annual")])
    outcome = run_check("agreements", client, MONTHLY)
    assert codes_of(outcome) == [codes.AGREEMENTS_AMBIGUOUS]
    assert outcome.findings[0].data["candidates"] == [10, 12]


def test_child_and_ended_agreements_are_not_candidates():
    client = _client(
        [
            agreement(10, 2),
            agreement(12, 2, name="Child", parentAgreement={"id": 10}),
            agreement(13, 2, name="Old", type_id=5, endDate="2020-12-31T00:00:00Z"),
        ]
    )
    outcome = run_check("agreements", client, MONTHLY)
    assert outcome.status == Status.PASS
    assert outcome.facts["companies"][0]["candidates"] == [10]


def test_it_flags_an_explicit_target_that_is_not_active():
    client = _client([agreement(10, 2, agreementStatus="Expired", endDate="2021-01-31T00:00:00Z")])
    outcome = run_check("agreements", client, TenantChoices([ChosenCompany(2, agreement_id=10)]))
    assert codes_of(outcome) == [codes.AGREEMENTS_NOT_ACTIVE]
    assert outcome.findings[0].data["reasons"] == ["its status is Expired", "it ended on 2021-01-31"]


def test_it_flags_and_repairs_the_monthly_settings():
    client = _client([agreement(10, 2, cycle=2, invoicingCycle="ContractYear", prorateFlag=False)])
    outcome = run_check("agreements", client, MONTHLY)
    assert codes_of(outcome) == [
        codes.AGREEMENTS_BILLING_CYCLE_NOT_MONTHLY,
        codes.AGREEMENTS_INVOICING_CYCLE_NOT_CALENDAR_YEAR,
        codes.AGREEMENTS_PRORATE_OFF,
    ]
    assert all(
        f.repairable and f.record == {"path": "finance/agreements", "id": 10} for f in outcome.findings
    )
    assert 'Billing Cycle to "Monthly" (id 1, recurs Monthly)' in outcome.findings[0].fix

    plan = plan_step(client, MONTHLY, "agreements")
    assert [(op.method, op.path, op.body) for op in plan] == [
        ("PATCH", "finance/agreements/10", [{"op": "replace", "path": "billingCycle", "value": {"id": 1}}]),
        (
            "PATCH",
            "finance/agreements/10",
            [{"op": "replace", "path": "invoicingCycle", "value": "CalendarYear"}],
        ),
        ("PATCH", "finance/agreements/10", [{"op": "replace", "path": "prorateFlag", "value": True}]),
    ]
    assert plan[2].description == 'Set "Prorate Agreement" on agreement "O365" (id 10): off -> on'
    assert (
        plan[1].description
        == 'Set "Cycle Based On" on agreement "O365" (id 10): Contract Year -> Calendar Year'
    )
    assert plan[0].before == {"billingCycle": {"id": 2, "name": "Quarterly"}}
    assert plan[2].before == {"prorateFlag": False}

    assert [apply_operation(client, op, {}).status for op in plan] == ["done"] * 3
    assert [apply_operation(client, op, {}).status for op in plan] == ["already"] * 3
    assert client.calls_to("PATCH", "finance/agreements/10") == 3
    assert run_check("agreements", client, MONTHLY).status == Status.PASS


def test_an_azure_customer_needs_the_same_settings():
    client = _client([agreement(10, 2, prorateFlag=False)])
    outcome = run_check("agreements", client, TenantChoices([ChosenCompany(2, "azure")]))
    # Its only agreement is an O365 one: used, and said so (issue 17: never a silent fallback to another type).
    assert codes_of(outcome) == [codes.AGREEMENTS_TYPE_FALLBACK, codes.AGREEMENTS_PRORATE_OFF]


def test_annual_accepts_a_one_time_billing_cycle_or_flag_and_says_which():
    outcome = run_check("agreements", _client([agreement(10, 2, cycle=4)]), ANNUAL)
    assert outcome.status == Status.PASS
    assert outcome.facts["companies"][0]["one_time_seen"] == ["billingCycle.billingOptions=NotRecurring"]

    outcome = run_check("agreements", _client([agreement(10, 2, cycle=2, billOneTimeFlag=True)]), ANNUAL)
    assert outcome.status == Status.PASS
    assert outcome.facts["companies"][0]["one_time_seen"] == ["billOneTimeFlag=true"]


def test_annual_prefers_the_one_time_agreement():
    client = _client(
        [agreement(10, 2), agreement(12, 2, name="Annual", type_id=5, type_name="Annual", cycle=4)]
    )
    outcome = run_check("agreements", client, ANNUAL)
    assert outcome.facts["companies"][0]["agreement_id"] == 12
    assert outcome.status == Status.PASS  # the two are of different types: no multiple_active_same_type


def test_it_creates_a_one_time_agreement_for_an_annual_customer_without_one():
    client = _client([agreement(10, 2)])
    outcome = run_check("agreements", client, ANNUAL)
    assert codes_of(outcome) == [codes.AGREEMENTS_ANNUAL_NOT_ONE_TIME]
    finding = outcome.findings[0]
    assert finding.repairable and finding.data["seen"] == [] and finding.data["billingOptions"] == "Monthly"

    plan = plan_step(client, ANNUAL, "agreements")
    assert len(plan) == 1
    op = plan[0]
    assert (op.method, op.path) == ("POST", "finance/agreements")
    assert op.body["name"] == "Contoso Ltd Annual seats"
    assert op.body["company"] == {"id": 2} and op.body["contact"] == {"id": 200}
    assert op.body["billingCycle"] == {"id": 4}
    assert op.body["type"] == {"id": 5}  # the active, allowed type named like "annual"
    assert op.lookup == {
        "path": "finance/agreements",
        "conditions": 'company/id = 2 and type/id = 5 and name = "Contoso Ltd Annual seats"',
    }
    assert apply_operation(client, op, {}).status == "done"
    assert apply_operation(client, op, {}).status == "already"
    assert client.calls_to("POST", "finance/agreements") == 1
    outcome = run_check("agreements", client, ANNUAL)
    assert outcome.status == Status.PASS, outcome.findings
    assert outcome.facts["companies"][0]["how"] == "auto"


def test_an_annual_customer_without_a_default_contact_gets_a_finding_saying_how_to_set_it():
    # Issue 18: a new agreement's contact is the company's Default Contact; none is a finding, never a guess.
    records = healthy_records()
    records["finance/agreements"] = []
    records["company/companies"] = [company(2, "Contoso Ltd", defaultContact=None)]
    client = healthy_client(records=records)
    outcome = run_check("agreements", client, ANNUAL)
    assert codes_of(outcome) == [codes.AGREEMENTS_NOT_MAPPED, codes.AGREEMENTS_NO_DEFAULT_CONTACT]
    assert not outcome.findings[0].repairable
    assert "Default Contact" in outcome.findings[1].fix
    assert plan_step(client, ANNUAL, "agreements") == []
    assert client.calls_to("GET", "company/contacts") == 0


def test_it_flags_a_type_the_role_does_not_allow():
    items = [i for i in healthy_customize_items() if i["itemIdentifier"] != "O365"]
    outcome = run_check("agreements", healthy_client(customize_items=items), MONTHLY)
    assert codes_of(outcome) == [codes.AGREEMENTS_TYPE_NOT_ALLOWED]
    assert '"customize" link next to Agreements' in outcome.findings[0].fix


def test_it_skips_the_type_check_with_a_note_when_customize_items_are_unreadable():
    from connectwise.errors import Forbidden

    client = healthy_client(failures={"system/mySecurity/customizeItems": Forbidden("403", status=403)})
    outcome = run_check("agreements", client, MONTHLY)
    assert outcome.status == Status.PASS
    assert "not checked" in outcome.facts["notes"][0]


def test_it_warns_about_a_child_target_and_several_active_agreements_of_one_type():
    client = _client(
        [
            agreement(9, 2, name="Parent", type_id=5, type_name="Annual", cycle=4),
            agreement(10, 2, parentAgreement={"id": 9}),
            agreement(11, 3),
            agreement(12, 3, name="O365 old"),
        ]
    )
    choices = TenantChoices([ChosenCompany(2, agreement_id=10), ChosenCompany(3, agreement_id=11)])
    outcome = run_check("agreements", client, choices)
    assert outcome.status == Status.WARN
    assert sorted(codes_of(outcome)) == [
        codes.AGREEMENTS_CHILD_AGREEMENT,
        codes.AGREEMENTS_MULTIPLE_ACTIVE_SAME_TYPE,
    ]
    same = next(f for f in outcome.findings if f.code == codes.AGREEMENTS_MULTIPLE_ACTIVE_SAME_TYPE)
    assert same.data["agreement_ids"] == [11, 12]


def test_the_cost_does_not_grow_with_the_number_of_companies():
    records = healthy_records()
    records["company/companies"] = [company(i, f"Customer {i}") for i in range(1, 1501)]
    records["finance/agreements"] = [agreement(10_000 + i, i, prorateFlag=False) for i in range(1, 1501)]
    client = healthy_client(records=records)
    choices = TenantChoices([ChosenCompany(i) for i in range(1, 1501)])
    outcome = run_check("agreements", client, choices)
    assert len(outcome.findings) == 1500
    assert client.calls_to("GET", "finance/agreements") == 2
    assert len(client.calls) <= 14
    plan = plan_step(client, choices, "agreements")
    assert len(plan) == 1500


def test_the_type_name_tells_azure_and_monthly_agreements_apart():
    client = _client([agreement(10, 2), agreement(12, 2, name="Azure", type_id=7, type_name="Azure Plan")])
    monthly = run_check("agreements", client, MONTHLY)
    azure = run_check("agreements", client, TenantChoices([ChosenCompany(2, "azure")]))
    assert monthly.facts["companies"][0]["agreement_id"] == 10
    assert azure.facts["companies"][0]["agreement_id"] == 12


def test_a_one_time_agreement_is_no_target_for_monthly_seats():
    outcome = run_check(
        "agreements", _client([agreement(10, 2, type_id=5, type_name="Annual", cycle=4)]), MONTHLY
    )
    assert codes_of(outcome) == [codes.AGREEMENTS_NOT_MAPPED]


def test_not_mapped_names_an_agreements_inquire_level_my_as_the_likely_cause():
    from .fakes import healthy_security, security_row

    security = [r for r in healthy_security() if r["moduleFunctionName"] != "Agreements"]
    security.append(security_row("Finance", "Agreements", add="All", edit="All", inquire="My"))
    outcome = run_check("agreements", _client([], my_security=security), MONTHLY)
    finding = next(f for f in outcome.findings if f.code == codes.AGREEMENTS_NOT_MAPPED)
    assert 'Inquire level is "My"' in finding.explanation
    assert finding.data["likely_cause"] == "inquire_level_my"


# -- issue 17: what real partners' ConnectWise looks like ------------------------------------------------------

NEXT_YEAR = "2099-01-01T00:00:00Z"


def test_an_agreement_that_starts_next_year_is_not_started():
    # Case 1: Active, but its startDate (and billing start) is ahead: the sync would refuse it.
    client = _client([agreement(10, 2, startDate=NEXT_YEAR, billStartDate=NEXT_YEAR)])
    outcome = run_check("agreements", client, MONTHLY)
    assert codes_of(outcome) == [codes.AGREEMENTS_NOT_STARTED]
    finding = outcome.findings[0]
    assert finding.data["billing_starts"] == "2099-01-01"
    assert "it starts on 2099-01-01" in finding.explanation and "Start Date" in finding.fix
    assert outcome.status == Status.FAIL
    customers = run_check("customers", client, MONTHLY)
    assert codes.CUSTOMERS_NO_ACTIVE_AGREEMENT in codes_of(customers)
    assert "has not started" in customers.findings[0].explanation


def test_a_billing_start_ahead_is_not_started_even_when_the_agreement_started():
    # The same kind, another date field: startDate in the past, billStartDate ahead.
    client = _client([agreement(10, 2, startDate="2024-01-01T00:00:00Z", billStartDate=NEXT_YEAR)])
    outcome = run_check("agreements", client, MONTHLY)
    assert codes_of(outcome) == [codes.AGREEMENTS_NOT_STARTED]
    assert outcome.findings[0].data["reasons"] == ["it starts billing on 2099-01-01"]


def test_a_started_agreement_wins_over_one_that_has_not_started():
    client = _client(
        [
            agreement(10, 2, startDate=NEXT_YEAR),
            agreement(12, 2, name="Current", startDate="2024-01-01T00:00:00Z"),
        ]
    )
    outcome = run_check("agreements", client, MONTHLY)
    assert outcome.facts["companies"][0]["agreement_id"] == 12
    assert codes.AGREEMENTS_NOT_STARTED not in codes_of(outcome)


def test_a_cancelled_date_in_the_past_makes_it_not_active():
    # The same kind, the cancelled date: cancelledFlag false but dateCancelled passed.
    target = agreement(10, 2, dateCancelled="2024-06-30T00:00:00Z")
    outcome = run_check("agreements", _client([target]), TenantChoices([ChosenCompany(2, agreement_id=10)]))
    assert codes_of(outcome) == [codes.AGREEMENTS_NOT_ACTIVE]
    assert outcome.findings[0].data["reasons"] == ["it was cancelled on 2024-06-30"]
    future = agreement(10, 2, dateCancelled=NEXT_YEAR)
    assert run_check("agreements", _client([future]), MONTHLY).status == Status.PASS


def _without_one_time_cycle(records):
    records["finance/billingCycles"] = [
        c for c in records["finance/billingCycles"] if c["billingOptions"] != "NotRecurring"
    ]
    return records


def test_the_annual_create_does_not_need_a_not_recurring_billing_cycle():
    # Case 2: a real billing-cycle table has no NotRecurring row; One-Time is the agreement's own setting.
    records = _without_one_time_cycle(healthy_records())
    records["finance/agreements"] = []
    records["finance/agreements/types"][1]["billOneTimeFlag"] = True
    client = healthy_client(records=records)
    outcome = run_check("agreements", client, ANNUAL)
    assert codes_of(outcome) == [codes.AGREEMENTS_NOT_MAPPED]
    assert outcome.findings[0].repairable
    plan = plan_step(client, ANNUAL, "agreements")
    assert len(plan) == 1
    assert plan[0].body["billOneTimeFlag"] is True and "billingCycle" not in plan[0].body
    assert plan[0].body["type"] == {"id": 5}
    assert apply_operation(client, plan[0], {}).status == "done"
    assert run_check("agreements", client, ANNUAL).status == Status.PASS


def test_a_one_time_type_is_chosen_by_its_flag_not_its_name():
    # The same kind (a name-based rule): the one-time type is called "Licences" and flagged billOneTimeFlag; a
    # type called "Annual review" is recurring. The flag wins.
    records = _without_one_time_cycle(healthy_records())
    records["finance/agreements"] = [agreement(10, 2)]
    records["finance/agreements/types"] = [
        {"id": 3, "name": "O365", "inactiveFlag": False},
        {"id": 5, "name": "Annual", "inactiveFlag": False, "billOneTimeFlag": False},
        {"id": 6, "name": "Licences", "inactiveFlag": False, "billOneTimeFlag": True},
    ]
    items = healthy_customize_items() + [{"customizeIdentifier": "Agreements", "itemIdentifier": "Licences"}]
    client = healthy_client(records=records, customize_items=items)
    plan = plan_step(client, ANNUAL, "agreements")
    assert plan[0].body["type"] == {"id": 6}


def test_a_finding_that_could_be_repaired_says_why_it_is_not():
    # Case 2, the silent "0 change(s)": no type may be created (none flagged one-time, none allowed uniquely).
    from connectwise.checks.plans import build_plan_report

    records = _without_one_time_cycle(healthy_records())
    records["finance/agreements"] = []
    client = healthy_client(records=records)
    items = healthy_customize_items() + [{"customizeIdentifier": "Agreements", "itemIdentifier": "Other"}]
    records["finance/agreements/types"].append({"id": 9, "name": "Other", "inactiveFlag": False})
    records["finance/agreements/types"][1]["name"] = "Yearly"  # neither flagged nor named annual
    client = healthy_client(records=records, customize_items=items)
    outcome = run_check("agreements", client, ANNUAL)
    finding = outcome.findings[0]
    assert finding.code == codes.AGREEMENTS_NOT_MAPPED and not finding.repairable
    assert "agreement type" in finding.data["not_repairable"]
    assert f"We can't fix this for you: {finding.data['not_repairable']}." in finding.explanation
    report = build_plan_report(client, ANNUAL, "agreements")
    assert report.operations == []
    assert report.skipped == [
        {
            "code": codes.AGREEMENTS_NOT_MAPPED,
            "subject": finding.subject,
            "reason": finding.data["not_repairable"],
        }
    ]


def test_a_missing_contact_is_a_reason_not_a_silent_skip():
    from connectwise.checks.plans import build_plan_report

    records = healthy_records()
    records["finance/agreements"] = []
    records["company/contacts"] = []
    records["company/companies"] = [company(2, "Contoso Ltd", defaultContact=None)]
    report = build_plan_report(healthy_client(records=records), ANNUAL, "agreements")
    assert report.operations == []
    assert "contact" in report.skipped[0]["reason"]


def test_an_azure_customer_is_not_targeted_to_another_type_when_the_role_hides_azure():
    # Case 4: the role's Access Allowed list lacks "Azure Plan"; ConnectWise hides those agreements, so only the
    # O365 one is visible. It must not become the Azure target silently.
    records = healthy_records()
    records["finance/agreements/types"].append({"id": 7, "name": "Azure Plan", "inactiveFlag": False})
    client = healthy_client(records=records)
    choices = TenantChoices([ChosenCompany(2, "azure")])
    outcome = run_check("agreements", client, choices)
    assert codes_of(outcome) == [codes.AGREEMENTS_NOT_MAPPED]
    assert outcome.facts["companies"][0]["agreement_id"] is None
    assert '"Azure Plan" (id 7)' in outcome.findings[0].explanation
    assert outcome.findings[0].data["hidden_types"] == ["Azure Plan"]
    role = run_check("security_role", client, choices)
    assert codes_of(role) == [codes.ROLE_MISSING_CUSTOMIZE_ITEM]
    assert role.findings[0].data == {
        "customize": "Agreements",
        "item": "Azure Plan",
        "hidden_for_companies": [2],
    }


def test_an_annual_customer_needs_a_hidden_one_time_type():
    # The same kind, another hidden type: a one-time type "Yearly Licences" the role lacks.
    records = healthy_records()
    records["finance/agreements/types"] = [
        {"id": 3, "name": "O365", "inactiveFlag": False},
        {"id": 8, "name": "Yearly Licences", "inactiveFlag": False, "billOneTimeFlag": True},
    ]
    client = healthy_client(records=records)
    outcome = run_check("agreements", client, ANNUAL)
    assert codes_of(outcome) == [codes.AGREEMENTS_NOT_MAPPED]
    role = run_check("security_role", client, ANNUAL)
    assert [f.data["item"] for f in role.findings] == ["Yearly Licences"]


def test_a_look_alike_billing_cycle_is_shown_by_name_id_and_recurrence():
    # Case 6: "Monthly " (trailing space) recurs quarterly.
    records = healthy_records()
    records["finance/billingCycles"].append(
        {"id": 6, "identifier": "M2", "name": "Monthly ", "billingOptions": "Quarterly"}
    )
    records["finance/agreements"][0]["billingCycle"] = {"id": 6, "name": "Monthly "}
    client = healthy_client(records=records)
    outcome = run_check("agreements", client, MONTHLY)
    finding = outcome.findings[0]
    assert finding.code == codes.AGREEMENTS_BILLING_CYCLE_NOT_MONTHLY
    assert '"Monthly " (id 6, recurs Quarterly)' in finding.explanation
    assert 'set Billing Cycle to "Monthly" (id 1, recurs Monthly)' in finding.fix
    plan = plan_step(client, MONTHLY, "agreements")
    assert plan[0].description == (
        'Set "Billing Cycle" on agreement "O365" (id 10): "Monthly " (id 6, recurs Quarterly) -> '
        '"Monthly" (id 1, recurs Monthly)'
    )


def test_a_cycle_named_monthly_that_is_not_in_the_table_is_not_taken_for_monthly():
    # The same kind as case 6 and case 3 (a name deciding): a billing cycle reference named "Monthly" whose id is
    # not in the Billing Cycle table cannot be confirmed monthly; its name does not make it pass.
    client = _client([agreement(10, 2, cycle=99, billingCycle={"id": 99, "name": "Monthly"})])
    outcome = run_check("agreements", client, MONTHLY)
    assert codes_of(outcome) == [codes.AGREEMENTS_BILLING_CYCLE_NOT_MONTHLY]
    assert '"Monthly" (id 99, recurrence unknown)' in outcome.findings[0].explanation
