"""Build ConnectWise ``conditions`` strings (docs/connectwise/REFERENCE.md §4) without hand-quoting.

    from connectwise.query import cond, split_in
    cond.and_(cond.eq("company/id", 250), cond.like("name", "Fred%"))   # 'company/id = 250 and name like "Fred%"'

Grammar we emit, and only this (another module parses it back):
- comparison ``field op value`` with op one of ``= != < <= > >= contains like``;
- sets ``field in (v1,v2)`` and ``field not in (v1,v2)``;
- ``and`` / ``or``, with brackets around any compound operand;
- values: strings in double quotes with ``\\`` and ``"`` escaped by a backslash, numbers bare, ``true``/``false``,
  datetimes ``[2016-08-20T18:04:26Z]`` in UTC (naive datetimes are refused: their zone is a guess);
- fields are names joined by ``/`` for references (``company/id``); anything else is refused, so a value can never
  smuggle an operator in through a field name.
``like`` patterns keep their ``%`` wildcards as given.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable
from datetime import UTC, date, datetime
from decimal import Decimal

import httpx

_FIELD = re.compile(r"[A-Za-z_][A-Za-z0-9_]*(?:/[A-Za-z_][A-Za-z0-9_]*)*")

# Room for the conditions parameter once encoded, in a URL kept under about 2000 characters (docs/connectwise/REFERENCE.md §4,
# DJCW batches the same way): the rest is origin, codebase, path, fields, orderBy and paging.
DEFAULT_MAX_LEN = 1500


class Condition(str):
    """A conditions string that remembers whether it is a compound (``and``/``or``) so nesting gets brackets."""

    compound: bool = False

    @classmethod
    def _make(cls, text: str, *, compound: bool = False) -> Condition:
        c = cls(text)
        c.compound = compound
        return c


def quote_string(value: str) -> str:
    """``Acme "Ltd"`` -> ``"Acme \\"Ltd\\""``: backslash first, then the double quote."""
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


def format_value(value: object) -> str:
    """One literal in ConnectWise syntax."""
    if isinstance(value, bool):  # before int: bool is an int
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if not math.isfinite(value):
            raise ValueError(f"cannot use {value!r} in a condition")
        return repr(value)
    if isinstance(value, Decimal):
        if not value.is_finite():
            raise ValueError(f"cannot use {value!r} in a condition")
        return format(value, "f")
    if isinstance(value, datetime):
        if value.tzinfo is None or value.utcoffset() is None:
            raise ValueError(
                "naive datetime in a condition: pass an aware datetime (UTC is assumed by nobody)"
            )
        return "[" + value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ") + "]"
    if isinstance(value, date):
        raise TypeError("a date in a condition is ambiguous: pass an aware datetime")
    if isinstance(value, str):
        return quote_string(value)
    raise TypeError(f"cannot use a {type(value).__name__} in a condition")


def _field(name: str) -> str:
    if not isinstance(name, str) or not _FIELD.fullmatch(name):
        raise ValueError(f"not a ConnectWise field name: {name!r}")
    return name


def _compare(field: str, op: str, value: object) -> Condition:
    return Condition._make(f"{_field(field)} {op} {format_value(value)}")


def _group(part: str) -> str:
    # Leaves stay bare; compounds and raw strings (whose structure we cannot see) get brackets.
    if isinstance(part, Condition) and not part.compound:
        return str(part)
    return f"({part})"


def _join(op: str, parts: tuple[str, ...]) -> Condition:
    parts = tuple(p for p in parts if p)
    if not parts:
        raise ValueError(f"{op}_() needs at least one condition")
    if len(parts) == 1:
        p = parts[0]
        return p if isinstance(p, Condition) else Condition._make(str(p), compound=True)
    return Condition._make(f" {op} ".join(_group(p) for p in parts), compound=True)


def _set(field: str, op: str, values: Iterable[object]) -> Condition:
    items = [format_value(v) for v in values]
    if not items:
        raise ValueError(f"{op} () with no values matches nothing: handle the empty case before querying")
    return Condition._make(f"{_field(field)} {op} ({','.join(items)})")


class cond:  # noqa: N801 (used as a namespace: cond.eq(...))
    """Condition builders. Every method returns a ``Condition`` (a ``str``), usable as ``conditions=``."""

    @staticmethod
    def eq(field: str, value: object) -> Condition:
        return _compare(field, "=", value)

    @staticmethod
    def ne(field: str, value: object) -> Condition:
        return _compare(field, "!=", value)

    @staticmethod
    def lt(field: str, value: object) -> Condition:
        return _compare(field, "<", value)

    @staticmethod
    def le(field: str, value: object) -> Condition:
        return _compare(field, "<=", value)

    @staticmethod
    def gt(field: str, value: object) -> Condition:
        return _compare(field, ">", value)

    @staticmethod
    def ge(field: str, value: object) -> Condition:
        return _compare(field, ">=", value)

    @staticmethod
    def contains(field: str, value: str) -> Condition:
        return _compare(field, "contains", _require_str(value))

    @staticmethod
    def like(field: str, pattern: str) -> Condition:
        """``%`` is the wildcard and is passed through (docs/connectwise/REFERENCE.md §4)."""
        return _compare(field, "like", _require_str(pattern))

    @staticmethod
    def in_(field: str, values: Iterable[object]) -> Condition:
        return _set(field, "in", values)

    @staticmethod
    def not_in(field: str, values: Iterable[object]) -> Condition:
        return _set(field, "not in", values)

    @staticmethod
    def and_(*parts: str) -> Condition:
        return _join("and", parts)

    @staticmethod
    def or_(*parts: str) -> Condition:
        return _join("or", parts)


def _require_str(value: object) -> str:
    if not isinstance(value, str):
        raise TypeError("contains/like take a string")
    return value


def encoded_length(conditions: str) -> int:
    """Length of ``conditions=...`` as httpx puts it in a URL."""
    return len(str(httpx.QueryParams({"conditions": conditions})))


def _enc(text: str) -> int:
    # Percent-encoding works character by character, so encoded lengths add up.
    return encoded_length(text) - len("conditions=")


def split_in(field: str, values: Iterable[object], max_len: int = DEFAULT_MAX_LEN) -> list[Condition]:
    """``field in (...)`` conditions over ``values`` (deduplicated, order kept), each short enough that its
    URL-encoded ``conditions=`` parameter is at most ``max_len`` characters. No values -> ``[]``.

    Query each chunk separately and concatenate the results (DJCW batches long ``in`` lists the same way).
    """
    head = f"{_field(field)} in ("
    fixed = encoded_length(head + ")")
    comma = _enc(",")
    chunks: list[Condition] = []
    current: list[str] = []
    size = fixed
    seen: set[str] = set()
    for v in values:
        lit = format_value(v)
        if lit in seen:
            continue
        seen.add(lit)
        n = _enc(lit)
        if fixed + n > max_len:
            raise ValueError(f"one value alone makes the condition longer than {max_len} characters")
        if current and size + comma + n > max_len:
            chunks.append(Condition._make(head + ",".join(current) + ")"))
            current, size = [], fixed
        size += (comma if current else 0) + n
        current.append(lit)
    if current:
        chunks.append(Condition._make(head + ",".join(current) + ")"))
    return chunks
