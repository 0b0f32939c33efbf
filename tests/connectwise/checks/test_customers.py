from __future__ import annotations

from datetime import UTC, datetime

from connectwise.checks import codes
from connectwise.checks.base import Severity, Status
from connectwise.checks.context import ReadHints, RunContext
from connectwise.checks.customers import prospect_like
from connectwise.checks.registry import step_module
from connectwise.checks.runner import ChosenCompany, TenantChoices, evaluate

from .fakes import agreement, codes_of, company, healthy_client, healthy_records, run_check

BOTH = TenantChoices([ChosenCompany(2), ChosenCompany(3)])


def test_it_passes_for_active_companies_with_active_agreements():
    outcome = run_check("customers", healthy_client(), BOTH)
    assert outcome.status == Status.PASS
    row = next(r for r in outcome.facts["directory"] if r["id"] == 2)
    assert row["name"] == "Contoso Ltd" and row["active_agreements"] == 1 and not row["inactive"]
    assert row["agreements"][0]["id"] == 10


def test_it_fails_when_nothing_is_chosen():
    outcome = run_check("customers", healthy_client())
    assert codes_of(outcome) == [codes.CUSTOMERS_NONE_SELECTED]
    assert outcome.status == Status.FAIL


def test_it_flags_deleted_and_vanished_companies():
    records = healthy_records()
    records["company/companies"][0]["deletedFlag"] = True
    outcome = run_check(
        "customers", healthy_client(records=records), TenantChoices([ChosenCompany(2), ChosenCompany(99)])
    )
    assert codes_of(outcome) == [codes.CUSTOMERS_COMPANY_MISSING, codes.CUSTOMERS_COMPANY_MISSING]
    assert outcome.findings[0].data["deleted"] is True
    assert outcome.findings[1].subject == "Company id 99"
    assert all(r["id"] != 2 for r in outcome.facts["directory"])


def test_it_flags_inactive_statuses_and_only_warns_about_prospect_like_names():
    records = healthy_records()
    records["company/companies"] = [
        company(2, "Contoso", status_id=2, status="Inactive"),
        company(3, "Fabrikam", 3, "Prospect"),
    ]
    outcome = run_check("customers", healthy_client(records=records), BOTH)
    # Issue 17: the status's inactiveFlag decides; "Prospect" flagged active is a warning, never an error.
    assert codes_of(outcome) == [codes.CUSTOMERS_COMPANY_INACTIVE, codes.CUSTOMERS_STATUS_NAME_SUSPECT]
    assert outcome.findings[1].severity == Severity.WARNING
    assert "inactive status" in outcome.findings[0].explanation
    assert "not a customer yet" in outcome.findings[1].explanation
    assert outcome.status == Status.FAIL


def test_a_status_flagged_active_is_active_whatever_its_name_says():
    # Issue 17 case 3: "Active - Lead Tech Assigned" contains "lead", but inactiveFlag is false.
    records = healthy_records()
    records["company/companies/statuses"].append(
        {"id": 7, "name": "Active - Lead Tech Assigned", "inactiveFlag": False}
    )
    records["company/companies"] = [
        company(2, "Contoso", 7, "Active - Lead Tech Assigned"),
        company(3, "Fabrikam"),
    ]
    outcome = run_check("customers", healthy_client(records=records), BOTH)
    assert outcome.status == Status.PASS and codes_of(outcome) == []
    assert outcome.facts["directory"][0]["inactive"] is False


def test_flags_decide_even_when_the_name_sounds_active():
    # The same kind, the other way round: a status named "Customer" with Disallow Saving ticked, one named
    # "Current" flagged inactive: both are company_inactive errors whatever the name says.
    records = healthy_records()
    records["company/companies/statuses"] += [
        {"id": 8, "name": "Customer", "inactiveFlag": False, "disallowSavingFlag": True},
        {"id": 9, "name": "Current", "inactiveFlag": True},
    ]
    records["company/companies"] = [
        company(2, "Contoso", 8, "Customer"),
        company(3, "Fabrikam", 9, "Current"),
    ]
    outcome = run_check("customers", healthy_client(records=records), BOTH)
    assert codes_of(outcome) == [codes.CUSTOMERS_COMPANY_INACTIVE] * 2
    assert "Disallow Saving" in outcome.findings[0].explanation
    assert '"Current" (id 9) is an inactive status' in outcome.findings[1].explanation


def test_the_prospect_list_matches_words_not_fragments():
    assert prospect_like("Not Approved")
    assert prospect_like("Lead - web")
    assert not prospect_like("Leadership Account")
    assert not prospect_like("Active")


def test_it_flags_a_company_without_an_active_agreement():
    records = healthy_records()
    records["finance/agreements"][0]["agreementStatus"] = "Cancelled"
    records["finance/agreements"].append(agreement(30, 2, endDate="2020-01-01T00:00:00Z"))
    outcome = run_check("customers", healthy_client(records=records), BOTH)
    assert codes_of(outcome) == [codes.CUSTOMERS_NO_ACTIVE_AGREEMENT]
    assert outcome.findings[0].record == {"path": "company/companies", "id": 2}


def test_it_warns_about_a_duplicate_normalised_name():
    records = healthy_records()
    records["company/companies"].append(company(4, "CONTOSO LIMITED"))
    outcome = run_check("customers", healthy_client(records=records), BOTH)
    assert outcome.status == Status.WARN
    assert codes_of(outcome) == [codes.CUSTOMERS_DUPLICATE_NAME]
    assert outcome.findings[0].data["duplicates"] == [4]


def test_it_warns_about_imported_billing_customers_without_a_company():
    choices = TenantChoices([ChosenCompany(2)], billing_customers=["Contoso Limited", "Tailspin Toys"])
    outcome = run_check("customers", healthy_client(), choices)
    assert codes_of(outcome) == [codes.CUSTOMERS_UNMATCHED]
    assert outcome.findings[0].subject == 'Billing customer "Tailspin Toys"'


def test_it_reads_companies_and_agreements_once_however_many_are_chosen():
    records = healthy_records()
    records["company/companies"] = [company(i, f"Customer {i}") for i in range(1, 2501)]
    records["finance/agreements"] = [agreement(10_000 + i, i) for i in range(1, 2501)]
    client = healthy_client(records=records)
    choices = TenantChoices([ChosenCompany(i) for i in range(1, 2501)])
    outcome = run_check("customers", client, choices)
    assert outcome.status == Status.PASS
    assert client.calls_to("GET", "company/companies") == 3  # 2500 records: three pages of 1000
    assert client.calls_to("GET", "finance/agreements") == 3
    assert len(client.calls) <= 3 + 3 + 1 + 3 + 1  # pages + statuses + counts + billing cycles (issue 17)


def _security_with(module, function, **levels):
    from .fakes import healthy_security, security_row

    rows = [r for r in healthy_security() if (r["moduleName"], r["moduleFunctionName"]) != (module, function)]
    return rows + [security_row(module, function, **levels)]


def test_a_missing_company_names_an_inquire_level_my_as_the_likely_cause():
    # Issue 11 item 5: with Inquire "My" ConnectWise answers only the member's own companies; "deleted or merged"
    # would send the partner the wrong way.
    security = _security_with("Companies", "Company Maintenance", inquire="My")
    outcome = run_check(
        "customers",
        healthy_client(my_security=security),
        TenantChoices([ChosenCompany(2), ChosenCompany(99)]),
    )
    missing = [f for f in outcome.findings if f.code == codes.CUSTOMERS_COMPANY_MISSING]
    assert [f.record["id"] for f in missing] == [99]
    assert 'Inquire level is "My"' in missing[0].explanation
    assert "Companies > Company Maintenance" in missing[0].explanation
    assert missing[0].data["likely_cause"] == "inquire_level_my"


def test_a_missing_company_without_my_does_not_blame_the_role():
    outcome = run_check("customers", healthy_client(), TenantChoices([ChosenCompany(99)]))
    assert '"My"' not in outcome.findings[0].explanation
    assert "likely_cause" not in outcome.findings[0].data


def test_no_active_agreement_names_an_agreements_inquire_level_my():
    records = healthy_records()
    records["finance/agreements"] = [a for a in records["finance/agreements"] if a["company"]["id"] != 2]
    security = _security_with("Finance", "Agreements", add="All", edit="All", inquire="My")
    outcome = run_check(
        "customers", healthy_client(records=records, my_security=security), TenantChoices([ChosenCompany(2)])
    )
    finding = next(f for f in outcome.findings if f.code == codes.CUSTOMERS_NO_ACTIVE_AGREEMENT)
    assert 'Inquire level is "My"' in finding.explanation and "Finance > Agreements" in finding.explanation


# The company list is built only when it would come out different (issue 16) -----------------------------------


def _customers(records, *, now, known=""):
    """The customers step at ``now``, told that the tenant holds the list of source key ``known``."""
    ctx = RunContext(healthy_client(records=records), BOTH, now=now, hints=ReadHints(directory_source=known))
    ctx.prefetch(step_module("customers").needs(BOTH))
    return evaluate("customers", ctx)


def test_the_company_list_is_not_built_again_from_the_same_data_and_dates():
    now = datetime(2026, 11, 30, 9, 0, tzinfo=UTC)
    first = _customers(healthy_records(), now=now)
    assert len(first.facts["directory"]) == 2 and len(first.facts["directory_source"]) == 32
    again = _customers(healthy_records(), now=now.replace(hour=17), known=first.facts["directory_source"])
    assert "directory" not in again.facts
    assert again.facts["directory_source"] == first.facts["directory_source"]
    assert again.status == first.status and again.findings == first.findings


def test_changed_data_builds_the_company_list_again():
    now = datetime(2026, 11, 30, 9, 0, tzinfo=UTC)
    known = _customers(healthy_records(), now=now).facts["directory_source"]
    records = healthy_records()
    records["company/companies"][1]["name"] = "Fabrikam Renamed"
    changed = _customers(records, now=now, known=known)
    assert [r["name"] for r in changed.facts["directory"]] == ["Contoso Ltd", "Fabrikam Renamed"]
    records = healthy_records()
    records["finance/billingCycles"] = [
        dict(c, billingOptions="OneTime") for c in records["finance/billingCycles"]
    ]
    assert "directory" in _customers(records, now=now, known=known).facts


def test_an_agreement_date_passing_builds_the_company_list_again():
    records = healthy_records()
    records["finance/agreements"][0]["startDate"] = "2026-12-01T00:00:00Z"
    before = _customers(records, now=datetime(2026, 11, 30, 9, 0, tzinfo=UTC))
    row = before.facts["directory"][0]["agreements"][0]
    assert row["pending"] is True and row["active"] is False
    known = before.facts["directory_source"]
    # Later the same day, nothing passed: the same list. At the start date and after it: built again.
    assert (
        "directory"
        not in _customers(records, now=datetime(2026, 11, 30, 23, 0, tzinfo=UTC), known=known).facts
    )
    for now in (datetime(2026, 12, 1, 0, 0, tzinfo=UTC), datetime(2026, 12, 2, tzinfo=UTC)):
        after = _customers(records, now=now, known=known)
        row = after.facts["directory"][0]["agreements"][0]
        assert row["active"] is True and row["pending"] is False and row["fits"]
