"""The ``conditions`` query language of ConnectWise (docs/connectwise/REFERENCE.md §4): tokenizer, recursive-descent parser, evaluator.

Grammar (``and`` binds tighter than ``or``, as in SQL, which ConnectWise translates conditions to)::

    expr       := and_expr ("or" and_expr)*
    and_expr   := unary ("and" unary)*
    unary      := "not" unary | "(" expr ")" | comparison
    comparison := FIELD operator value
    operator   := "=" | "!=" | "<" | "<=" | ">" | ">=" | ["not"] ("contains" | "like" | "in")
    value      := STRING | NUMBER | DATETIME | "true" | "false" | "null" | "(" value ("," value)* ")"

FIELD is a path with slashes for references (``company/id``), STRING is double-quoted with ``\\"`` escapes,
DATETIME is ``[2015-12-23T05:53:27Z]``. Keywords are case-insensitive. String comparisons ignore case, as
ConnectWise's SQL collation does; ``like`` takes ``%`` and ``*`` as wildcards (sources disagree which one, so both).

``compile_conditions(text, known_fields)`` parses once and returns a predicate ``record -> bool``; an unknown field
raises ConditionError, which the app answers with 400 (docs/connectwise/REFERENCE.md §4: "only fields that a GET returns can be used").
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

Predicate = Callable[[dict], bool]

KEYWORDS = {"and", "or", "not", "in", "contains", "like", "true", "false", "null"}
COMPARISONS = {"=", "!=", "<", "<=", ">", ">="}


class ConditionError(ValueError):
    """A conditions string that does not parse, or names a field the resource does not have."""

    def __init__(self, message: str, position: int | None = None) -> None:
        super().__init__(message if position is None else f"{message} (at character {position + 1})")
        self.position = position


@dataclass(frozen=True)
class Token:
    kind: str  # "field", "string", "number", "datetime", "op", "kw", "(", ")", ",", "end"
    value: Any
    pos: int


_TOKEN_RE = re.compile(
    r"""
    (?P<ws>\s+)
  | (?P<op><=|>=|!=|<>|=|<|>)
  | (?P<paren>[(),])
  | (?P<number>-?\d+(?:\.\d+)?(?![\w/]))
  | (?P<datetime>\[[^\]]*\])
  | (?P<word>[A-Za-z_@][\w./@]*)
  """,
    re.VERBOSE,
)


def tokenize(text: str) -> list[Token]:
    tokens: list[Token] = []
    pos = 0
    n = len(text)
    while pos < n:
        ch = text[pos]
        if ch == '"' or ch == "'":
            value, pos = _read_string(text, pos)
            tokens.append(Token("string", value, pos))
            continue
        m = _TOKEN_RE.match(text, pos)
        if m is None:
            raise ConditionError(f"unexpected character {ch!r}", pos)
        kind = m.lastgroup
        raw = m.group()
        if kind == "op":
            tokens.append(Token("op", "!=" if raw == "<>" else raw, pos))
        elif kind == "paren":
            tokens.append(Token(raw, raw, pos))
        elif kind == "number":
            tokens.append(Token("number", float(raw) if "." in raw else int(raw), pos))
        elif kind == "datetime":
            tokens.append(Token("datetime", _parse_datetime(raw[1:-1].strip(), pos), pos))
        elif kind == "word":
            low = raw.lower()
            tokens.append(Token("kw", low, pos) if low in KEYWORDS else Token("field", raw, pos))
        pos = m.end()
    tokens.append(Token("end", None, n))
    return tokens


def _read_string(text: str, start: int) -> tuple[str, int]:
    quote = text[start]
    out: list[str] = []
    i = start + 1
    while i < len(text):
        ch = text[i]
        if ch == "\\" and i + 1 < len(text):
            out.append(text[i + 1])
            i += 2
            continue
        if ch == quote:
            return "".join(out), i + 1
        out.append(ch)
        i += 1
    raise ConditionError("unterminated string", start)


def _parse_datetime(text: str, pos: int) -> datetime:
    value = parse_datetime(text)
    if value is None:
        raise ConditionError(f"not a datetime: [{text}]", pos)
    return value


def parse_datetime(text: Any) -> datetime | None:
    """ISO 8601 (``2015-12-23T05:53:27Z`` or a plain date) to an aware datetime; None when it is not one."""
    if not isinstance(text, str) or not text:
        return None
    try:
        value = datetime.fromisoformat(text.replace("Z", "+00:00") if text.endswith("Z") else text)
    except ValueError:
        return None
    return value if value.tzinfo else value.replace(tzinfo=UTC)


# ---------------------------------------------------------------------------------------------------- the tree
@dataclass(frozen=True)
class Comparison:
    field: str
    op: str  # = != < <= > >= contains like in (each may be negated by `negate`)
    value: Any  # a literal, or a tuple of literals for `in`
    negate: bool = False


@dataclass(frozen=True)
class BoolOp:
    op: str  # "and" | "or"
    items: tuple


@dataclass(frozen=True)
class Not:
    item: Any


class _Parser:
    def __init__(self, text: str) -> None:
        self.tokens = tokenize(text)
        self.i = 0

    def peek(self) -> Token:
        return self.tokens[self.i]

    def take(self) -> Token:
        tok = self.tokens[self.i]
        self.i += 1
        return tok

    def expect(self, kind: str, what: str) -> Token:
        tok = self.peek()
        if tok.kind != kind:
            raise ConditionError(f"expected {what}, found {_describe(tok)}", tok.pos)
        return self.take()

    def parse(self):
        if self.peek().kind == "end":
            raise ConditionError("empty conditions", 0)
        node = self.expr()
        tok = self.peek()
        if tok.kind != "end":
            raise ConditionError(f"expected 'and', 'or' or the end, found {_describe(tok)}", tok.pos)
        return node

    def expr(self):
        items = [self.and_expr()]
        while self._is_kw("or"):
            self.take()
            items.append(self.and_expr())
        return items[0] if len(items) == 1 else BoolOp("or", tuple(items))

    def and_expr(self):
        items = [self.unary()]
        while self._is_kw("and"):
            self.take()
            items.append(self.unary())
        return items[0] if len(items) == 1 else BoolOp("and", tuple(items))

    def unary(self):
        tok = self.peek()
        if tok.kind == "kw" and tok.value == "not":
            self.take()
            return Not(self.unary())
        if tok.kind == "(":
            self.take()
            node = self.expr()
            self.expect(")", "')'")
            return node
        return self.comparison()

    def comparison(self) -> Comparison:
        field = self.expect("field", "a field name")
        tok = self.take()
        negate = False
        if tok.kind == "kw" and tok.value == "not":
            negate = True
            tok = self.take()
            if not (tok.kind == "kw" and tok.value in ("in", "like", "contains")):
                raise ConditionError(
                    f"expected 'in', 'like' or 'contains' after 'not', found {_describe(tok)}", tok.pos
                )
        if tok.kind == "op":
            op = tok.value
        elif tok.kind == "kw" and tok.value in ("in", "like", "contains"):
            op = tok.value
        else:
            raise ConditionError(
                f"expected an operator after {field.value!r}, found {_describe(tok)}", tok.pos
            )
        if op == "in":
            self.expect("(", "'(' after 'in'")
            values = [self.literal()]
            while self.peek().kind == ",":
                self.take()
                values.append(self.literal())
            self.expect(")", "')'")
            return Comparison(field.value, "in", tuple(values), negate)
        value = self.literal()
        if op in ("like", "contains") and not isinstance(value, str):
            raise ConditionError(f"'{op}' needs a string", tok.pos)
        return Comparison(field.value, op, value, negate)

    def literal(self) -> Any:
        tok = self.take()
        if tok.kind in ("string", "number", "datetime"):
            return tok.value
        if tok.kind == "kw" and tok.value in ("true", "false", "null"):
            return {"true": True, "false": False, "null": None}[tok.value]
        raise ConditionError(f"expected a value, found {_describe(tok)}", tok.pos)

    def _is_kw(self, word: str) -> bool:
        tok = self.peek()
        return tok.kind == "kw" and tok.value == word


def _describe(tok: Token) -> str:
    if tok.kind == "end":
        return "the end"
    if tok.kind == "string":
        return f'"{tok.value}"'
    return repr(str(tok.value))


def parse(text: str):
    """The syntax tree of a conditions string (Comparison / BoolOp / Not)."""
    return _Parser(text).parse()


def fields_of(node) -> list[str]:
    """Every field path a tree names, in order."""
    if isinstance(node, Comparison):
        return [node.field]
    if isinstance(node, Not):
        return fields_of(node.item)
    return [f for item in node.items for f in fields_of(item)]


# ------------------------------------------------------------------------------------------------ evaluation
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


def _getter(path: str, canonical: dict[str, str] | None) -> Callable[[dict], Any]:
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
    get = _getter(node.field, canonical)
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
