from __future__ import annotations

from datetime import UTC, date, datetime, timedelta, timezone
from decimal import Decimal

import httpx
import pytest

from connectwise.query import Condition, cond, encoded_length, format_value, quote_string, split_in


def unquote(literal: str) -> str:
    """The inverse of quote_string, as a parser of docs/connectwise/REFERENCE.md §4 strings would read it."""
    assert literal[0] == literal[-1] == '"'
    out, i, body = [], 0, literal[1:-1]
    while i < len(body):
        if body[i] == "\\":
            i += 1
        else:
            assert body[i] != '"', "unescaped quote inside a string"
        out.append(body[i])
        i += 1
    return "".join(out)


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("Acme", '"Acme"'),
        ('Acme "Ltd"', '"Acme \\"Ltd\\""'),
        ("back\\slash", '"back\\\\slash"'),
        ('ends with \\"', '"ends with \\\\\\""'),
        ("Zoë & Müller GmbH", '"Zoë & Müller GmbH"'),
        ("", '""'),
    ],
)
def test_it_quotes_strings_with_backslash_escapes(value, expected):
    assert quote_string(value) == expected
    assert unquote(expected) == value


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (True, "true"),
        (False, "false"),
        (250, "250"),
        (-3, "-3"),
        (1.5, "1.5"),
        (Decimal("12.50"), "12.50"),
        (datetime(2016, 8, 20, 18, 4, 26, tzinfo=UTC), "[2016-08-20T18:04:26Z]"),
        (
            datetime(2016, 8, 20, 20, 4, 26, 999, tzinfo=timezone(timedelta(hours=2))),
            "[2016-08-20T18:04:26Z]",
        ),
    ],
)
def test_it_formats_literals(value, expected):
    assert format_value(value) == expected


@pytest.mark.parametrize(
    ("value", "exc"),
    [
        (datetime(2016, 8, 20, 18, 4, 26), ValueError),  # naive
        (date(2016, 8, 20), TypeError),
        (float("nan"), ValueError),
        (float("inf"), ValueError),
        (None, TypeError),
        ([1], TypeError),
    ],
)
def test_it_refuses_values_it_cannot_write_unambiguously(value, exc):
    with pytest.raises(exc):
        format_value(value)


def test_comparisons_and_references():
    assert cond.eq("company/id", 250) == "company/id = 250"
    assert cond.ne("name", "x") == 'name != "x"'
    assert cond.lt("id", 5) == "id < 5"
    assert cond.le("id", 5) == "id <= 5"
    assert cond.gt("id", 5) == "id > 5"
    assert cond.ge("id", 5) == "id >= 5"
    assert cond.eq("inactiveFlag", False) == "inactiveFlag = false"
    assert cond.contains("summary", "test") == 'summary contains "test"'


def test_like_keeps_percent_wildcards():
    assert cond.like("contact/name", "Fred%") == 'contact/name like "Fred%"'
    assert cond.like("identifier", "%misc%") == 'identifier like "%misc%"'


def test_contains_and_like_take_strings_only():
    with pytest.raises(TypeError):
        cond.like("name", 5)


@pytest.mark.parametrize("field", ["name = 1 or id", "", "company//id", "1abc", 'name"', "a b", "/id"])
def test_it_refuses_field_names_that_could_inject(field):
    with pytest.raises(ValueError):
        cond.eq(field, 1)


def test_in_and_not_in():
    assert cond.in_("status/id", [1, 2]) == "status/id in (1,2)"
    assert cond.not_in("name", ["a", 'b"c']) == 'name not in ("a","b\\"c")'
    with pytest.raises(ValueError):
        cond.in_("id", [])


def test_and_or_bracket_compound_operands_only():
    inner = cond.or_(cond.like("contact/name", "Fred%"), cond.eq("closedFlag", False))
    c = cond.and_(inner, cond.gt("dateEntered", datetime(2015, 12, 23, 5, 53, 27, tzinfo=UTC)))
    assert c == '(contact/name like "Fred%" or closedFlag = false) and dateEntered > [2015-12-23T05:53:27Z]'
    assert isinstance(c, Condition) and c.compound
    assert cond.or_(c, cond.contains("summary", "test")) == (
        '((contact/name like "Fred%" or closedFlag = false) and dateEntered > [2015-12-23T05:53:27Z])'
        ' or summary contains "test"'
    )


def test_raw_strings_are_bracketed_and_single_parts_unwrapped():
    assert cond.and_("a = 1 or b = 2", cond.eq("c", 3)) == "(a = 1 or b = 2) and c = 3"
    assert cond.and_(cond.eq("c", 3)) == "c = 3"
    assert cond.and_(cond.eq("c", 3), "") == "c = 3"
    with pytest.raises(ValueError):
        cond.or_()


def test_split_in_of_nothing_is_nothing():
    assert split_in("id", []) == []


def test_split_in_keeps_every_value_once_in_order_and_each_chunk_short():
    ids = list(range(1, 5001)) + [7, 7]
    chunks = split_in("id", ids, max_len=1500)
    assert len(chunks) > 1
    assert all(encoded_length(c) <= 1500 for c in chunks)
    seen = []
    for c in chunks:
        assert c.startswith("id in (") and c.endswith(")")
        seen.extend(int(x) for x in c[len("id in (") : -1].split(","))
    assert seen == list(range(1, 5001))


def test_split_in_keeps_the_whole_url_under_2000_characters():
    names = [f'Kunde "Zoë" Nr. {i} & Söhne' for i in range(300)]
    base = "https://api-na.myconnectwise.net/v4_6_release/apis/3.0/company/companies"
    for c in split_in("name", names):
        url = httpx.URL(
            base, params={"conditions": c, "fields": "id,name,status/id", "page": 1, "pageSize": 1000}
        )
        assert len(str(url)) < 2000
        assert httpx.URL(str(url)).params["conditions"] == c  # round-trips through the URL


def test_split_in_measures_the_encoded_length_of_non_ascii():
    chunks = split_in("name", ["ü" * 10, "ü" * 10], max_len=100)  # the duplicate collapses
    assert chunks == ['name in ("üüüüüüüüüü")']
    assert encoded_length(chunks[0]) > len("conditions=" + chunks[0])  # ü is 6 characters once encoded


def test_split_in_refuses_a_value_that_cannot_fit():
    with pytest.raises(ValueError):
        split_in("name", ["x" * 200], max_len=100)
