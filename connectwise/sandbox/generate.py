"""Healthy scenarios of any size, for benchmarks and the shipped ``healthy.json``.

    python -m connectwise.sandbox.generate --companies 5000 --agreements 10000 -o var/bigco.json

``generate_scenario(companies=5000, agreements=10000, company_id="bigco", seed=1)`` returns the scenario dict:
one API member with the least-privilege role of docs/connectwise/REFERENCE.md §2, the misc product and the setup tables all active,
every company Active with a contact, and agreements set up the right way (Monthly, CalendarYear, prorated; one
time for annual customers). Agreements go round-robin over the companies: the first for every company, then the
second, and so on, each company's in the order O365, Azure Plan, Annual (Annual, O365, Azure Plan for every
seventh company, the annual customers). More than three agreements per company repeat a type, which the
``agreements`` step reports as a warning.
"""

from __future__ import annotations

import argparse
import json
import random
import sys
from pathlib import Path
from typing import Any

from .resources import AGREEMENTS_CUSTOMIZE, TABLE_SETUP_CUSTOMIZE

# The least-privilege role the billing sync needs (docs/connectwise/REFERENCE.md §2); every other level is None.
REQUIRED_SETTINGS: tuple[tuple[str, str, dict[str, str]], ...] = (
    ("Companies", "Company Maintenance", {"inquireLevel": "All"}),
    ("Finance", "Agreements", {"addLevel": "All", "editLevel": "All", "inquireLevel": "All"}),
    ("Procurement", "Product Catalog", {"addLevel": "All", "editLevel": "All", "inquireLevel": "All"}),
    ("Procurement", "Products", {"addLevel": "All", "editLevel": "All", "inquireLevel": "All"}),
    ("System", "Table Setup", {"addLevel": "All", "editLevel": "All", "inquireLevel": "All"}),
)
TABLE_SETUP_ITEMS = (
    "Company / Company Status",
    "Products / Category",
    "Products / Subcategories",
    "Product",
    "Product Type",
    "Product / UOM",
)
AGREEMENT_TYPES_ALLOWED = ("O365", "Azure Plan", "Annual")

COMPANY_NAMES = (
    "Contoso Ltd",
    "Fabrikam Inc",
    "Northwind Traders",
    "Tailspin Toys",
    "Wide World Importers",
    "Adventure Works",
    "Litware Inc",
    "Proseware LLC",
    "Woodgrove Bank",
    "Alpine Ski House",
    "Coho Winery",
    "Blue Yonder Airlines",
    "Trey Research",
    "Lucerne Publishing",
    "Margie's Travel",
    "Humongous Insurance",
)
FIRST_NAMES = ("Alex", "Sam", "Jordan", "Taylor", "Morgan", "Casey", "Riley", "Jamie", "Robin", "Drew")
LAST_NAMES = ("Smith", "Nguyen", "Patel", "Garcia", "Brown", "Kim", "Martin", "Lopez", "Wilson", "Singh")
SUFFIXES = ("Ltd", "Inc", "LLC", "Pty Ltd", "GmbH", "Limited")
WORDS = (
    "Blue",
    "Cedar",
    "Harbor",
    "Summit",
    "Pioneer",
    "Granite",
    "Silver",
    "Maple",
    "Atlas",
    "Beacon",
    "Orchard",
)
START = "2024-01-01T00:00:00Z"


def role_settings(overrides: dict[tuple[str, str], dict[str, str]] | None = None) -> list[dict[str, str]]:
    """The required matrix as settings rows; ``overrides`` changes or adds (module, function) rows."""
    rows: dict[tuple[str, str], dict[str, str]] = {}
    for module, function, levels in REQUIRED_SETTINGS:
        rows[(module, function)] = {
            "moduleName": module,
            "moduleFunctionName": function,
            "addLevel": "None",
            "editLevel": "None",
            "deleteLevel": "None",
            "inquireLevel": "None",
            **levels,
        }
    for (module, function), levels in (overrides or {}).items():
        base = rows.get((module, function)) or {
            "moduleName": module,
            "moduleFunctionName": function,
            "addLevel": "None",
            "editLevel": "None",
            "deleteLevel": "None",
            "inquireLevel": "None",
        }
        rows[(module, function)] = {**base, **levels}
    return list(rows.values())


def customize_items(
    table_setup=TABLE_SETUP_ITEMS, agreement_types=AGREEMENT_TYPES_ALLOWED
) -> list[dict[str, str]]:
    return [
        {"customizeIdentifier": TABLE_SETUP_CUSTOMIZE, "itemIdentifier": item} for item in table_setup
    ] + [{"customizeIdentifier": AGREEMENTS_CUSTOMIZE, "itemIdentifier": item} for item in agreement_types]


def reference_tables() -> dict[str, list[dict[str, Any]]]:
    """Statuses, billing cycles, agreement types, catalog and setup tables of a healthy tenant."""
    monthly = {"id": 1, "name": "Monthly"}
    one_time = {"id": 4, "name": "One Time"}
    return {
        "company/companies/statuses": [
            {
                "id": 1,
                "name": "Active",
                "defaultFlag": True,
                "inactiveFlag": False,
                "disallowSavingFlag": False,
            },
            {
                "id": 2,
                "name": "Inactive",
                "defaultFlag": False,
                "inactiveFlag": True,
                "disallowSavingFlag": False,
            },
            {
                "id": 3,
                "name": "Prospect",
                "defaultFlag": False,
                "inactiveFlag": False,
                "disallowSavingFlag": False,
            },
            {
                "id": 4,
                "name": "Not Approved",
                "defaultFlag": False,
                "inactiveFlag": False,
                "disallowSavingFlag": True,
            },
        ],
        "finance/billingCycles": [
            # SPEC BillingCycle.identifier: at most 5 characters
            {"id": 1, "identifier": "M", "name": "Monthly", "billingOptions": "Monthly"},
            {"id": 2, "identifier": "Q", "name": "Quarterly", "billingOptions": "Quarterly"},
            {"id": 3, "identifier": "A", "name": "Annual", "billingOptions": "Yearly"},
            {"id": 4, "identifier": "OT", "name": "One Time", "billingOptions": "NotRecurring"},
        ],
        "finance/agreements/types": [
            _agreement_type(1, "O365", monthly, "CalendarYear", True, False),
            _agreement_type(2, "Azure Plan", monthly, "CalendarYear", True, False),
            _agreement_type(3, "Annual", one_time, "CalendarYear", False, True),
            _agreement_type(4, "Managed Services", monthly, "ContractYear", False, False),
        ],
        "procurement/categories": [
            {"id": 1, "name": "Miscellaneous", "inactiveFlag": False},
            {"id": 2, "name": "Hardware", "inactiveFlag": False},
            {"id": 3, "name": "Software", "inactiveFlag": False},
        ],
        "procurement/subcategories": [
            {
                "id": 1,
                "name": "Miscellaneous",
                "category": {"id": 1, "name": "Miscellaneous"},
                "inactiveFlag": False,
            },
            {"id": 2, "name": "Laptops", "category": {"id": 2, "name": "Hardware"}, "inactiveFlag": False},
            {"id": 3, "name": "Licences", "category": {"id": 3, "name": "Software"}, "inactiveFlag": False},
        ],
        "procurement/types": [
            {"id": 1, "name": "Miscellaneous", "inactiveFlag": False},
            {"id": 2, "name": "Non-Inventory", "inactiveFlag": False},
            {"id": 3, "name": "Service", "inactiveFlag": False},
        ],
        "procurement/unitOfMeasures": [
            {"id": 1, "name": "Each", "inactiveFlag": False},
            {"id": 2, "name": "Hour", "inactiveFlag": False},
            {"id": 3, "name": "Month", "inactiveFlag": False},
        ],
        "procurement/catalog": [
            _product(1, "misc-seat", "Miscellaneous seat", (1, "Miscellaneous"), (1, "Miscellaneous"), False),
            _product(
                2, "O365-E3", "Microsoft 365 E3", (3, "Licences"), (2, "Non-Inventory"), False, category=3
            ),
            _product(
                3, "LAPTOP-14", "14 inch laptop", (2, "Laptops"), (2, "Non-Inventory"), False, category=2
            ),
        ],
    }


def _agreement_type(tid, name, cycle, invoicing, prorate, one_time) -> dict[str, Any]:
    return {
        "id": tid,
        "name": name,
        "defaultFlag": False,
        "inactiveFlag": False,
        "prePaymentFlag": False,
        "billingCycle": dict(cycle),
        "invoicingCycle": invoicing,
        "prorateFlag": prorate,
        "billOneTimeFlag": one_time,
        # required by the SPEC (AgreementType.required); the defaults of ConnectWise's new-type screen (assumption)
        "employeeCompRate": "Actual",
        "employeeCompNotExceed": "Billing",
        "billTime": "Billable",
        "billExpenses": "Billable",
        "billProducts": "Billable",
    }


def _product(
    pid, identifier, description, sub, ptype, inactive, category=1, uom=(1, "Each")
) -> dict[str, Any]:
    category_names = {1: "Miscellaneous", 2: "Hardware", 3: "Software"}
    return {
        "id": pid,
        "identifier": identifier,
        "description": description,
        "customerDescription": description,
        "inactiveFlag": inactive,
        "subcategory": {"id": sub[0], "name": sub[1]},
        "category": {"id": category, "name": category_names.get(category, "Miscellaneous")},
        "type": {"id": ptype[0], "name": ptype[1]},
        "unitOfMeasure": {"id": uom[0], "name": uom[1]},
        "productClass": "NonInventory",
        "price": 0,
        "cost": 0,
    }


def company_record(
    cid: int, name: str, contact_id: int, status=(1, "Active"), deleted=False
) -> dict[str, Any]:
    identifier = "".join(ch for ch in name if ch.isalnum())[:25]
    return {
        "id": cid,
        "identifier": identifier,
        "name": name,
        "status": {"id": status[0], "name": status[1]},
        "types": [{"id": 1, "name": "Client"}],
        "deletedFlag": deleted,
        "defaultContact": {"id": contact_id, "name": _contact_name(contact_id)},
    }


def _contact_name(contact_id: int) -> str:
    return f"{FIRST_NAMES[contact_id % len(FIRST_NAMES)]} {LAST_NAMES[(contact_id // 10) % len(LAST_NAMES)]}"


def contact_record(contact_id: int, company: dict[str, Any]) -> dict[str, Any]:
    first, last = _contact_name(contact_id).split(" ", 1)
    return {
        "id": contact_id,
        "firstName": first,
        "lastName": last,
        "company": {"id": company["id"], "identifier": company["identifier"], "name": company["name"]},
        "inactiveFlag": False,
    }


TYPES = {"O365": 1, "Azure Plan": 2, "Annual": 3, "Managed Services": 4}
CYCLES = {"Monthly": 1, "Quarterly": 2, "Annual": 3, "One Time": 4}


def agreement_record(
    aid: int,
    company: dict[str, Any],
    type_name: str,
    *,
    name: str | None = None,
    status: str = "Active",
    cycle: str | None = None,
    invoicing: str = "CalendarYear",
    prorate: bool = True,
    parent: dict[str, Any] | None = None,
    end_date: str | None = None,
) -> dict[str, Any]:
    cycle = cycle or ("One Time" if type_name == "Annual" else "Monthly")
    record: dict[str, Any] = {
        "id": aid,
        "name": name or f"{company['name']} - {type_name}",
        "type": {"id": TYPES[type_name], "name": type_name},
        "company": {"id": company["id"], "identifier": company["identifier"], "name": company["name"]},
        "contact": dict(company["defaultContact"]),
        "agreementStatus": status,
        "cancelledFlag": status == "Cancelled",
        "startDate": START,
        "noEndingDateFlag": end_date is None,
        "billingCycle": {"id": CYCLES[cycle], "name": cycle},
        "invoicingCycle": invoicing,
        "prorateFlag": prorate,
        "billOneTimeFlag": cycle == "One Time",
        "oneTimeFlag": False,
        "billAmount": 0,
        "taxable": False,
    }
    if end_date:
        record["endDate"] = end_date
    if status == "Cancelled":
        record["dateCancelled"] = "2025-03-31T00:00:00Z"
        record["reasonCancelled"] = "Customer left"
    if parent:
        record["parentAgreement"] = {"id": parent["id"], "name": parent["name"]}
    return record


def base_scenario(company_id: str, name: str, public_key: str, private_key: str) -> dict[str, Any]:
    return {
        "company": {
            "id": company_id,
            "name": name,
            "codebase": "v4_6_release/",
            "versionCode": "v2025.8",
            "isCloud": True,
        },
        "apiMembers": [
            {
                "identifier": "billingsync",
                "publicKey": public_key,
                "privateKey": private_key,
                "securityRole": "Billing Sync",
                "inactiveFlag": False,
            }
        ],
        "securityRoles": [
            {"name": "Billing Sync", "settings": role_settings(), "customizeItems": customize_items()}
        ],
        "records": reference_tables(),
        "faults": {"latencyMs": 0, "seed": 1, "rates": {"429": 0.0, "500": 0.0, "503": 0.0, "reset": 0.0}},
    }


def _company_name(i: int, total: int, rng: random.Random) -> str:
    if total <= len(COMPANY_NAMES):
        return COMPANY_NAMES[i - 1]
    return f"{rng.choice(WORDS)} {rng.choice(WORDS)} {i:05d} {rng.choice(SUFFIXES)}"


def generate_scenario(
    companies: int = 5000,
    agreements: int = 10000,
    company_id: str = "bigco",
    seed: int = 1,
    *,
    name: str | None = None,
    public_key: str | None = None,
    private_key: str | None = None,
) -> dict[str, Any]:
    """A healthy tenant with ``companies`` companies and ``agreements`` agreements (see the module docstring).

    Keys default to ``{company_id}pub`` / ``{company_id}priv-0123456789``.
    """
    if companies < 1 or agreements < 0:
        raise ValueError("companies must be at least 1 and agreements at least 0")
    rng = random.Random(seed)
    scenario = base_scenario(
        company_id,
        name or f"{company_id.capitalize()} MSP",
        public_key or f"{company_id}pub",
        private_key or f"{company_id}priv-0123456789",
    )
    records = scenario["records"]
    company_rows, contact_rows = [], []
    for i in range(1, companies + 1):
        company = company_record(i, _company_name(i, companies, rng), contact_id=i)
        company_rows.append(company)
        contact_rows.append(contact_record(i, company))
    agreement_rows = []
    for k in range(agreements):
        company = company_rows[k % companies]
        slot = k // companies
        annual = company["id"] % 7 == 0
        order = ("Annual", "O365", "Azure Plan") if annual else ("O365", "Azure Plan", "Annual")
        type_name = order[slot % 3]
        suffix = f" {slot // 3 + 1}" if slot >= 3 else ""
        agreement_rows.append(
            agreement_record(k + 1, company, type_name, name=f"{company['name']} - {type_name}{suffix}")
        )
    records["company/companies"] = company_rows
    records["company/contacts"] = contact_rows
    records["finance/agreements"] = agreement_rows
    return scenario


def onboarding_motion(company_id: int) -> str:
    """The billing motion of company ``company_id`` in ``generate_onboarding``: half monthly (even ids), a quarter
    Azure Plan, a quarter annual."""
    if company_id % 2 == 0:
        return "monthly"
    return "azure" if company_id % 4 == 1 else "annual"


# The defaults for new agreements that bring a generated onboarding tenant to ready (issue 18), in the
# ``repair_tenant --defaults`` format.
ONBOARDING_DEFAULTS = {
    "monthly": {"type": "O365", "name": "{company} - Microsoft 365"},
    "azure": {"type": "Azure Plan", "name": "{company} - Azure Plan"},
    "annual": {"type": "Annual", "name": "{company} - Annual seats", "one_time": True},
}


def generate_onboarding(
    companies: int = 200, company_id: str = "onboard", seed: int = 1, **keys: str
) -> dict[str, Any]:
    """A partner onboarding many customers at once (issue 18): everything set up except that no company has an
    agreement yet. Choose every company with ``onboarding_motion`` and set ``ONBOARDING_DEFAULTS``: one approved
    plan then creates one agreement per company and the tenant verifies ready.

    "Managed Services", the one agreement type the role's Access Allowed list lacks, is inactive here: an active
    hidden type could hold a company's agreement we cannot see, and the agreements step then creates nothing
    (issue 17)."""
    scenario = generate_scenario(companies, 0, company_id, seed, **keys)
    for agreement_type in scenario["records"]["finance/agreements/types"]:
        if agreement_type["name"] not in AGREEMENT_TYPES_ALLOWED:
            agreement_type["inactiveFlag"] = True
    return scenario


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Write a healthy ConnectWise sandbox scenario of any size.")
    parser.add_argument("--companies", type=int, default=5000)
    parser.add_argument("--agreements", type=int, default=10000)
    parser.add_argument("--company-id", default="bigco")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("-o", "--output", help="file to write (default: standard output)")
    args = parser.parse_args(argv)
    scenario = generate_scenario(args.companies, args.agreements, args.company_id, args.seed)
    text = json.dumps(scenario, indent=1)
    if args.output:
        Path(args.output).parent.mkdir(parents=True, exist_ok=True)
        Path(args.output).write_text(text + "\n", encoding="utf-8")
        print(
            f"wrote {args.output}: company {args.company_id!r}, {args.companies} companies, "
            f"{args.agreements} agreements",
            file=sys.stderr,
        )
    else:
        sys.stdout.write(text + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
