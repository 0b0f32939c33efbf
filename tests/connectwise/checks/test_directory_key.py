"""The company list's source key (``directory_key.directory_source``): by the client's page digests when it kept
them (issue 16: no second serialisation of 15,000 records), else by the records; either way a change of what the
list is built from changes the key."""

from __future__ import annotations

from datetime import UTC, datetime

from connectwise.checks import customers, directory_key
from connectwise.checks.choices import TenantChoices
from connectwise.checks.context import RunContext

NOW = datetime(2026, 11, 30, 12, 0, tzinfo=UTC)


def _ctx(companies, agreements, digests=None):
    ctx = RunContext(None, TenantChoices(), now=NOW)
    for key, rows in (
        ("companies", companies),
        ("company_statuses", [{"id": 1, "name": "Active"}]),
        ("agreements", agreements),
        ("billing_cycles", [{"id": 1, "billingOptions": "Monthly"}]),
    ):
        ctx._results[key] = (rows, None)
    ctx._digests.update(digests or {})
    return ctx


COMPANIES = [{"id": 1, "name": "Acme"}, {"id": 2, "name": "Globex"}]
AGREEMENTS = [{"id": 10, "company": {"id": 1}, "startDate": "2027-01-01T00:00:00Z"}]


def test_without_page_digests_the_records_decide():
    key = directory_key.directory_source(_ctx(COMPANIES, AGREEMENTS))
    assert len(key) == 32
    assert directory_key.directory_source(_ctx([dict(c) for c in COMPANIES], AGREEMENTS)) == key
    renamed = [COMPANIES[0], {"id": 2, "name": "Globex Ltd"}]
    assert directory_key.directory_source(_ctx(renamed, AGREEMENTS)) != key


def test_page_digests_stand_for_the_records_they_were_taken_of():
    digests = {"companies": "a" * 32, "agreements": "b" * 32}
    key = directory_key.directory_source(_ctx(COMPANIES, AGREEMENTS, digests))
    # digests and records never collide
    assert key != directory_key.directory_source(_ctx(COMPANIES, AGREEMENTS))
    assert directory_key.directory_source(_ctx(COMPANIES, AGREEMENTS, dict(digests))) == key
    other = {**digests, "companies": "c" * 32}
    assert directory_key.directory_source(_ctx(COMPANIES, AGREEMENTS, other)) != key


def test_the_time_among_the_agreement_dates_is_part_of_the_key():
    before = _ctx(COMPANIES, AGREEMENTS)
    after = _ctx(COMPANIES, AGREEMENTS)
    after.now = datetime(2027, 1, 2, tzinfo=UTC)  # the agreement started meanwhile: the list says so
    assert directory_key.directory_source(before) != directory_key.directory_source(after)


def test_the_customers_step_still_names_them():
    assert customers.directory_source is directory_key.directory_source
    assert customers.DIRECTORY_VERSION == directory_key.DIRECTORY_VERSION
