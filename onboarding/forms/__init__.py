"""Forms, one module per page that uses them; every name stays importable from ``onboarding.forms``. Every form
renders through crispy-forms (Bootstrap 5); errors in plain language next to the field.

- ``connection``: the connection step (site, company ID, API keys; replacing the private key)
- ``accounts``: sign-up, inviting a teammate, an invited teammate's account
- ``customer_csv``: the billing customer list upload and the CSV reading shared with other imports
- ``agreements``: the agreement defaults per billing motion
"""

from __future__ import annotations

from .accounts import AcceptInvitationForm, InviteForm, SignupForm
from .agreements import AgreementDefaultsForm
from .connection import ONPREM, REGION_LABELS, SANDBOX, ConnectionForm, ReplaceKeyForm, region_choices
from .customer_csv import (
    CSV_MAX_BYTES,
    CSV_MAX_ROWS,
    NAME_MAX_LENGTH,
    CsvProblem,
    CustomerCsvForm,
    csv_problem,
    decode_csv_bytes,
    parse_customer_names,
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
