"""The ``conditions`` query language of ConnectWise (docs/connectwise/REFERENCE.md §4): tokenizer and parser.

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

``parse(text)`` gives the syntax tree (``Comparison``, ``BoolOp``, ``Not``) or raises ConditionError with the
position; ``condition_eval.compile_conditions`` turns a tree into a predicate over records.
"""

from __future__ import annotations

import re
from collections.abc import Callable
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
