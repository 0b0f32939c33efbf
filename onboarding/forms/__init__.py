"""Forms; every name is importable from ``onboarding.forms``. Every form renders through crispy-forms (Bootstrap 5);
errors in plain language next to the field."""

from __future__ import annotations

from .connection import (
    CSV_MAX_BYTES,
    CSV_MAX_ROWS,
    NAME_MAX_LENGTH,
    ONPREM,
    REGION_LABELS,
    SANDBOX,
    AcceptInvitationForm,
    AgreementDefaultsForm,
    ConnectionForm,
    CsvProblem,
    CustomerCsvForm,
    InviteForm,
    ReplaceKeyForm,
    SignupForm,
    csv_problem,
    decode_csv_bytes,
    parse_customer_names,
    region_choices,
)

__all__ = [
    "CSV_MAX_BYTES",
    "CSV_MAX_ROWS",
    "NAME_MAX_LENGTH",
    "ONPREM",
    "REGION_LABELS",
    "SANDBOX",
    "AcceptInvitationForm",
    "AgreementDefaultsForm",
    "ConnectionForm",
    "CsvProblem",
    "CustomerCsvForm",
    "InviteForm",
    "ReplaceKeyForm",
    "SignupForm",
    "csv_problem",
    "decode_csv_bytes",
    "parse_customer_names",
    "region_choices",
]
