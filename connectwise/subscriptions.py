"""The distributor's subscription list as CSV: its columns, its terms, and parsing it into ``SubscriptionLine``.

One line per subscription: billing customer, product name or SKU, quantity, term (monthly or annual) and start
date. Header names are matched loosely (``COLUMNS``); a bad file raises ``SubscriptionCsvError`` with every problem
and its line number, and nothing of it is used. The first-sync preview (``connectwise.preview``) places the lines.
"""

from __future__ import annotations

import csv
import io
import re
from dataclasses import dataclass
from datetime import date

MAX_LINES = 5000
# CSV header names (lower case, spaces/underscores/dashes ignored) -> our field
COLUMNS = {
    "customer": "customer",
    "billingcustomer": "customer",
    "customername": "customer",
    "company": "customer",
    "product": "product",
    "productname": "product",
    "sku": "product",
    "productnameorsku": "product",
    "quantity": "quantity",
    "qty": "quantity",
    "seats": "quantity",
    "term": "term",
    "billingterm": "term",
    "startdate": "start",
    "start": "start",
}
REQUIRED = ("customer", "product", "quantity", "term", "start")
TERMS = {
    "monthly": "monthly",
    "month": "monthly",
    "p1m": "monthly",
    "annual": "annual",
    "annually": "annual",
    "yearly": "annual",
    "year": "annual",
    "p1y": "annual",
}


class SubscriptionCsvError(ValueError):
    """The subscription CSV cannot be read; ``problems`` lists each one with its line number."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__(
            "; ".join(problems[:20]) + (f" (and {len(problems) - 20} more)" if len(problems) > 20 else "")
        )
        self.problems = problems


@dataclass(frozen=True)
class SubscriptionLine:
    """One subscription from the CSV. ``line`` is the 1-based line number in the file (the header is line 1)."""

    line: int
    customer: str
    product: str
    quantity: int
    term: str  # "monthly" or "annual"
    start: date


def match_key(text: str) -> str:
    """The form names are compared in (header names, terms, products): lower-case letters and digits only."""
    return re.sub(r"[^0-9a-z]+", "", (text or "").casefold())


def parse_subscriptions(text: str) -> list[SubscriptionLine]:
    """The lines of a subscription CSV (comma, semicolon or tab separated, with a header row).

    Columns (header names are matched ignoring case, spaces and underscores): customer (or billing customer),
    product (product name or SKU), quantity (a whole number of seats, at least 1), term (monthly or annual) and
    start date (YYYY-MM-DD). Raises ``SubscriptionCsvError`` listing every problem by line number; nothing of a
    bad file is used.
    """
    try:
        dialect = csv.Sniffer().sniff(text[:4096], delimiters=",;\t")
    except csv.Error:
        dialect = csv.excel
    reader = csv.reader(io.StringIO(text), dialect)
    rows = [(n, r) for n, r in enumerate(reader, start=1) if any(c.strip() for c in r)]
    if not rows:
        raise SubscriptionCsvError(
            ["The file is empty: it needs a header row and one line per subscription."]
        )
    header_line, header = rows[0]
    columns: dict[str, int] = {}
    for i, name in enumerate(header):
        target = COLUMNS.get(match_key(name))
        if target and target not in columns:
            columns[target] = i
    missing = [c for c in REQUIRED if c not in columns]
    if missing:
        label = {"start": "start date"}
        raise SubscriptionCsvError(
            [
                f"line {header_line}: the header has no column for {', '.join(label.get(m, m) for m in missing)} "
                "(expected: customer, product, quantity, term, start date)"
            ]
        )
    if len(rows) - 1 > MAX_LINES:
        raise SubscriptionCsvError(
            [f"The file has more than {MAX_LINES} subscriptions: split it and try again."]
        )
    problems: list[str] = []
    lines: list[SubscriptionLine] = []
    for number, row in rows[1:]:
        cell = {k: (row[i].strip() if i < len(row) else "") for k, i in columns.items()}
        errors = []
        if not cell["customer"]:
            errors.append("the customer is empty")
        if not cell["product"]:
            errors.append("the product is empty")
        quantity = None
        try:
            quantity = int(cell["quantity"])
            if quantity < 1:
                errors.append(f"quantity {cell['quantity']!r} must be 1 or more")
        except ValueError:
            errors.append(f"quantity {cell['quantity']!r} is not a whole number")
        term = TERMS.get(match_key(cell["term"]))
        if term is None:
            errors.append(f"term {cell['term']!r} must be monthly or annual")
        start = None
        try:
            start = date.fromisoformat(cell["start"][:10])
        except ValueError:
            errors.append(f"start date {cell['start']!r} is not a date like 2026-12-01")
        if errors:
            problems.append(f"line {number}: {'; '.join(errors)}")
            continue
        lines.append(SubscriptionLine(number, cell["customer"], cell["product"], quantity, term, start))
    if problems:
        raise SubscriptionCsvError(problems)
    if not lines:
        raise SubscriptionCsvError(["The file has a header but no subscriptions."])
    return lines
