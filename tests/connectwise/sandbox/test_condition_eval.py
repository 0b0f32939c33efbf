"""Evaluating conditions over records (``connectwise.sandbox.condition_eval``, docs/connectwise/REFERENCE.md §4)."""

from __future__ import annotations

import pytest

from connectwise.sandbox.condition_eval import compile_conditions
from connectwise.sandbox.conditions import ConditionError

from .test_conditions import DOC_EXAMPLE


def matches(text, record, known=None):
    return compile_conditions(text, known)(record)


@pytest.mark.parametrize(
    ("record", "expected"),
    [
        (
            {"contact": {"name": "Fred Bloggs"}, "closedFlag": False, "dateEntered": "2016-01-01T00:00:00Z"},
            True,
        ),
        ({"contact": {"name": "fred"}, "closedFlag": False, "dateEntered": "2016-01-01T00:00:00Z"}, True),
        ({"contact": {"name": "Fred"}, "closedFlag": True, "dateEntered": "2016-01-01T00:00:00Z"}, False),
        ({"contact": {"name": "Fred"}, "closedFlag": False, "dateEntered": "2015-01-01T00:00:00Z"}, False),
        ({"contact": {"name": "Bob"}, "closedFlag": True, "summary": "A TEST ticket"}, True),
        ({"contact": {"name": "Bob"}, "closedFlag": False, "dateEntered": "2016-01-01T00:00:00Z"}, False),
    ],
)
def test_it_evaluates_the_official_example(record, expected):
    assert matches(DOC_EXAMPLE, record) is expected


def test_strings_compare_case_insensitively_and_unescape_quotes():
    record = {"name": 'Acme "Best" Ltd'}
    assert matches('name = "acme \\"best\\" ltd"', record)
    assert matches('name != "Other"', record)
    assert not matches('name = "Acme"', record)


@pytest.mark.parametrize(
    ("pattern", "expected"),
    [
        ("misc%", True),
        ("MISC*", True),
        ("%seat", True),
        ("%SC-SE%", True),
        ("m%c-s*t", True),
        ("seat%", False),
    ],
)
def test_like_takes_percent_and_star_wildcards(pattern, expected):
    assert matches(f'identifier like "{pattern}"', {"identifier": "Misc-Seat"}) is expected


def test_not_like_and_not_contains():
    assert matches('identifier not like "misc%"', {"identifier": "laptop"})
    assert not matches('identifier not contains "isc"', {"identifier": "misc"})


def test_in_and_not_in_with_numbers_and_strings():
    assert matches("status/id in (1,2)", {"status": {"id": 2}})
    assert not matches("status/id in (1, 2)", {"status": {"id": 3}})
    assert matches("status/id not in (1,2)", {"status": {"id": 3}})
    assert matches('agreementStatus in ("active", "Expired")', {"agreementStatus": "Active"})


def test_numbers_booleans_null_and_references():
    record = {"id": 250, "company": {"id": 250}, "inactiveFlag": False, "endDate": None, "price": 9.5}
    assert matches("company/id = 250 and id >= 250 and id < 251", record)
    assert matches("inactiveFlag = false and price > 9", record)
    assert matches("endDate = null and parentAgreement = null", record)
    assert not matches("endDate != null", record)
    assert matches("NOT (inactiveFlag = true)", record)


def test_datetimes_compare_as_instants():
    record = {"lastUpdated": "2024-05-01T10:00:00Z"}
    assert matches("lastUpdated > [2024-05-01T09:59:59Z] and lastUpdated <= [2024-05-01T10:00:00Z]", record)
    assert not matches("lastUpdated < [2024-01-01]", record)


def test_unknown_fields_are_refused_when_the_fields_are_known():
    with pytest.raises(ConditionError, match="Unknown field 'nosuch'"):
        compile_conditions("nosuch = 1", ["id", "name"])
    # Known fields match case-insensitively and are rewritten to the record's spelling.
    assert compile_conditions("NAME = 'x'", ["id", "name"])({"name": "X"})
