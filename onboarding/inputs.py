"""Strict parsing of user input: one set of helpers for every view, form and command that reads ids, choices and
names from a person.

A bad value never reaches the database (where a 25-digit id is an ``OverflowError`` on SQLite and a
``DataError`` on PostgreSQL, and a NUL character is refused by PostgreSQL): the helpers raise ``BadInput``, which
``BadInputMiddleware`` answers with a 400 page that says which field was wrong, or which a form turns into an
error next to the field (``validate_name``).

ConnectWise record ids are 32-bit integers in the OpenAPI spec (``"format": "int32"`` on ``id`` of Company,
Agreement and the other records we read), and the columns that keep them (``CompanyChoice.cw_company_id``,
``agreement_id``) are 32-bit integers too, so ``parse_id`` refuses anything outside 1..2,147,483,647.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable

from django import forms
from django.shortcuts import render
from django.utils.http import url_has_allowed_host_and_scheme

from .api.problems import invalid_request, is_api_request

INT32_MAX = 2**31 - 1
BIGINT_MAX = 2**63 - 1
_DIGITS = re.compile(r"[0-9]{1,19}")  # ASCII digits only: int() also reads "١٢" and " 12 "


class BadInput(ValueError):
    """A value from a request that cannot be used; ``str(exc)`` is a plain-language message naming the field."""

    def __init__(self, field: str, message: str) -> None:
        self.field = field
        super().__init__(f"{field}: {message}")


def _shown(value: object) -> str:
    text = str(value)
    text = "".join(c if c.isprintable() else "?" for c in text[:30])
    return repr(text + ("…" if len(str(value)) > 30 else ""))


def parse_id(value: object, *, field: str, maximum: int = INT32_MAX) -> int:
    """A positive record id written with ASCII digits, at most ``maximum`` (default: 32 bits, like ConnectWise's
    ids). Raises ``BadInput`` naming ``field`` for anything else (empty, signs, spaces, other digits, too big)."""
    text = value if isinstance(value, str) else ""
    if not _DIGITS.fullmatch(text) or not 1 <= int(text) <= maximum:
        raise BadInput(field, f"{_shown(value)} is not a valid id")
    return int(text)


def parse_optional_id(value: object, *, field: str, maximum: int = INT32_MAX) -> int | None:
    """Like ``parse_id``, but an empty value (a "none" choice in a select) is None."""
    if value is None or value == "":
        return None
    return parse_id(value, field=field, maximum=maximum)


def parse_ids(
    values: Iterable[object], *, field: str, limit: int = 10_000, maximum: int = INT32_MAX
) -> list[int]:
    """Every value must be an id (a checkbox list: ``company=1&company=2``); repeats are kept once, in order.
    More than ``limit`` values is refused too, so one request cannot build an unbounded query."""
    values = list(values)
    if len(values) > limit:
        raise BadInput(field, f"at most {limit} values at once")
    return list(dict.fromkeys(parse_id(v, field=field, maximum=maximum) for v in values))


def parse_choice(value: object, choices: Iterable[str], *, field: str, default: str | None = None) -> str:
    """One of ``choices``; a missing value is ``default`` when one is given. Raises ``BadInput`` otherwise."""
    allowed = list(choices)
    if (value is None or value == "") and default is not None:
        return default
    if not isinstance(value, str) or value not in allowed:
        raise BadInput(field, f"{_shown(value)} is not one of {', '.join(allowed)}")
    return value


def control_characters(text: str) -> list[str]:
    """The control and format characters in ``text`` (newlines, tabs, NUL, escape, bidi overrides such as
    U+202E), as ``U+XXXX`` names; empty when the text is printable."""
    found = []
    for char in text:
        if unicodedata.category(char) in ("Cc", "Cf", "Cs", "Co", "Cn") or char in "\u2028\u2029":
            name = f"U+{ord(char):04X}"
            if name not in found:
                found.append(name)
    return found


def validate_name(text: str, *, what: str = "A name") -> str:
    """A person's or an organisation's name for display and e-mail: trimmed, inner runs of spaces made one;
    control characters are refused with a ``forms.ValidationError`` (they break e-mail headers and logs, and
    bidi overrides disguise a name)."""
    bad = control_characters(text)
    if bad:
        raise forms.ValidationError(
            f"{what} cannot contain control characters such as line breaks or tabs ({', '.join(bad[:3])})."
        )
    return re.sub(r"\s+", " ", text).strip()


def single_line(text: str, *, max_length: int = 200) -> str:
    """Safe for an e-mail subject or a log line: every control character and line break becomes a space, runs of
    spaces become one, and the result is cut at ``max_length`` characters."""
    cleaned = "".join(" " if control_characters(c) else c for c in str(text))
    cleaned = re.sub(r"\s+", " ", cleaned).strip()
    return cleaned if len(cleaned) <= max_length else cleaned[: max_length - 1] + "…"


def has_nul(request) -> str | None:
    """The name of the first query or form field that holds a NUL character, else None. PostgreSQL refuses NUL in
    text, so such a value must never reach a query."""
    for source in (request.GET, request.POST):
        for key, values in source.lists():
            if "\x00" in key or any("\x00" in v for v in values if isinstance(v, str)):
                return key.replace("\x00", "?")
    return None


def bad_request(request, message: str):
    """The 400 page in the product's look, saying what was wrong."""
    return render(request, "errors/400.html", {"reason": message}, status=400)


class BadInputMiddleware:
    """Turns ``BadInput`` raised anywhere in a view into a 400 page, and refuses a request whose query or form
    holds a NUL character before any view runs."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        field = has_nul(request) if request.method in ("GET", "HEAD", "POST") else None
        if field is not None:
            if is_api_request(request):
                return invalid_request(
                    request, f"{field}: contains a NUL character", {field: ["contains a NUL character"]}
                )
            return bad_request(request, f"{field}: contains a NUL character")
        return self.get_response(request)

    def process_exception(self, request, exception):
        if isinstance(exception, BadInput):
            if is_api_request(request):
                return invalid_request(request, str(exception))
            return bad_request(request, str(exception))
        return None


def safe_next(request, default: str) -> str:
    """The ``next`` form field when it is a path on this site without control characters (a line break in a
    Location header is a 500, and ``//host`` or ``https://host`` would send the person elsewhere), else
    ``default``."""
    target = request.POST.get("next") or ""
    if (
        target.startswith("/")
        and not control_characters(target)
        and url_has_allowed_host_and_scheme(target, allowed_hosts={request.get_host()}, require_https=False)
    ):
        return target
    return default
