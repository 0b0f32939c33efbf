"""The subscription list CSV (``connectwise.subscriptions``); what the preview does with the lines is tested in
tests/onboarding/test_existing_billing.py."""

from __future__ import annotations

from datetime import date

import pytest

from connectwise.subscriptions import (
    MAX_LINES,
    SubscriptionCsvError,
    SubscriptionLine,
    match_key,
    parse_subscriptions,
)


def test_it_reads_loose_header_names_any_delimiter_and_the_term_spellings():
    text = (
        "Billing Customer;SKU;Qty;Billing_Term;Start-Date\n\nContoso;CFQ7TTC0LH18;5;P1Y;2026-12-01T00:00:00\n"
    )
    assert parse_subscriptions(text) == [
        SubscriptionLine(3, "Contoso", "CFQ7TTC0LH18", 5, "annual", date(2026, 12, 1))
    ]


def test_every_bad_line_is_named_and_nothing_is_returned():
    text = (
        "customer,product,quantity,term,start date\n"
        "A,B,x,monthly,2026-01-01\n"
        "A,B,1,monthly,2026-01-01\n"
        ",B,1,weekly,2026-01-01\n"
    )
    with pytest.raises(SubscriptionCsvError) as caught:
        parse_subscriptions(text)
    assert caught.value.problems == [
        "line 2: quantity 'x' is not a whole number",
        "line 4: the customer is empty; term 'weekly' must be monthly or annual",
    ]


def test_a_file_over_the_line_limit_is_refused_whole():
    text = "customer,product,quantity,term,start\n" + "A,B,1,monthly,2026-01-01\n" * (MAX_LINES + 1)
    with pytest.raises(SubscriptionCsvError, match=f"more than {MAX_LINES} subscriptions"):
        parse_subscriptions(text)


def test_names_compare_on_letters_and_digits_only():
    assert match_key(" Start_Date ") == match_key("start-date") == "startdate"
