from __future__ import annotations

from connectwise.checks import codes
from connectwise.checks.base import Severity, Status
from connectwise.checks.runner import ChosenCompany, TenantChoices
from connectwise.checks.security_role import REQUIRED_LEVELS
from connectwise.errors import Forbidden, NotFound

from .fakes import (
    agreement,
    codes_of,
    healthy_client,
    healthy_customize_items,
    healthy_records,
    healthy_security,
    run_check,
    security_row,
)


def _with_row(module, function, **levels):
    rows = [r for r in healthy_security() if (r["moduleName"], r["moduleFunctionName"]) != (module, function)]
    return rows + [security_row(module, function, **levels)]


def test_it_passes_with_exactly_the_required_matrix():
    outcome = run_check("security_role", healthy_client())
    assert outcome.status == Status.PASS, outcome.findings
    assert outcome.facts["write_levels_verified"] is True


def test_the_matrix_is_the_one_in_the_reference():
    assert REQUIRED_LEVELS[("Finance", "Agreements")] == {
        "addLevel": "All",
        "editLevel": "All",
        "inquireLevel": "All",
    }
    assert REQUIRED_LEVELS[("Companies", "Company Maintenance")] == {"inquireLevel": "All"}
    assert len(REQUIRED_LEVELS) == 5


def test_it_flags_each_insufficient_level_separately():
    security = _with_row("Finance", "Agreements", add="None", edit="My", inquire="All")
    outcome = run_check("security_role", healthy_client(my_security=security))
    assert outcome.status == Status.FAIL
    subjects = sorted(f.subject for f in outcome.findings if f.code == codes.ROLE_INSUFFICIENT_LEVEL)
    assert subjects == [
        "Finance > Agreements: Add is None, needs All",
        "Finance > Agreements: Edit is My, needs All",
    ]
    fix = outcome.findings[0].fix
    assert "System > Security Roles" in fix and "Finance" in fix
    assert not any(f.repairable for f in outcome.findings)


def test_it_treats_a_missing_function_row_as_none():
    security = [r for r in healthy_security() if r["moduleFunctionName"] != "Products"]
    outcome = run_check("security_role", healthy_client(my_security=security))
    assert sorted(f.data["level"] for f in outcome.findings) == ["add", "edit", "inquire"]


def test_it_warns_about_permissions_the_sync_does_not_need():
    security = _with_row("Companies", "Contacts", inquire="All", edit="My")
    security = [
        r if r["moduleFunctionName"] != "Agreements" else {**r, "deleteLevel": "All"} for r in security
    ]
    outcome = run_check("security_role", healthy_client(my_security=security))
    assert outcome.status == Status.WARN
    excess = {f.subject for f in outcome.findings}
    assert excess == {"Companies > Contacts: Edit My, Inquire All", "Finance > Agreements: Delete All"}
    assert all(
        f.code == codes.ROLE_EXCESS_PERMISSION and f.severity == Severity.WARNING for f in outcome.findings
    )


def test_it_flags_a_missing_table_setup_customize_item():
    items = [i for i in healthy_customize_items() if i["itemIdentifier"] != "Product / UOM"]
    outcome = run_check("security_role", healthy_client(customize_items=items))
    assert codes_of(outcome) == [codes.ROLE_MISSING_CUSTOMIZE_ITEM]
    assert '"Product / UOM"' in outcome.findings[0].subject
    assert 'the "customize" link next to Table Setup' in outcome.findings[0].fix


def test_it_matches_customize_items_ignoring_case_and_spacing():
    items = [
        {**i, "itemIdentifier": i["itemIdentifier"].upper().replace(" / ", "/")}
        for i in healthy_customize_items()
    ]
    items = [
        {**i, "customizeIdentifier": "Table Setup"} if i["customizeIdentifier"] == "TableSetup" else i
        for i in items
    ]
    assert run_check("security_role", healthy_client(customize_items=items)).status == Status.PASS


def test_it_requires_the_agreement_types_of_the_chosen_targets():
    records = healthy_records()
    records["finance/agreements"].append(agreement(20, 3, name="Azure", type_id=7, type_name="Azure Plan"))
    records["finance/agreements"] = [a for a in records["finance/agreements"] if a["id"] != 11]
    choices = TenantChoices([ChosenCompany(2), ChosenCompany(3, "azure")])
    outcome = run_check("security_role", healthy_client(records=records), choices)
    assert codes_of(outcome) == [codes.ROLE_MISSING_CUSTOMIZE_ITEM]
    assert outcome.findings[0].data == {
        "customize": "Agreements",
        "item": "Azure Plan",
        "hidden_for_companies": [],
    }
    assert outcome.facts["agreement_types_needed"] == ["Azure Plan", "O365"]


def test_it_requires_at_least_one_agreement_type_when_nothing_is_chosen():
    items = [i for i in healthy_customize_items() if i["customizeIdentifier"] != "Agreements"]
    outcome = run_check("security_role", healthy_client(customize_items=items))
    assert codes_of(outcome) == [codes.ROLE_MISSING_CUSTOMIZE_ITEM]
    assert outcome.findings[0].data["item"] is None


def test_it_falls_back_to_count_probes_when_my_security_is_unreadable():
    client = healthy_client(failures={"system/mySecurity": Forbidden("403", status=403)})
    outcome = run_check("security_role", client)
    assert outcome.status == Status.WARN
    assert codes.ROLE_UNREADABLE in codes_of(outcome)
    assert "could not be verified" in outcome.findings[0].explanation
    assert outcome.facts["write_levels_verified"] is False
    probes = [p for m, p in client.calls if p.endswith("/count")]
    assert sorted(probes) == [
        "company/companies/count",
        "finance/agreements/count",
        "procurement/catalog/count",
        "procurement/categories/count",
    ]


def test_a_probe_refused_is_an_insufficient_inquire_level():
    client = healthy_client(
        failures={"system/mySecurity": NotFound("404", status=404)}, forbidden=("finance/agreements",)
    )
    outcome = run_check("security_role", client)
    assert outcome.status == Status.FAIL
    found = [f for f in outcome.findings if f.code == codes.ROLE_INSUFFICIENT_LEVEL]
    assert [f.subject for f in found] == ["Finance > Agreements: Inquire is None, needs All"]
    assert found[0].data["probed"] is True


def test_a_server_error_on_my_security_is_could_not_check():
    from connectwise.errors import ServerError

    client = healthy_client(failures={"system/mySecurity": ServerError("500", status=500)})
    outcome = run_check("security_role", client)
    assert outcome.status == Status.ERROR
    assert codes_of(outcome) == [codes.STEP_CHECK_FAILED]


def _items(table_setup: str, agreements: str) -> list[dict]:
    spelled = {"TableSetup": table_setup, "Agreements": agreements}
    return [
        {**r, "customizeIdentifier": spelled[r["customizeIdentifier"]]} for r in healthy_customize_items()
    ]


def test_it_recognises_the_specs_customize_identifiers():
    # SPEC 2025.8 MySecurityCustomizeItem.customizeIdentifier is an enum: SystemTableSetup, FinanceAgreements, ...
    # (docs/connectwise/REFERENCE.md §2). A correct role spelled that way passes.
    items = _items("SystemTableSetup", "FinanceAgreements")
    outcome = run_check("security_role", healthy_client(customize_items=items))
    assert outcome.status == Status.PASS, [f.subject for f in outcome.findings]


def test_it_still_accepts_the_display_name_spellings():
    for table_setup, agreements in [("Table Setup", "Agreements"), ("TableSetup", "Agreements")]:
        outcome = run_check("security_role", healthy_client(customize_items=_items(table_setup, agreements)))
        assert outcome.status == Status.PASS, (table_setup, [f.subject for f in outcome.findings])


def test_another_customize_list_does_not_count_as_table_setup():
    # SystemReports is a different Access Allowed list: its items must not satisfy Table Setup's.
    items = _items("SystemReports", "FinanceAgreements")
    outcome = run_check("security_role", healthy_client(customize_items=items))
    assert codes_of(outcome).count(codes.ROLE_MISSING_CUSTOMIZE_ITEM) == 6
