"""The conditions language (docs/connectwise/REFERENCE.md §4): tokenizer and parser (evaluation:
test_condition_eval.py)."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from connectwise.sandbox.conditions import (
    BoolOp,
    Comparison,
    ConditionError,
    Not,
    parse,
    tokenize,
)

DOC_EXAMPLE = (
    '(contact/name like "Fred%" and closedFlag = false) and dateEntered > [2015-12-23T05:53:27Z] '
    'or summary contains "test"'
)


def test_it_tokenizes_every_kind_of_token():
    kinds = [
        (t.kind, t.value) for t in tokenize('a/b >= -1.5 and x in ("q\\"s", 2) or d < [2020-01-01T00:00:00Z]')
    ]
    assert kinds[:4] == [("field", "a/b"), ("op", ">="), ("number", -1.5), ("kw", "and")]
    assert ("string", 'q"s') in kinds
    assert ("datetime", datetime(2020, 1, 1, tzinfo=UTC)) in kinds
    assert kinds[-1] == ("end", None)


def test_it_parses_the_official_example_with_and_binding_tighter_than_or():
    tree = parse(DOC_EXAMPLE)
    assert isinstance(tree, BoolOp) and tree.op == "or"
    left, right = tree.items
    assert right == Comparison("summary", "contains", "test")
    assert isinstance(left, BoolOp) and left.op == "and"
    assert left.items[-1] == Comparison("dateEntered", ">", datetime(2015, 12, 23, 5, 53, 27, tzinfo=UTC))
    inner = left.items[0]
    assert inner.items == (Comparison("contact/name", "like", "Fred%"), Comparison("closedFlag", "=", False))


@pytest.mark.parametrize(
    "text",
    [
        "",
        "name =",
        "name = 'x' and",
        "(name = 'x'",
        "name ~ 1",
        "name in 1",
        'name = "x',
        "= 1",
        "name like 5",
    ],
)
def test_malformed_conditions_raise(text):
    with pytest.raises(ConditionError):
        parse(text)


def test_not_wraps_groups():
    assert parse("not (a = 1 or b = 2)") == Not(
        BoolOp("or", (Comparison("a", "=", 1), Comparison("b", "=", 2)))
    )
