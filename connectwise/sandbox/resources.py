"""The record collections the sandbox serves (docs/connectwise/REFERENCE.md §2), in one table: references,
rules, security.

What a record may hold (fields, types, enums, maximum lengths, required fields) and which fields ``conditions``
may name come from the contract (``connectwise.contract``, the SPEC transcribed); this table adds what the SPEC
does not say: which security function guards a path, natural keys, create defaults, reference name copying.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from connectwise import contract

# docs/connectwise/REFERENCE.md §2 and §3: the enums the checks read.
AGREEMENT_STATUSES = ("Active", "Cancelled", "Expired", "Inactive")
INVOICING_CYCLES = ("ContractYear", "CalendarYear")
BILLING_OPTIONS = (
    "Monthly",
    "Quarterly",
    "Yearly",
    "SemiAnnual",
    "BiMonthly",
    "BiWeekly",
    "Weekly",
    "NotRecurring",
)
LEVELS = ("All", "My", "None")
LEVEL_FIELDS = ("addLevel", "editLevel", "deleteLevel", "inquireLevel")

# Module functions -- the display names are what docs/connectwise/REFERENCE.md §2 says to match on.
COMPANY_MAINTENANCE = ("Companies", "Company Maintenance")
CONTACTS = ("Companies", "Contacts")
AGREEMENTS = ("Finance", "Agreements")
PRODUCT_CATALOG = ("Procurement", "Product Catalog")
PRODUCTS = ("Procurement", "Products")
TABLE_SETUP = ("System", "Table Setup")
SECURITY_ROLES = ("System", "Security Roles")

# What mySecurity lists besides the role's own rows (all None unless the role says otherwise). A real role has
# many more functions; these are enough to make "every other level is None" a real comparison.
KNOWN_MODULE_FUNCTIONS: tuple[tuple[str, str], ...] = (
    ("Companies", "Company Maintenance"),
    ("Companies", "Contacts"),
    ("Companies", "Configurations"),
    ("Companies", "Notes"),
    ("Finance", "Agreements"),
    ("Finance", "Billing View Time"),
    ("Finance", "Invoicing"),
    ("Finance", "Agreement Sales"),
    ("Procurement", "Product Catalog"),
    ("Procurement", "Products"),
    ("Procurement", "Purchasing"),
    ("Project", "Project Headers"),
    ("Sales", "Opportunities"),
    ("Service Desk", "Service Tickets"),
    ("System", "Table Setup"),
    ("System", "Members"),
    ("System", "Security Roles"),
    ("System", "My Company"),
    ("Time & Expense", "Time Entry"),
)

# SPEC 2025.8 MySecurityCustomizeItem.customizeIdentifier values (docs/connectwise/REFERENCE.md §2). Scenario files
# may still say "TableSetup" / "Agreements" (the sandbox's spelling before 2026-11-30): the loader rewrites them.
TABLE_SETUP_CUSTOMIZE = "SystemTableSetup"
AGREEMENTS_CUSTOMIZE = "FinanceAgreements"
LEGACY_CUSTOMIZE_IDENTIFIERS = {
    "tablesetup": TABLE_SETUP_CUSTOMIZE,
    "agreements": AGREEMENTS_CUSTOMIZE,
}


@dataclass(frozen=True)
class Ref:
    """A reference field: ``{"id": N, <copied fields>}`` pointing into another collection."""

    target: str
    copy: tuple[str, ...] = ("name",)


@dataclass(frozen=True)
class ResourceSpec:
    path: str
    resource: str  # lower-case singular, as ConnectWise names it in error bodies ("resource": "agreement")
    guard: tuple[str, str]  # module function whose levels guard the path (PRODUCT.md)
    refs: dict[str, Ref] = field(default_factory=dict)
    required: tuple[str, ...] = ()  # on create/PUT; "type/id" means a reference
    unique: tuple[str, ...] = ()  # natural key: a duplicate is 400 ObjectExists
    enums: dict[str, tuple[str, ...]] = field(default_factory=dict)
    defaults: dict = field(default_factory=dict)  # filled on create when absent
    customize_item: str | None = None  # Table Setup "Access Allowed" item also needed
    scenario_required: tuple[str, ...] = ()  # what every scenario record must carry besides "id"
    aliases: tuple[str, ...] = ()  # other spellings of the path (the SPEC's trailing slash)

    @property
    def label(self) -> str:
        return self.resource[:1].upper() + self.resource[1:]

    @property
    def schema(self) -> str:
        """The SPEC component schema of the records (``Agreement``): connectwise/contract."""
        return contract.resource(self.path).schema

    @property
    def fields(self) -> tuple[str, ...]:
        """Every field a record may carry, as the SPEC schema lists them (connectwise/contract)."""
        return contract.top_level_fields(self.schema)


RESOURCES: dict[str, ResourceSpec] = {
    spec.path: spec
    for spec in (
        ResourceSpec(
            "company/companies",
            "company",
            COMPANY_MAINTENANCE,
            refs={
                "status": Ref("company/companies/statuses"),
                "defaultContact": Ref("company/contacts"),
                "billToCompany": Ref("company/companies", ("identifier", "name")),
            },
            required=("identifier", "name"),
            unique=("identifier",),
            defaults={"deletedFlag": False, "types": [], "leadFlag": False},
            scenario_required=("identifier", "name"),
        ),
        ResourceSpec(
            "company/companies/statuses",
            "status",
            COMPANY_MAINTENANCE,
            required=("name",),
            unique=("name",),
            defaults={"defaultFlag": False, "inactiveFlag": False, "disallowSavingFlag": False},
            customize_item="Company / Company Status",
            scenario_required=("name",),
        ),
        ResourceSpec(
            "company/contacts",
            "contact",
            CONTACTS,
            refs={"company": Ref("company/companies", ("identifier", "name"))},
            required=("firstName",),
            defaults={"inactiveFlag": False},
            scenario_required=("firstName",),
        ),
        ResourceSpec(
            "finance/agreements",
            "agreement",
            AGREEMENTS,
            refs={
                "type": Ref("finance/agreements/types"),
                "company": Ref("company/companies", ("identifier", "name")),
                "contact": Ref("company/contacts"),
                "parentAgreement": Ref("finance/agreements"),
                "billingCycle": Ref("finance/billingCycles"),
                "billToCompany": Ref("company/companies", ("identifier", "name")),
            },
            required=("name", "type/id", "company/id", "contact/id"),
            # Not confirmed that ConnectWise refuses a second agreement of the same name for a company; the sandbox
            # does, so "create if missing" repairs can be tested for idempotency (PRODUCT.md "Repairs").
            unique=("company/id", "name"),
            enums={"agreementStatus": AGREEMENT_STATUSES, "invoicingCycle": INVOICING_CYCLES},
            defaults={
                "agreementStatus": "Active",
                "cancelledFlag": False,
                "noEndingDateFlag": True,
                "invoicingCycle": "ContractYear",
                "prorateFlag": False,
                "billOneTimeFlag": False,
                "oneTimeFlag": False,
                "restrictLocationFlag": False,
                "restrictDepartmentFlag": False,
                "taxable": False,
            },
            scenario_required=("name", "type/id", "company/id"),
        ),
        ResourceSpec(
            "finance/agreements/types",
            "type",
            AGREEMENTS,
            refs={"billingCycle": Ref("finance/billingCycles")},
            required=("name",),
            unique=("name",),
            enums={"invoicingCycle": INVOICING_CYCLES},
            defaults={"inactiveFlag": False, "defaultFlag": False},
            scenario_required=("name",),
        ),
        ResourceSpec(
            "finance/billingCycles",
            "billingCycle",
            AGREEMENTS,
            required=("identifier", "name", "billingOptions"),
            unique=("name",),
            enums={"billingOptions": BILLING_OPTIONS},
            scenario_required=("name", "billingOptions"),
        ),
        ResourceSpec(
            "procurement/catalog",
            "product",
            PRODUCT_CATALOG,
            refs={
                "subcategory": Ref("procurement/subcategories"),
                "category": Ref("procurement/categories"),
                "type": Ref("procurement/types"),
                "unitOfMeasure": Ref("procurement/unitOfMeasures"),
            },
            required=("identifier", "description", "subcategory/id", "type/id", "customerDescription"),
            unique=("identifier",),
            defaults={"inactiveFlag": False, "productClass": "NonInventory", "price": 0, "cost": 0},
            scenario_required=("identifier",),
        ),
        ResourceSpec(
            "procurement/categories",
            "category",
            TABLE_SETUP,
            required=("name",),
            unique=("name",),
            defaults={"inactiveFlag": False},
            customize_item="Products / Category",
            scenario_required=("name",),
        ),
        ResourceSpec(
            "procurement/subcategories",
            "subcategory",
            TABLE_SETUP,
            refs={"category": Ref("procurement/categories")},
            required=("name", "category/id"),
            unique=("category/id", "name"),
            defaults={"inactiveFlag": False},
            customize_item="Products / Subcategories",
            scenario_required=("name", "category/id"),
            aliases=("procurement/subcategories/",),
        ),
        ResourceSpec(
            "procurement/types",
            "type",
            TABLE_SETUP,
            required=("name",),
            unique=("name",),
            defaults={"inactiveFlag": False},
            customize_item="Product Type",
            scenario_required=("name",),
        ),
        ResourceSpec(
            "procurement/unitOfMeasures",
            "unitOfMeasure",
            TABLE_SETUP,
            required=("name",),
            unique=("name",),
            defaults={"inactiveFlag": False},
            customize_item="Product / UOM",
            scenario_required=("name",),
        ),
    )
}

# The flat record tables. The nested resource finance/agreements/{parentId}/additions (served by sandbox.additions)
# is added to RESOURCES below, after RECORD_PATHS: it has no flat route.
RECORD_PATHS: tuple[str, ...] = tuple(RESOURCES)

ADDITIONS_PATH = "finance/agreements/additions"
BILL_CUSTOMER = ("Billable", "DoNotBill", "NoCharge")  # SPEC components.schemas.Addition.billCustomer

# SPEC 2025.8 components.schemas.Addition (connectwise/contract: the fields, types and enums): required product and
# billCustomer.
ADDITIONS = ResourceSpec(
    ADDITIONS_PATH,
    "addition",
    AGREEMENTS,
    refs={"product": Ref("procurement/catalog", ("identifier",))},  # IvItemReference: id, identifier
    required=("product/id", "billCustomer"),
    enums={"billCustomer": BILL_CUSTOMER, "agreementStatus": AGREEMENT_STATUSES},
    defaults={"quantity": 1, "lessIncluded": 0, "taxableFlag": False, "agreementStatus": "Active"},
    scenario_required=("product/id", "agreementId"),
)
RESOURCES[ADDITIONS_PATH] = ADDITIONS  # the scenario loader, the store and describe() read RESOURCES


def get_path(record: dict, path: str):
    """``record["type"]["id"]`` for ``"type/id"``; None when any step is missing."""
    value = record
    for part in path.split("/"):
        if not isinstance(value, dict):
            return None
        value = value.get(part)
    return value


def norm_text(text: str | None) -> str:
    """Case, surrounding and doubled spaces, and the spacing around "/" do not matter for display names."""
    return "/".join(" ".join(part.split()) for part in (text or "").casefold().split("/"))


def norm_identifier(text: str | None) -> str:
    """ "TableSetup" == "Table Setup" == "table_setup" (customize identifiers are not confirmed, docs/connectwise/REFERENCE.md §2)."""
    return "".join(ch for ch in (text or "").casefold() if ch.isalnum())
