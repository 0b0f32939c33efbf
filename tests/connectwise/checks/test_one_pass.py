"""Issue 16: the large verify's hot paths ask each question once, and give the answers of the plain rules.

``_SortedOut.every_company`` (one pass over every agreement) sorts each company's agreements exactly as
``_SortedOut.of`` does; the customers step's per-status cache gives ``inactive_reason`` and
``status_name_suspect``; ``_settings_fit`` is True exactly when ``target_findings`` has nothing to say. Checked over
every combination of the fields the rules read, including values ConnectWise should not send (a reference that is
not an object, a date that is not text)."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime

import pytest

from connectwise.checks import agreement_findings, agreement_targets, customers
from connectwise.checks.agreement_targets import Target, _SortedOut
from connectwise.checks.choices import TenantChoices
from connectwise.checks.context import RunContext

NOW = datetime(2026, 11, 30, 12, 0, tzinfo=UTC)
CYCLES = {
    1: {"id": 1, "name": "Monthly", "billingOptions": "Monthly"},
    2: {"id": 2, "name": "One Time", "billingOptions": "NotRecurring"},
    3: {"id": 3, "name": "Monthly ", "billingOptions": "Quarterly"},
}
STATUSES = (None, "", "Active", "Cancelled")
DATES = (None, "", "2025-01-01T00:00:00Z", "2027-01-01T00:00:00Z", ["not", "a", "date"])
TYPES = (
    None,
    "not an object",
    {"id": 1, "name": "Azure Plan"},
    {"id": 2, "name": "Managed Services"},
    {"id": 3},
)
CYCLE_REFS = (None, {"id": 1}, {"id": 2}, {"id": 3}, {"id": 99}, 7)
PARENTS = (None, {"id": 5}, {})


def _agreements() -> list[dict]:
    rows = []
    fields = itertools.product(
        STATUSES, DATES, DATES, TYPES, CYCLE_REFS, PARENTS, (False, True), (None, True)
    )
    for n, (status, start, end, kind, cycle, parent, cancelled, one_time) in enumerate(fields):
        row = {
            "id": n + 1,
            "agreementStatus": status,
            "startDate": start,
            "endDate": end,
            "cancelledFlag": cancelled,
        }
        for key, value in (("type", kind), ("billingCycle", cycle), ("parentAgreement", parent)):
            if value is not None:
                row[key] = value
        if one_time:
            row["billOneTimeFlag" if n % 2 else "oneTimeFlag"] = True
        rows.append(row)
    return rows


def test_one_pass_sorting_is_the_candidate_rule_of_every_company():
    rows = _agreements()
    by_company = {cid: rows[cid::7] for cid in range(7)}  # companies of many mixed agreements each
    by_company.update({100 + i: [row] for i, row in enumerate(rows[:400])})  # and of one agreement each
    every = _SortedOut.every_company(by_company, NOW, CYCLES)
    assert every.keys() == by_company.keys()
    for cid, agreements in by_company.items():
        plain = _SortedOut.of(agreements, NOW, CYCLES)
        fast = every[cid]
        assert fast.agreements is agreements
        assert [[a["id"] for a in group] for group in fast.groups] == [
            [a["id"] for a in group] for group in plain.groups
        ], cid
        assert fast.any_active == any(agreement_targets.is_active(a, NOW) for a in agreements)
        for motion in ("monthly", "azure", "annual"):
            found, fell_back = fast.fit(motion)
            plain_found, plain_fell_back = _SortedOut.of(agreements, NOW, CYCLES).fit(motion)
            assert ([a["id"] for a in found], fell_back) == ([a["id"] for a in plain_found], plain_fell_back)


@pytest.mark.parametrize(
    "status",
    [
        None,
        "not an object",
        {"id": 1, "name": "Active"},
        {"id": 1, "name": "Prospect"},  # the name given on the company, not the status record's
        {"id": 2},
        {"id": 2, "name": "Inactive"},
        {"id": 3, "name": "Lead"},
        {"id": 4, "name": "Active - Lead"},
        {"id": 99, "name": "Prospect"},
    ],
)
def test_the_status_cache_gives_the_plain_answers(status):
    statuses = {
        1: {"id": 1, "name": "Active"},
        2: {"id": 2, "name": "Inactive", "inactiveFlag": True},
        3: {"id": 3, "name": "Lead", "disallowSavingFlag": True},
        4: {"id": 4, "name": "Active - Lead"},
    }
    cache = customers._StatusReasons(statuses)
    company = {"id": 10, "name": "Acme"} | ({} if status is None else {"status": status})
    expected = (
        customers.inactive_reason(company, statuses),
        customers.status_name_suspect(company, statuses),
    )
    assert cache.of(company) == expected
    assert cache.of(dict(company, id=11)) == expected  # from the cache


def test_settings_fit_exactly_when_target_findings_say_nothing():
    ctx = RunContext(None, TenantChoices(), now=NOW)
    ctx._results["billing_cycles"] = (list(CYCLES.values()), None)
    ctx._results["agreement_types"] = ([], None)
    for key in ("customize_items", "agreements", "companies", "my_security"):
        ctx._results[key] = ([], None)
    company = {"id": 7, "name": "Acme"}
    checked = 0
    for row in _agreements()[::97]:  # a spread sample of every combination
        for invoicing, prorate in itertools.product(
            ("CalendarYear", "ContractYear", None), (True, False, None)
        ):
            agreement = {**row, "invoicingCycle": invoicing, "prorateFlag": prorate}
            for motion, how, fell_back in itertools.product(
                ("monthly", "azure", "annual"), ("auto", "explicit"), (False, True)
            ):
                target = Target(7, motion, how, agreement, [agreement], fell_back=fell_back)
                fast_fact: dict = {}
                fits = agreement_findings._settings_fit(ctx, target, agreement, CYCLES, fast_fact)
                fact: dict = {}
                findings = agreement_findings.target_findings(ctx, target, company, agreement, CYCLES, fact)
                assert fits == (not findings), (agreement, motion, how, fell_back)
                checked += 1
    assert checked > 10_000


def test_targets_marked_active_are_active_and_their_settings_verdict_is_the_plain_one():
    """``select_targets`` marks a target ``active_top_level`` only when its agreement is active and no child, and
    ``_settings_fit`` (which then skips both questions) still agrees with ``target_findings``."""
    from connectwise.checks.choices import ChosenCompany

    rows = _agreements()
    for n, row in enumerate(rows):
        row["company"] = {"id": n // 2}  # two agreements per company
        row["invoicingCycle"], row["prorateFlag"] = (
            ("CalendarYear", True) if n % 3 else ("ContractYear", None)
        )
    motions = ("monthly", "azure", "annual")
    choices = TenantChoices(companies=[ChosenCompany(cid, motions[cid % 3]) for cid in range(len(rows) // 2)])
    ctx = RunContext(None, choices, now=NOW)
    for key, value in (
        ("agreements", rows),
        ("billing_cycles", list(CYCLES.values())),
        ("agreement_types", []),
        ("customize_items", []),
        ("companies", []),
        ("my_security", []),
    ):
        ctx._results[key] = (value, None)
    targets = agreement_targets.select_targets(ctx)
    marked = [t for t in targets if t.active_top_level]
    assert len(marked) > 100 and any(t.how == "auto" and not t.active_top_level for t in targets)
    company = {"id": 1, "name": "Acme"}
    for target in targets:
        agreement = target.agreement
        if agreement is None:
            continue
        if target.active_top_level:
            assert agreement_targets.is_active(agreement, NOW) and not agreement_targets.is_child(agreement)
        fits = agreement_findings._settings_fit(ctx, target, agreement, CYCLES, {})
        assert fits == (not agreement_findings.target_findings(ctx, target, company, agreement, CYCLES, {}))


@pytest.mark.parametrize("types", [(None, None), (1, 1), (1, 2), (None, 1), ("x", "x"), (1, 1, 2), (1, 2, 3)])
def test_same_type_findings_fast_path_gives_the_plain_answer(types):
    active = [
        {
            "id": n,
            "name": f"A{n}",
            "company": {"id": 7},
            **({"type": {"id": t, "name": f"T{t}"}} if t else {}),
        }
        for n, t in enumerate(types)
    ]
    ctx = RunContext(None, TenantChoices(), now=NOW)
    findings = agreement_findings.same_type_findings(ctx, "Acme", active, active)
    counts = {}
    for t in types:
        if t is not None:
            counts[t] = counts.get(t, 0) + 1
    assert [f.data["type_id"] for f in findings] == sorted(t for t, n in counts.items() if n > 1)
