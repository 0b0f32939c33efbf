"""What each wizard step checks and why, in plain words, with the ConnectWise click path to do it by hand.

The click paths follow the billing sync vendor's ConnectWise setup guide (docs/connectwise/REFERENCE.md §8), in our own words.
"""

from __future__ import annotations

STEP_TEXT: dict[str, dict[str, str | list[str]]] = {
    "connection": {
        "lead": "Connect this tool to your ConnectWise PSA with an API member's keys.",
        "why": (
            "The billing sync writes seat counts into your agreements through ConnectWise's REST API. It signs in "
            "as an API member with a public and a private key; nothing else about your ConnectWise is needed."
        ),
        "checks": [
            "Your site is a ConnectWise cloud host (or an on-premise host our support team approved).",
            "Your company ID is known to that site.",
            "The keys sign in (an authenticated call to /system/info).",
        ],
        "manual": [
            "System > Members > tab API Members > + : create the member (e.g. 'billingsync') and Save.",
            "Open the member > tab API Keys > + > enter a description > Save (not Save and Close).",
            "Copy the public and the private key now: ConnectWise shows the private key only once.",
        ],
    },
    "security_role": {
        "lead": "Give the API member a least-privilege security role.",
        "why": (
            "The sync needs to read companies and write agreement additions, products and setup tables. A role "
            "with too little access makes monthly syncs fail; a role with too much is a needless risk."
        ),
        "checks": [
            "Companies > Company Maintenance: Inquire All.",
            "Finance > Agreements: Add, Edit, Inquire All, and the agreement types you bill under allowed.",
            "Procurement > Product Catalog and Products: Add, Edit, Inquire All.",
            "System > Table Setup: Add, Edit, Inquire All, with the product and company tables allowed.",
            "Everything else: None.",
        ],
        "manual": [
            "System > Security Roles > open the API member's role.",
            "Set each module function's Add / Edit / Delete / Inquire level as listed; leave the rest at None.",
            "Click 'customize' next to Agreements and Table Setup and allow the listed items.",
        ],
    },
    "catalog": {
        "lead": "Keep an active 'misc' product in the catalog.",
        "why": "The sync adds seat lines to agreements with a catalog product whose ID starts with 'misc'.",
        "checks": ["Every product whose ID starts with 'misc' is active, and at least one exists."],
        "manual": [
            "Procurement > Product Catalog > filter Product ID on 'misc' with Status All.",
            "Open each product > ACTIVATE.",
        ],
    },
    "setup_tables": {
        "lead": "Make sure the Miscellaneous category, subcategory, product type and the unit 'Each' exist.",
        "why": "A misc product needs a category, subcategory and product type, and seat lines are counted in 'Each'.",
        "checks": [
            "Category 'Miscellaneous' exists and is active.",
            "Subcategory 'Miscellaneous' exists under that category and is active.",
            "Product type 'Miscellaneous' exists and is active.",
            "Unit of measure 'Each' exists and is active.",
        ],
        "manual": [
            "System > Setup Tables > search 'Category' (then 'Subcategory', 'Product Type', 'UOM').",
            "Open the table > open 'Miscellaneous' (or 'Each') > untick Inactive > Save.",
            "Create missing ones in the order category, subcategory, product type.",
        ],
    },
    "customers": {
        "lead": "Choose the ConnectWise companies the sync bills.",
        "why": (
            "Each customer on the billing side must map to one active ConnectWise company with an active "
            "agreement, or its seats have nowhere to go."
        ),
        "checks": [
            "At least one company is chosen.",
            "Each chosen company still exists, is active and has an active agreement.",
            "No other company has the same name (after ignoring case, punctuation and Ltd/Inc/LLC).",
            "Every imported billing customer has a company.",
        ],
        "manual": [
            "Companies > Companies > the company > tab Agreements: the target agreement exists and is Active."
        ],
    },
    "agreements": {
        "lead": "Map each customer to its billing motion and agreement.",
        "why": (
            "Monthly and Azure Plan seats are prorated into a monthly calendar-year agreement; annual seats need "
            "a one-time billing cycle. A wrong setting bills customers the wrong amount."
        ),
        "checks": [
            "Monthly and Azure Plan: billing cycle Monthly, Cycle Based On Calendar Year, Prorate Agreement ticked.",
            "Annual: a separate agreement with a one-time billing cycle.",
            "The agreement is active, not a child agreement, and its type is allowed for the API member.",
        ],
        "manual": [
            "Companies > Companies > the company > tab Agreements > open the agreement.",
            "Set Billing Cycle to Monthly, Cycle Based On to Calendar Year, tick Prorate Agreement, Save.",
            "For annual seats: create an agreement whose billing cycle under Recurring Invoice Parameters is One-Time.",
        ],
    },
    "existing_billing": {
        "lead": "Make sure no customer is billed twice when the sync starts.",
        "why": (
            "If your agreements already bill these seats (additions typed by hand, or written by another "
            "distributor's tool), the sync's own additions bill them a second time. End the old additions at a "
            "cutover date and the sync takes over the next day. This check reads every chosen agreement's "
            "additions (one call each), so it runs when you ask, after you change customers or mappings, and "
            "at most weekly on schedule. It is advisory: its result never counts against readiness (it waits "
            "for customers to be chosen before it can check)."
        ),
        "checks": [
            "No active seat addition (a misc product) on a customer's target agreement bills after the cutover.",
            "The same customer does not bill such seats on another active agreement.",
        ],
        "manual": [
            "Companies > Companies > the company > tab Agreements > open the agreement > tab Additions.",
            "Open each old seat addition > set Cancelled Date to the cutover date > Save.",
        ],
    },
}
