"""Evaluating ``conditions`` over records: a parsed tree compiled once into a fast predicate ``record -> bool``.

Semantics as ConnectWise's SQL translation has them (docs/connectwise/REFERENCE.md §4): string comparisons ignore
case, a record value is compared in the type of the literal it meets, ``like`` takes ``%`` and ``*`` as
wildcards. ``compile_conditions(text, known_fields)`` raises ConditionError for an unknown field, which the app
answers with 400 ("only fields that a GET returns can be used").
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from datetime import datetime
from typing import Any

from .conditions import BoolOp, Comparison, ConditionError, Not, Predicate, parse, parse_datetime


def compile_conditions(text: str, known_fields: Iterable[str] | None = None) -> Predicate:
    """Parse ``text`` once and return a fast predicate over records.

    ``known_fields``: the top-level field names the resource returns. A path whose first segment is not one of
    them raises ConditionError; names match case-insensitively and are rewritten to the record's spelling.
    """
    tree = parse(text)
    canonical = None
    if known_fields is not None:
        canonical = {name.lower(): name for name in known_fields}
    return _compile(tree, canonical)


def _compile(node, canonical: dict[str, str] | None) -> Predicate:
    if isinstance(node, BoolOp):
        parts = [_compile(item, canonical) for item in node.items]
        if len(parts) == 2:  # the common case, without a loop
            a, b = parts
            if node.op == "and":
                return lambda rec: a(rec) and b(rec)
            return lambda rec: a(rec) or b(rec)
        want = node.op == "or"  # the value that decides the result early

        def test_bool(rec: dict) -> bool:
            for part in parts:
                if part(rec) == want:
                    return want
            return not want

        return test_bool
    if isinstance(node, Not):
        inner = _compile(node.item, canonical)
        return lambda rec: not inner(rec)
    return _compile_comparison(node, canonical)


def path_getter(path: str, canonical: dict[str, str] | None = None) -> Callable[[dict], Any]:
    """A reader of ``path`` ("a" or "a/b/c") from a record: the value, or None where a step is missing or not an
    object. With ``canonical`` (lower-case name -> field name) the first part is matched case-insensitively and
    an unknown one raises ``ConditionError``. Used by conditions and by ``orderBy``."""
    parts = path.split("/")
    if canonical is not None:
        head = canonical.get(parts[0].lower())
        if head is None:
            raise ConditionError(f"Unknown field '{path}'")
        parts[0] = head
    if len(parts) == 1:
        key = parts[0]
        return lambda rec: rec.get(key)
    if len(parts) == 2:
        a, b = parts

        def get2(rec: dict) -> Any:
            v = rec.get(a)
            return v.get(b) if isinstance(v, dict) else None

        return get2

    def get_n(rec: dict) -> Any:
        v: Any = rec
        for p in parts:
            if not isinstance(v, dict):
                return None
            v = v.get(p)
        return v

    return get_n


def _norm(value: Any) -> Any:
    """The comparable form of a literal: strings fold case, datetimes stay datetimes."""
    if isinstance(value, str):
        return value.casefold()
    return value


def _coerce(value: Any, like: Any) -> Any:
    """A record value in the type of the literal it is compared with; None when they cannot be compared."""
    if value is None:
        return None
    if isinstance(like, bool):
        return value if isinstance(value, bool) else None
    if isinstance(like, datetime):
        return parse_datetime(value) if not isinstance(value, datetime) else value
    if isinstance(like, int | float):
        if isinstance(value, bool):
            return None
        if isinstance(value, int | float):
            return value
        try:
            return float(value)
        except (TypeError, ValueError):
            return None
    if isinstance(like, str):
        if isinstance(value, str):
            return value.casefold()
        if isinstance(value, bool):
            return "true" if value else "false"
        return str(value).casefold()
    return value


def like_regex(pattern: str) -> re.Pattern[str]:
    """``%`` and ``*`` match any run of characters; everything else literally; case-insensitive, whole value."""
    out = []
    for ch in pattern:
        out.append(".*" if ch in "%*" else re.escape(ch))
    return re.compile("".join(out), re.IGNORECASE | re.DOTALL)


def _compile_like(get: Callable[[dict], Any], pattern: str, negate: bool) -> Predicate:
    """``like``; the common shapes (``abc%``, ``%abc%``, ``%abc``, no wildcard) skip the regex engine."""
    inner = pattern.strip("%*")
    plain = not any(ch in "%*" for ch in inner)
    lead, trail = pattern[:1] in ("%", "*"), pattern[-1:] in ("%", "*")
    needle = inner.casefold()
    if plain and inner and lead and trail:
        test = lambda text: needle in text  # noqa: E731
    elif plain and inner and trail:
        test = lambda text: text.startswith(needle)  # noqa: E731
    elif plain and inner and lead:
        test = lambda text: text.endswith(needle)  # noqa: E731
    elif plain and not lead and not trail:
        test = lambda text: text == needle  # noqa: E731
    else:
        regex = like_regex(pattern)
        test = lambda text: regex.fullmatch(text) is not None  # noqa: E731

    def test_like(rec: dict) -> bool:
        value = get(rec)
        if value is None:
            return negate
        return test((value if isinstance(value, str) else str(value)).casefold()) != negate

    return test_like


def _compile_comparison(node: Comparison, canonical: dict[str, str] | None) -> Predicate:
    get = path_getter(node.field, canonical)
    op, literal, negate = node.op, node.value, node.negate

    if op == "in":
        wanted = [_norm(v) for v in literal]
        has_null = any(v is None for v in literal)
        samples = [v for v in literal if v is not None]
        pairs = [(s, _norm(s)) for s in samples]

        def test_in(rec: dict) -> bool:
            value = get(rec)
            if value is None:
                hit = has_null
            else:
                hit = any(_coerce(value, s) == w for s, w in pairs)
            return hit != negate

        if not any(isinstance(v, datetime) for v in samples):
            # Fast path for the common `id in (1,2,3)` / `name in ("a","b")`: one set lookup.
            str_set = {w for w in wanted if isinstance(w, str)}
            num_set = {w for w in wanted if isinstance(w, int | float) and not isinstance(w, bool)}
            bool_set = {w for w in wanted if isinstance(w, bool)}

            def test_in_fast(rec: dict) -> bool:
                value = get(rec)
                if value is None:
                    hit = has_null
                elif isinstance(value, bool):
                    hit = value in bool_set or ("true" if value else "false") in str_set
                elif isinstance(value, int | float):
                    hit = value in num_set or str(value).casefold() in str_set
                elif isinstance(value, str):
                    hit = value.casefold() in str_set
                    if not hit and num_set:
                        try:
                            hit = float(value) in num_set
                        except ValueError:
                            hit = False
                else:
                    hit = False
                return hit != negate

            return test_in_fast
        return test_in

    if op == "like":
        return _compile_like(get, literal, negate)

    if op == "contains":
        needle = literal.casefold()

        def test_contains(rec: dict) -> bool:
            value = get(rec)
            hit = value is not None and needle in str(value).casefold()
            return hit != negate

        return test_contains

    if literal is None:
        if op == "=":
            return lambda rec: get(rec) is None
        if op == "!=":
            return lambda rec: get(rec) is not None
        return lambda rec: False

    target = _norm(literal)
    if op in ("=", "!=") and isinstance(literal, str):

        def test_str_eq(rec: dict) -> bool:
            value = get(rec)
            if isinstance(value, str):
                return (value.casefold() == target) != (op == "!=")
            if value is None:
                return op == "!="
            return (_coerce(value, literal) == target) != (op == "!=")

        return test_str_eq
    if op == "=":

        def test_eq(rec: dict) -> bool:
            return _coerce(get(rec), literal) == target

        return test_eq
    if op == "!=":

        def test_ne(rec: dict) -> bool:
            value = get(rec)
            return value is None or _coerce(value, literal) != target

        return test_ne

    compare = {
        "<": lambda a, b: a < b,
        "<=": lambda a, b: a <= b,
        ">": lambda a, b: a > b,
        ">=": lambda a, b: a >= b,
    }[op]

    def test_order(rec: dict) -> bool:
        value = _coerce(get(rec), literal)
        if value is None:
            return False
        try:
            return compare(value, target)
        except TypeError:
            return False

    return test_order
