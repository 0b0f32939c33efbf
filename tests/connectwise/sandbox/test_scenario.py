"""Scenario files: the PRODUCT.md format, validation errors that name the JSON path of the first problem."""

from __future__ import annotations

import copy
import json

import pytest

from connectwise.sandbox import ScenarioError, load_scenario, parse_scenario

# The example of PRODUCT.md, verbatim except for the keys.
PRODUCT_EXAMPLE = {
    "company": {
        "id": "acme",
        "name": "Acme MSP",
        "codebase": "v4_6_release/",
        "versionCode": "v2025.8",
        "isCloud": True,
    },
    "apiMembers": [
        {
            "identifier": "billingsync",
            "publicKey": "p",
            "privateKey": "k",
            "securityRole": "Billing Sync",
            "inactiveFlag": False,
        }
    ],
    "securityRoles": [
        {
            "name": "Billing Sync",
            "settings": [
                {
                    "moduleName": "Finance",
                    "moduleFunctionName": "Agreements",
                    "addLevel": "All",
                    "editLevel": "All",
                    "deleteLevel": "None",
                    "inquireLevel": "All",
                }
            ],
            "customizeItems": [
                {"customizeIdentifier": "TableSetup", "itemIdentifier": "Products / Category"},
                {"customizeIdentifier": "Agreements", "itemIdentifier": "O365"},
            ],
        }
    ],
    "records": {
        "company/companies": [
            {
                "id": 2,
                "identifier": "Contoso",
                "name": "Contoso Ltd",
                "status": {"id": 1, "name": "Active"},
                "deletedFlag": False,
            }
        ],
        "finance/agreements": [
            {
                "id": 10,
                "name": "O365",
                "type": {"id": 3, "name": "O365"},
                "company": {"id": 2, "identifier": "Contoso", "name": "Contoso Ltd"},
                "agreementStatus": "Active",
                "billingCycle": {"id": 1, "name": "Monthly"},
                "invoicingCycle": "CalendarYear",
                "prorateFlag": True,
            }
        ],
        "finance/billingCycles": [
            {"id": 1, "identifier": "M", "name": "Monthly", "billingOptions": "Monthly"}
        ],
    },
    "faults": {"latencyMs": 0, "seed": 1, "rates": {"429": 0.0, "500": 0.0, "503": 0.0, "reset": 0.0}},
}


def test_the_product_md_example_loads():
    scenario = parse_scenario(PRODUCT_EXAMPLE)
    assert scenario.id == "acme" and scenario.codebase == "v4_6_release/"
    assert scenario.records["finance/agreements"][0]["billingCycle"] == {"id": 1, "name": "Monthly"}
    assert scenario.faults["rates"]["429"] == 0.0


def test_parse_does_not_mutate_its_input():
    data = copy.deepcopy(PRODUCT_EXAMPLE)
    parse_scenario(data)
    assert data == PRODUCT_EXAMPLE


def _error(mutate) -> str:
    data = copy.deepcopy(PRODUCT_EXAMPLE)
    mutate(data)
    with pytest.raises(ScenarioError) as info:
        parse_scenario(data)
    return str(info.value)


def test_a_missing_reference_id_names_its_path():
    def mutate(d):
        rows = d["records"]["finance/agreements"]
        rows += [dict(copy.deepcopy(rows[0]), id=11 + i) for i in range(3)]
        del rows[3]["company"]["id"]

    assert _error(mutate) == '$.records["finance/agreements"][3].company.id: required'


@pytest.mark.parametrize(
    ("mutate", "expected"),
    [
        (lambda d: d.pop("company"), "$.company: required"),
        (lambda d: d["company"].pop("name"), "$.company.name: required"),
        (lambda d: d["company"].update(codebase="v4_6_release"), "$.company.codebase:"),
        (lambda d: d.update(extra=1), "$.extra: unknown key"),
        (
            lambda d: d["records"].update({"finance/agreement": []}),
            '$.records["finance/agreement"]: unknown API path',
        ),
        (
            lambda d: d["records"]["company/companies"][0].pop("id"),
            '$.records["company/companies"][0].id: required',
        ),
        (
            lambda d: d["records"]["company/companies"].append(dict(d["records"]["company/companies"][0])),
            '$.records["company/companies"][1].id: duplicate id 2',
        ),
        (
            lambda d: d["records"]["finance/agreements"][0].update(agreementStatus="Open"),
            '$.records["finance/agreements"][0].agreementStatus: must be one of Active, Cancelled, Expired, Inactive',
        ),
        (
            lambda d: d["records"]["finance/agreements"][0].update(invoicingCycle="Calendar"),
            '$.records["finance/agreements"][0].invoicingCycle: must be one of',
        ),
        (
            lambda d: d["records"]["finance/billingCycles"][0].update(billingOptions="Monthlyish"),
            '$.records["finance/billingCycles"][0].billingOptions: must be one of',
        ),
        (
            lambda d: d["records"]["finance/agreements"][0]["billingCycle"].update(id=9),
            '$.records["finance/agreements"][0].billingCycle.id: no record with id 9',
        ),
        (
            lambda d: d["securityRoles"][0]["settings"][0].update(addLevel="Some"),
            "$.securityRoles[0].settings[0].addLevel: must be one of All, My, None",
        ),
        (
            lambda d: d["apiMembers"][0].update(securityRole="Admin"),
            "$.apiMembers[0].securityRole: no security role",
        ),
        (lambda d: d["apiMembers"][0].pop("privateKey"), "$.apiMembers[0].privateKey: required"),
        (lambda d: d["faults"]["rates"].update({"429": 1.5}), '$.faults.rates["429"]: must be between 0'),
        (lambda d: d["faults"]["rates"].update({"429": 0.6, "500": 0.6}), "$.faults.rates: the rates add up"),
        (lambda d: d["faults"].update(latency=5), "$.faults.latency: unknown key"),
    ],
)
def test_validation_names_the_json_path_of_the_first_problem(mutate, expected):
    assert _error(mutate).startswith(expected)


def test_load_scenario_names_the_file(tmp_path):
    path = tmp_path / "s.json"
    path.write_text(json.dumps({"company": {"id": "x"}}))
    with pytest.raises(ScenarioError) as info:
        load_scenario(path)
    assert str(info.value) == f"{path}: $.company.name: required"
    assert info.value.path == "$.company.name"


def test_load_scenario_refuses_bad_json(tmp_path):
    path = tmp_path / "s.json"
    path.write_text("{")
    with pytest.raises(ScenarioError, match="not valid JSON"):
        load_scenario(path)


def test_extensions_are_optional_and_kept():
    data = copy.deepcopy(PRODUCT_EXAMPLE)
    data["company"]["mySecurityReadable"] = False
    data["faults"]["slowBodyMs"] = 200
    data["_comment"] = "anything starting with _ is ignored"
    scenario = parse_scenario(data)
    assert scenario.company["mySecurityReadable"] is False
    assert scenario.faults["slowBodyMs"] == 200


# -- issue 11: records the real API could not return are refused (connectwise/contract) -------------------------


def _with_records(path: str, rows: list[dict]) -> dict:
    data = copy.deepcopy(PRODUCT_EXAMPLE)
    data["records"][path] = rows
    return data


@pytest.mark.parametrize(
    "path, row, expected",
    [
        # SPEC BillingCycle.identifier: maximum length 5
        (
            "finance/billingCycles",
            {"id": 1, "identifier": "Monthly", "name": "Monthly", "billingOptions": "Monthly"},
            '$.records["finance/billingCycles"][0].identifier: is 7 characters long; the API allows at most 5',
        ),
        # SPEC BillingCycle has neither inactiveFlag nor dateStart
        (
            "finance/billingCycles",
            {
                "id": 1,
                "identifier": "M",
                "name": "Monthly",
                "billingOptions": "Monthly",
                "inactiveFlag": False,
            },
            '$.records["finance/billingCycles"][0].inactiveFlag: unknown field',
        ),
        # SPEC AgreementType.required includes employeeCompRate, billTime, ...
        (
            "finance/agreements/types",
            {"id": 3, "name": "O365", "invoicingCycle": "CalendarYear"},
            '$.records["finance/agreements/types"][0].billExpenses: required',
        ),
        # SPEC Category spells it integrationXref
        (
            "procurement/categories",
            {"id": 1, "name": "Miscellaneous", "integrationXRef": "x"},
            '$.records["procurement/categories"][0].integrationXRef: unknown field',
        ),
        # a wrong JSON type: a bare id where the SPEC has a reference object
        (
            "company/companies",
            {"id": 2, "identifier": "Contoso", "name": "Contoso Ltd", "status": 1},
            '$.records["company/companies"][0].status: must be a CompanyStatusReference, not a number',
        ),
        (
            "company/companies/statuses",
            {"id": 1, "name": "Active", "inactiveFlag": "no"},
            '$.records["company/companies/statuses"][0].inactiveFlag: must be a Boolean, not a string',
        ),
    ],
)
def test_a_record_the_api_could_not_return_is_refused_with_its_path(path, row, expected):
    with pytest.raises(ScenarioError) as exc:
        parse_scenario(_with_records(path, [row]))
    assert str(exc.value).startswith(expected), str(exc.value)


def test_older_customize_identifier_spellings_load_as_the_specs_values():
    data = copy.deepcopy(PRODUCT_EXAMPLE)
    data["securityRoles"][0]["customizeItems"] = [
        {"customizeIdentifier": "TableSetup", "itemIdentifier": "Products / Category"},
        {"customizeIdentifier": "Table Setup", "itemIdentifier": "Product"},
        {"customizeIdentifier": "Agreements", "itemIdentifier": "O365"},
        {"customizeIdentifier": "FinanceAgreements", "itemIdentifier": "Azure Plan"},
    ]
    role = parse_scenario(data).security_roles[0]
    assert [i["customizeIdentifier"] for i in role["customizeItems"]] == [
        "SystemTableSetup",
        "SystemTableSetup",
        "FinanceAgreements",
        "FinanceAgreements",
    ]


def test_an_unknown_customize_identifier_is_refused():
    data = copy.deepcopy(PRODUCT_EXAMPLE)
    data["securityRoles"][0]["customizeItems"] = [
        {"customizeIdentifier": "Tables", "itemIdentifier": "Product"}
    ]
    with pytest.raises(ScenarioError) as exc:
        parse_scenario(data)
    assert str(exc.value).startswith(
        "$.securityRoles[0].customizeItems[0].customizeIdentifier: must be one of"
    )
