"""Company names compared the way a person would: "Contoso Ltd." and "CONTOSO LIMITED" are the same customer.

Used by the customers step (duplicate names, unmatched billing customers) and by the CSV import on the customers
page (match suggestions). docs/connectwise/REFERENCE.md §7: duplicates such as "Ltd" vs "Limited" are a common trip-up.
"""

from __future__ import annotations

import difflib
import re
import unicodedata
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

# Legal-form words dropped from the end of a name (after punctuation is gone, so "L.L.C." is "llc" here).
LEGAL_SUFFIXES: frozenset[str] = frozenset(
    {
        "ltd",
        "limited",
        "inc",
        "incorporated",
        "llc",
        "llp",
        "lp",
        "plc",
        "pty",
        "pte",
        "gmbh",
        "mbh",
        "ag",
        "corp",
        "corporation",
        "co",
        "company",
        "bv",
        "nv",
        "sa",
        "sas",
        "sarl",
        "srl",
        "spa",
        "ab",
        "oy",
        "as",
        "aps",
        "kk",
        "pc",
    }
)

_DROP = re.compile(r"['’`.]")  # dropped without a gap: "L.L.C." -> "LLC", "O'Neil" -> "ONeil"
_NON_WORD = re.compile(r"[^0-9a-z]+")


@lru_cache(maxsize=65536)  # a worker re-checks the same few thousand names every day
def normalize_company_name(name: str) -> str:
    """Lower case, accents and punctuation gone, "&" read as "and", whitespace collapsed, and trailing legal
    forms (Ltd, Limited, Inc, LLC, Pty Ltd, GmbH, Corp, Co, ...) and a leading "The" removed.

    A name made only of such words keeps its last word, so "The Company" never normalises to "".
    """
    text = name or ""
    if not text.isascii():  # most names are ASCII: skip the per-character pass (a large tenant has thousands)
        text = unicodedata.normalize("NFKD", text)
        text = "".join(ch for ch in text if not unicodedata.combining(ch))
    text = text.casefold()
    text = text.replace("&", " and ").replace("+", " and ")
    text = _DROP.sub("", text)
    words = _NON_WORD.sub(" ", text).split()
    if len(words) > 1 and words[0] == "the":
        words.pop(0)
    stripped = False
    while len(words) > 1 and words[-1] in LEGAL_SUFFIXES:
        words.pop()
        stripped = True
    if stripped and len(words) > 1 and words[-1] == "and":  # "Smith & Co" -> "smith"
        words.pop()
    return " ".join(words)


@dataclass(frozen=True)
class Suggestion:
    company_id: int
    name: str
    score: float  # 1.0 for the same normalised name, else the similarity ratio
    exact: bool


class CompanyIndex:
    """Normalised names of a company directory, built once for many look-ups (a CSV of hundreds of rows).

    ``directory`` rows are mappings or objects with ``id`` (or ``cw_company_id``) and ``name``.
    """

    def __init__(self, directory: Iterable[Any]) -> None:
        self.by_normalized: dict[str, list[tuple[int, str]]] = {}
        for row in directory:
            company_id, name = _id_and_name(row)
            if company_id is None:
                continue
            self.by_normalized.setdefault(normalize_company_name(name), []).append((company_id, name))
        self._keys = list(self.by_normalized)

    def exact(self, name: str) -> list[tuple[int, str]]:
        return list(self.by_normalized.get(normalize_company_name(name), []))

    def suggest(self, name: str, limit: int = 5, cutoff: float = 0.8) -> list[Suggestion]:
        key = normalize_company_name(name)
        out = [Suggestion(cid, cname, 1.0, True) for cid, cname in self.by_normalized.get(key, [])]
        if len(out) < limit and key:
            close = difflib.get_close_matches(key, self._keys, n=limit, cutoff=cutoff)
            for other in close:
                if other == key:
                    continue
                ratio = round(difflib.SequenceMatcher(None, key, other).ratio(), 3)
                out.extend(Suggestion(cid, cname, ratio, False) for cid, cname in self.by_normalized[other])
        out.sort(key=lambda s: (-s.score, s.name.casefold(), s.company_id))
        return out[:limit]


def suggest_matches(
    name: str, directory: Iterable[Any] | CompanyIndex, limit: int = 5, cutoff: float = 0.8
) -> list[Suggestion]:
    """Companies that may be the billing customer ``name``: same normalised name first, then similar ones.

    Pass a ``CompanyIndex`` when matching many names against the same directory.
    """
    index = directory if isinstance(directory, CompanyIndex) else CompanyIndex(directory)
    return index.suggest(name, limit=limit, cutoff=cutoff)


def _id_and_name(row: Any) -> tuple[int | None, str]:
    if isinstance(row, Mapping):
        company_id = row.get("id", row.get("cw_company_id"))
        name = row.get("name") or ""
    else:
        company_id = getattr(row, "cw_company_id", None)
        if company_id is None:
            company_id = getattr(row, "id", None)
        name = getattr(row, "name", "") or ""
    return (int(company_id) if company_id is not None else None), str(name)
