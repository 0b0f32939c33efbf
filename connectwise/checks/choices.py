"""What a run is asked to check: the partner's choices (``TenantChoices``) and the connection it goes through.

Plain data with no ConnectWise calls; ``onboarding.cw.choices_for`` fills it from a tenant. The motion vocabulary
(``MOTIONS`` and their ConnectWise-facing labels) is written here once.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date
from typing import NamedTuple

# The billing motions of a chosen company, and how the product names them to a partner (PRODUCT.md).
MOTION_LABELS = {"monthly": "Seat Based Monthly", "azure": "Azure Plan", "annual": "Seat Based Annual"}
MOTIONS = tuple(MOTION_LABELS)


class ChosenCompany(NamedTuple):
    """A company the partner chose to sync: its ConnectWise id, billing motion (one of ``MOTIONS``) and, when
    the partner picked one, the target agreement id. A named tuple: a large tenant has thousands, built on every
    run (a frozen dataclass took four times as long to build)."""

    cw_company_id: int
    motion: str = "monthly"  # "monthly", "azure" or "annual"
    agreement_id: int | None = None  # the partner's explicit target; None = choose automatically


@dataclass(frozen=True)
class TenantChoices:
    """Everything a check needs to know of the partner's choices (stored on ``onboarding.models.Tenant``)."""

    # A list, or a sequence that reads them when first used (``onboarding.cw.ChosenCompanies``).
    companies: Sequence[ChosenCompany] = field(default_factory=list)
    billing_customers: list[str] = field(default_factory=list)  # imported names without an explicit match
    cutover: date | None = (
        None  # last day existing additions bill before the sync takes over (existing_billing)
    )
    # motion -> defaults for the agreements the product creates (connectwise.checks.agreement_defaults)
    agreement_defaults: dict = field(default_factory=dict)


@dataclass(frozen=True)
class ConnectionInfo:
    """The site the partner entered and the API host the run calls (or why the host guard refused it)."""

    site_entered: str  # what the partner typed
    api_host: str  # the host we call (after rewriting a browser host)
    host_refused_reason: str | None = None  # set when the host guard refused it: no call is made
    company_id: str = ""  # for messages only
