"""The one table of ConnectWise field labels: the API field names the product writes or reports (plans,
findings, the audit trail) and the label ConnectWise's own screens show for them, so a partner admin reads
"Billing Cycle", never ``billingCycle``.

Sources: docs/connectwise/REFERENCE.md §3 ("Cycle Based On" is ``invoicingCycle``, "Prorate Agreement" is
``prorateFlag``), the SPEC 2025.8 schemas for the field names, and the screen names of Procurement > Product
Catalog, Finance > Agreements and System > Setup Tables (assumption for the screen wording not in REFERENCE).
"""

from __future__ import annotations

FIELD_LABELS: dict[str, str] = {
    # Procurement > Product Catalog (SPEC CatalogItem)
    "identifier": "Product ID",
    "description": "Description",
    "customerDescription": "Customer Description",
    "category": "Category",
    "subcategory": "Subcategory",
    "type": "Type",
    "unitOfMeasure": "Unit of Measure",
    "inactiveFlag": "Inactive",
    # Finance > Agreements (SPEC Agreement)
    "name": "Name",
    "company": "Company",
    "contact": "Contact",
    "billingCycle": "Billing Cycle",
    "invoicingCycle": "Cycle Based On",
    "prorateFlag": "Prorate Agreement",
    "billOneTimeFlag": "Bill One Time",
    "oneTimeFlag": "One Time",
    "startDate": "Start Date",
    "endDate": "End Date",
    "noEndingDateFlag": "No Ending Date",
    "cancelledFlag": "Cancelled",
    "cancelledDate": "Date Cancelled",
    "agreementStatus": "Status",
    "parentAgreement": "Parent Agreement",
    "applicationUnits": "Application Units",
    # values
    "CalendarYear": "Calendar Year",
    "ContractYear": "Contract Year",
}

VALUE_LABELS: dict[object, str] = {True: "Yes", False: "No"}


def field_label(field: str) -> str:
    """The ConnectWise screen label of an API field (a path like ``billingCycle/id`` uses its first part); an
    unknown field is shown spaced out ("someFieldName" -> "Some Field Name") rather than as the raw name."""
    head = (field or "").strip("/").split("/")[0]
    if head in FIELD_LABELS:
        return FIELD_LABELS[head]
    spaced = "".join(f" {c}" if c.isupper() else c for c in head).strip()
    return spaced[:1].upper() + spaced[1:]


def value_label(value: object) -> str | None:
    """How ConnectWise's screens show a scalar the API returns (``True`` -> "Yes", ``CalendarYear`` ->
    "Calendar Year"); None when it is shown as it is."""
    if isinstance(value, bool):
        return VALUE_LABELS[value]
    if isinstance(value, str) and value in ("CalendarYear", "ContractYear"):
        return FIELD_LABELS[value]
    return None
