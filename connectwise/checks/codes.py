"""Finding codes: a public contract (UI, CLI, exports, tests). Add codes freely, never rename one."""

from __future__ import annotations

# Step 1: connection
CONNECTION_HOST_NOT_ALLOWED = "connection.host_not_allowed"
CONNECTION_BROWSER_HOST = "connection.browser_host"
CONNECTION_UNREACHABLE = "connection.unreachable"
CONNECTION_UNKNOWN_COMPANY = "connection.unknown_company"
CONNECTION_AUTH_FAILED = "connection.auth_failed"
# TLS failures, each named (issue 17): the certificate is not trusted (self-signed, unknown authority, or an
# incomplete intermediate chain), has expired (or is not valid yet), is for another host name, or the handshake
# failed for another reason (protocol, cipher).
CONNECTION_TLS_UNTRUSTED = "connection.tls_untrusted"
CONNECTION_TLS_EXPIRED = "connection.tls_expired"
CONNECTION_TLS_NAME_MISMATCH = "connection.tls_name_mismatch"
CONNECTION_TLS_FAILED = "connection.tls_failed"

# Step 2: security_role
ROLE_INSUFFICIENT_LEVEL = "role.insufficient_level"
ROLE_MISSING_CUSTOMIZE_ITEM = "role.missing_customize_item"
ROLE_EXCESS_PERMISSION = "role.excess_permission"
ROLE_UNREADABLE = "role.unreadable"

# Step 3: catalog
CATALOG_MISC_MISSING = "catalog.misc_missing"
CATALOG_MISC_INACTIVE = "catalog.misc_inactive"

# Step 4: setup_tables
TABLES_CATEGORY_MISSING = "tables.category_missing"
TABLES_CATEGORY_INACTIVE = "tables.category_inactive"
TABLES_SUBCATEGORY_MISSING = "tables.subcategory_missing"
TABLES_SUBCATEGORY_INACTIVE = "tables.subcategory_inactive"
TABLES_PRODUCT_TYPE_MISSING = "tables.product_type_missing"
TABLES_PRODUCT_TYPE_INACTIVE = "tables.product_type_inactive"
TABLES_UOM_MISSING = "tables.uom_missing"
TABLES_UOM_INACTIVE = "tables.uom_inactive"

# Step 5: customers
CUSTOMERS_NONE_SELECTED = "customers.none_selected"
CUSTOMERS_COMPANY_MISSING = "customers.company_missing"
CUSTOMERS_COMPANY_INACTIVE = "customers.company_inactive"
CUSTOMERS_NO_ACTIVE_AGREEMENT = "customers.no_active_agreement"
CUSTOMERS_DUPLICATE_NAME = "customers.duplicate_name"
CUSTOMERS_UNMATCHED = "customers.unmatched"
# warning: the status's name sounds like "not a customer" (prospect, lead...) but ConnectWise's flags say active
CUSTOMERS_STATUS_NAME_SUSPECT = "customers.status_name_suspect"

# Step 6: agreements
AGREEMENTS_NOT_MAPPED = "agreements.not_mapped"
AGREEMENTS_AMBIGUOUS = "agreements.ambiguous"
AGREEMENTS_NOT_ACTIVE = "agreements.not_active"
AGREEMENTS_BILLING_CYCLE_NOT_MONTHLY = "agreements.billing_cycle_not_monthly"
AGREEMENTS_INVOICING_CYCLE_NOT_CALENDAR_YEAR = "agreements.invoicing_cycle_not_calendar_year"
AGREEMENTS_PRORATE_OFF = "agreements.prorate_off"
AGREEMENTS_ANNUAL_NOT_ONE_TIME = "agreements.annual_not_one_time"
AGREEMENTS_TYPE_NOT_ALLOWED = "agreements.type_not_allowed"
AGREEMENTS_CHILD_AGREEMENT = "agreements.child_agreement"
AGREEMENTS_MULTIPLE_ACTIVE_SAME_TYPE = "agreements.multiple_active_same_type"
AGREEMENTS_NO_DEFAULT_CONTACT = (
    "agreements.no_default_contact"  # a create needs the company's Default Contact
)
AGREEMENTS_NOT_STARTED = "agreements.not_started"  # start or billing start date still ahead (issue 17)
AGREEMENTS_TYPE_FALLBACK = (
    "agreements.type_fallback"  # warning: auto target of another type than the motion's
)

# Step 7: existing_billing (warning-level)
BILLING_EXISTING_ADDITIONS = "billing.existing_additions"
BILLING_ADDITION_ON_OTHER_AGREEMENT = "billing.addition_on_other_agreement"

# Any step: a read inside the step was refused (403) or failed; the step is `error`.
STEP_READ_FORBIDDEN = "step.read_forbidden"
STEP_CHECK_FAILED = "step.check_failed"

ALL_CODES: frozenset[str] = frozenset(
    value
    for name, value in dict(globals()).items()
    if name.isupper() and isinstance(value, str) and "." in value
)

# The codes PRODUCT.md names, per step: the public contract the broken scenario must exercise.
PRODUCT_CODES: dict[str, tuple[str, ...]] = {
    "connection": (
        CONNECTION_HOST_NOT_ALLOWED,
        CONNECTION_BROWSER_HOST,
        CONNECTION_UNREACHABLE,
        CONNECTION_UNKNOWN_COMPANY,
        CONNECTION_AUTH_FAILED,
    ),
    "security_role": (
        ROLE_INSUFFICIENT_LEVEL,
        ROLE_MISSING_CUSTOMIZE_ITEM,
        ROLE_EXCESS_PERMISSION,
        ROLE_UNREADABLE,
    ),
    "catalog": (CATALOG_MISC_MISSING, CATALOG_MISC_INACTIVE),
    "setup_tables": (
        TABLES_CATEGORY_MISSING,
        TABLES_CATEGORY_INACTIVE,
        TABLES_SUBCATEGORY_MISSING,
        TABLES_SUBCATEGORY_INACTIVE,
        TABLES_PRODUCT_TYPE_MISSING,
        TABLES_PRODUCT_TYPE_INACTIVE,
        TABLES_UOM_MISSING,
        TABLES_UOM_INACTIVE,
    ),
    "customers": (
        CUSTOMERS_NONE_SELECTED,
        CUSTOMERS_COMPANY_MISSING,
        CUSTOMERS_COMPANY_INACTIVE,
        CUSTOMERS_NO_ACTIVE_AGREEMENT,
        CUSTOMERS_DUPLICATE_NAME,
        CUSTOMERS_UNMATCHED,
    ),
    "agreements": (
        AGREEMENTS_NOT_MAPPED,
        AGREEMENTS_AMBIGUOUS,
        AGREEMENTS_NOT_ACTIVE,
        AGREEMENTS_BILLING_CYCLE_NOT_MONTHLY,
        AGREEMENTS_INVOICING_CYCLE_NOT_CALENDAR_YEAR,
        AGREEMENTS_PRORATE_OFF,
        AGREEMENTS_ANNUAL_NOT_ONE_TIME,
        AGREEMENTS_TYPE_NOT_ALLOWED,
        AGREEMENTS_CHILD_AGREEMENT,
        AGREEMENTS_MULTIPLE_ACTIVE_SAME_TYPE,
    ),
    "existing_billing": (BILLING_EXISTING_ADDITIONS, BILLING_ADDITION_ON_OTHER_AGREEMENT),
}
