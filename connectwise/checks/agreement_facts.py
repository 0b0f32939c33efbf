"""Facts about one agreement, its billing cycle and its type, as the agreements step reads them.

Whether an agreement is active, pending or a child; when its billing starts; what its billing cycle really does
(``billingOptions``, never the cycle's name); whether it or its type bills one time; the per-run indexes of the
agreements by company and the billing cycles by id. Plain functions over the records ConnectWise returns
(SPEC 2025.8 ``Agreement``, ``BillingCycle``, ``AgreementType``; docs/connectwise/REFERENCE.md §2, §3), used by the
agreements step and by the steps that look at the same agreements (customers, existing_billing, the preview).
"""

from __future__ import annotations

from datetime import UTC, datetime
from functools import lru_cache

from .context import RunContext, ref_id, same_name

RECURRING_MOTIONS = ("monthly", "azure")
ANNUAL = "annual"
MONTHLY_OPTION = "Monthly"
ONE_TIME_OPTION = (
    "NotRecurring"  # billingOptions of a "One Time" billing cycle (docs/connectwise/REFERENCE.md §2, §3)
)
CALENDAR_YEAR = "CalendarYear"


def parse_dt(value) -> datetime | None:
    if not value or not isinstance(value, str):
        return None
    return _parse_dt_text(value)


@lru_cache(maxsize=8192)
def _parse_dt_text(value: str) -> datetime | None:
    """Agreements share a handful of start and end dates: parse each text once (benchmark verify)."""
    try:
        dt = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=UTC)
    return dt


def has_ended(agreement: dict, now: datetime) -> bool:
    if agreement.get("noEndingDateFlag"):
        return False
    end = parse_dt(agreement.get("endDate"))
    return end is not None and end < now


# The date fields that decide whether the sync may bill an agreement (SPEC 2025.8 ``components.schemas.Agreement``:
# ``startDate``, ``billStartDate``, ``endDate`` with ``noEndingDateFlag``, ``cancelledFlag`` with ``dateCancelled``).
# Billing syncs refuse an agreement whose billing has not started ("billing not started, no prorate created"; an
# addition dated before the agreement's billing start is invalid: vendor error lists quoted in issue 17), so a
# future start or billing start makes the agreement not yet usable, like the sync would see it.
START_FIELDS: tuple[tuple[str, str], ...] = (("startDate", "starts"), ("billStartDate", "starts billing"))


def not_started_reasons(agreement: dict, now: datetime) -> list[str]:
    """Why the agreement is not usable yet: ``["it starts billing on 2027-01-01"]``; empty when it has started.

    Reads ``startDate`` and ``billStartDate`` (ISO 8601 date-times, SPEC); a missing or unreadable date counts as
    started (ConnectWise requires a start date on create, so missing only happens in partial reads).
    """
    reasons = []
    for name, verb in START_FIELDS:
        start = parse_dt(agreement.get(name))
        if start is not None and start > now:
            reasons.append(f"it {verb} on {str(agreement.get(name))[:10]}")
    return reasons


def first_billing_day(agreement: dict) -> str:
    """The later of ``startDate`` and ``billStartDate`` as YYYY-MM-DD ("" when neither is set)."""
    dates = [parse_dt(agreement.get(name)) for name, _ in START_FIELDS]
    known = [d for d in dates if d is not None]
    return max(known).date().isoformat() if known else ""


def inactive_reasons(agreement: dict, now: datetime) -> list[str]:
    """Why an agreement is not active (empty: it is). A missing status counts as Active.

    Status, ``cancelledFlag``, a ``dateCancelled`` in the past, and an ``endDate`` in the past (unless
    ``noEndingDateFlag``); a start in the future is reported separately by ``not_started_reasons``.
    """
    reasons = []
    status = agreement.get("agreementStatus")
    if status and status != "Active":
        reasons.append(f"its status is {status}")
    if agreement.get("cancelledFlag"):
        reasons.append("it is cancelled")
    else:
        cancelled = parse_dt(agreement.get("dateCancelled"))
        if cancelled is not None and cancelled <= now:
            reasons.append(f"it was cancelled on {str(agreement.get('dateCancelled'))[:10]}")
    if has_ended(agreement, now):
        reasons.append(f"it ended on {str(agreement.get('endDate'))[:10]}")
    return reasons


def is_active(agreement: dict, now: datetime) -> bool:
    """True when the sync may bill the agreement today: active by status, flags and every date field.

    The same verdict as ``not inactive_reasons(...) and not not_started_reasons(...)``, without building the
    reasons: it runs for every agreement of a tenant, several times per run (benchmark verify), and a tenant's
    agreements share a handful of date combinations, so the verdict is cached per combination."""
    get = agreement.get
    if get("agreementStatus") not in _ACTIVE_STATUSES or get("cancelledFlag"):
        return False
    start, bill_start, cancelled, end = (
        get("startDate"),
        get("billStartDate"),
        get("dateCancelled"),
        get("endDate"),
    )
    try:
        # Dates are text or absent: "" and None both mean absent, anything else not text is no date (parse_dt).
        return _dates_active(
            start or None,
            bill_start or None,
            cancelled or None,
            end or None,
            bool(get("noEndingDateFlag")),
            now,
        )
    except TypeError:  # a value that cannot be a cache key (a list, an object): not a date either
        return _dates_active(
            _text(start), _text(bill_start), _text(cancelled), _text(end), bool(get("noEndingDateFlag")), now
        )


_ACTIVE_STATUSES = (None, "", "Active")


def _text(value) -> str | None:
    return value if isinstance(value, str) and value else None


@lru_cache(maxsize=4096)
def _dates_active(
    start: str | None,
    bill_start: str | None,
    cancelled: str | None,
    end: str | None,
    no_end: bool,
    now: datetime,
) -> bool:
    for value in (start, bill_start):
        begins = parse_dt(value)
        if begins is not None and begins > now:
            return False
    ended = parse_dt(cancelled)
    if ended is not None and ended <= now:
        return False
    finish = None if no_end else parse_dt(end)
    return finish is None or finish >= now


def is_pending(agreement: dict, now: datetime, *, active: bool | None = None) -> bool:
    """Active in every respect except that its start or billing start is still ahead. ``active``: what
    ``is_active`` already said of it, when the caller asked."""
    if is_active(agreement, now) if active is None else active:
        return False
    return not inactive_reasons(agreement, now) and bool(not_started_reasons(agreement, now))


def is_child(agreement: dict) -> bool:
    return bool(ref_id(agreement, "parentAgreement") or agreement.get("parentAgreement"))


def agreements_by_company(ctx: RunContext) -> dict[int, list[dict]]:
    def build() -> dict[int, list[dict]]:
        out: dict[int, list[dict]] = {}
        for a in ctx.get("agreements"):
            company = a.get("company")  # ref_id(a, "company"), inline: it runs for every agreement
            key = company.get("id") if company.__class__ is dict else None
            group = out.get(key)
            if group is None:
                out[key] = [a]
            else:
                group.append(a)
        return out

    return ctx.remember("agreements_by_company", build)


def cycles_by_id(ctx: RunContext) -> dict[int, dict]:
    return ctx.remember("billing_cycles_by_id", lambda: {c["id"]: c for c in ctx.get("billing_cycles")})


def billing_option(agreement: dict, cycles: dict[int, dict]) -> str | None:
    cycle = cycles.get(ref_id(agreement, "billingCycle"))
    if cycle is not None:
        return cycle.get("billingOptions")
    return None


def one_time_signals(agreement: dict, cycles: dict[int, dict]) -> list[str]:
    """docs/connectwise/REFERENCE.md §3: not confirmed which field the UI's "One-Time" sets, so any of them counts; we say which."""
    seen = []
    if billing_option(agreement, cycles) == ONE_TIME_OPTION:
        seen.append(f"billingCycle.billingOptions={ONE_TIME_OPTION}")
    if agreement.get("billOneTimeFlag"):
        seen.append("billOneTimeFlag=true")
    if agreement.get("oneTimeFlag"):
        seen.append("oneTimeFlag=true")
    return seen


def is_monthly(agreement: dict, cycles: dict[int, dict]) -> bool:
    """True when the agreement's billing cycle recurs monthly by its ``billingOptions`` (SPEC BillingCycle).

    The cycle's name never decides (issue 17: "Monthly " can recur quarterly): a cycle missing from the Billing
    Cycle table cannot be confirmed monthly, whatever it is called."""
    return billing_option(agreement, cycles) == MONTHLY_OPTION


def monthly_cycle(ctx: RunContext) -> dict | None:
    cycles = [c for c in ctx.get("billing_cycles") if c.get("billingOptions") == MONTHLY_OPTION]
    cycles.sort(key=lambda c: (not same_name(c.get("name"), "Monthly"), c.get("id")))
    return cycles[0] if cycles else None


def one_time_cycle(ctx: RunContext) -> dict | None:
    cycles = [c for c in ctx.get("billing_cycles") if c.get("billingOptions") == ONE_TIME_OPTION]
    cycles.sort(key=lambda c: (not same_name(c.get("name"), "One Time"), c.get("id")))
    return cycles[0] if cycles else None


def cycle_label(cycle: dict | None, cycles: dict[int, dict]) -> str:
    """A billing cycle named unambiguously: ``"Monthly " (id 6, recurs Quarterly)``. Names are the partner's own
    and can look alike (a trailing space, a renamed row), so the id and what it really does (``billingOptions``)
    go with the name everywhere a cycle is shown (issue 17)."""
    if not isinstance(cycle, dict) or cycle.get("id") is None:
        return "none"
    full = cycles.get(cycle["id"]) or cycle
    option = full.get("billingOptions")
    recurs = {
        "NotRecurring": "one time",
        "SemiAnnual": "recurs Semi-Annually",
        "BiMonthly": "recurs Bi-Monthly",
        "BiWeekly": "recurs Bi-Weekly",
    }.get(option, f"recurs {option}" if option else "recurrence unknown")
    return f'"{full.get("name") or cycle.get("name") or ""}" (id {cycle["id"]}, {recurs})'


def describe(agreement: dict) -> str:
    return f'Agreement "{agreement.get("name") or ""}" (id {agreement.get("id")})'


def type_is_one_time(agreement_type: dict) -> bool:
    """An agreement type whose new agreements bill once (``billOneTimeFlag`` / ``oneTimeFlag``, SPEC
    ``AgreementType``)."""
    return bool(agreement_type.get("billOneTimeFlag") or agreement_type.get("oneTimeFlag"))
