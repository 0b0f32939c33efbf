"""The contract's data: the SPEC 2025.8 transcription (``connectwise-2025.8.json`` beside this module) read as
resources, schemas and the ``system/*`` answers, and the fields a ``conditions`` query may name.

See the package docstring (``connectwise.contract``) for what the data file holds and who relies on it.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import cache
from pathlib import Path

SPEC_VERSION = "2025.8"
DATA_FILE = Path(__file__).with_name(f"connectwise-{SPEC_VERSION}.json")

# The operations a resource entry of the data file lists -> (method, path suffix) of the request.
_OPERATIONS = {
    "list": ("GET", ""),
    "count": ("GET", "/count"),
    "get": ("GET", "/{id}"),
    "create": ("POST", ""),
    "patch": ("PATCH", "/{id}"),
}


@dataclass(frozen=True)
class Resource:
    """One resource path of the contract (``finance/agreements``) and what the product does with it."""

    path: str
    schema: str
    operations: tuple[str, ...]
    note: str = ""
    api_path: str = (
        ""  # where the API serves it when that differs from ``path`` ("x-path": a nested resource)
    )

    @property
    def properties(self) -> dict[str, dict]:
        return schema(self.schema).get("properties", {})

    @property
    def required(self) -> tuple[str, ...]:
        """Fields required on create (and present on every full record): the SPEC's ``required`` list."""
        return tuple(schema(self.schema).get("required", ()))

    def methods(self) -> list[tuple[str, str]]:
        """``[(method, path template)]`` of the operations the product uses, e.g. ``("PATCH", "x/{id}")``."""
        base = self.api_path or self.path
        return [(_OPERATIONS[op][0], base + _OPERATIONS[op][1]) for op in self.operations]


@cache
def document() -> dict:
    """The contract file as loaded (do not mutate)."""
    return json.loads(DATA_FILE.read_text(encoding="utf-8"))


def schema(name: str) -> dict:
    """A component schema by name (``Agreement``), as transcribed from the SPEC."""
    try:
        return document()["components"]["schemas"][name]
    except KeyError:
        raise KeyError(f"no schema {name!r} in the contract") from None


def resources() -> dict[str, Resource]:
    """Every resource path the product reads or writes, by path."""
    return _resources()


@cache
def _resources() -> dict[str, Resource]:
    out = {}
    for path, entry in document()["resources"].items():
        out[path] = Resource(
            path,
            entry["schema"],
            tuple(entry["operations"]),
            entry.get("x-note", ""),
            entry.get("x-path", ""),
        )
    return out


def resource(path: str) -> Resource:
    """The resource for ``path`` (without leading or trailing slashes; case-sensitive, as the SPEC writes it); a
    nested resource is found by its records key or by its API path (``finance/agreements/{parentId}/additions``)."""
    path = path.strip("/")
    found = resources().get(path)
    if found is None:
        found = next((r for r in resources().values() if r.api_path and r.api_path == path), None)
    if found is None:
        raise KeyError(path)
    return found


def system_paths() -> dict[str, dict]:
    """The non-resource answers the product reads: discovery, ``system/info``, ``system/mySecurity`` (+ items)."""
    return document()["system"]


def _ref_name(prop: dict) -> str | None:
    ref = prop.get("$ref")
    return ref.rsplit("/", 1)[-1] if ref else None


def _is_array(prop: dict) -> bool:
    t = prop.get("type")
    return t == "array" or (isinstance(t, list) and "array" in t)


@cache
def condition_fields(schema_name: str) -> frozenset[str]:
    """Lower-cased field paths a ``conditions`` query on this schema may name: every non-array property, and for
    a reference each of its sub-fields (``company/id``), plus ``_info/<anything>`` (a string map).
    The rule is ours (the SPEC lists no conditions fields): "contract.conventions.conditions"."""
    out: set[str] = set()
    for name, prop in schema(schema_name).get("properties", {}).items():
        if _is_array(prop):
            continue
        ref = _ref_name(prop)
        if ref:
            out.add(name.lower())
            for sub, sub_prop in schema(ref).get("properties", {}).items():
                if not _is_array(sub_prop):
                    out.add(f"{name}/{sub}".lower())
        else:
            out.add(name.lower())
    return frozenset(out)


def condition_field_allowed(schema_name: str, path: str) -> bool:
    """Whether ``path`` (``company/id``, ``_info/lastUpdated``) may be named in a conditions query."""
    low = path.lower()
    return low in condition_fields(schema_name) or low.startswith("_info/")


@cache
def collections(schema_name: str) -> dict[str, str]:
    """Array-of-object properties (what ``childConditions`` reaches) -> the item schema name."""
    out = {}
    for name, prop in schema(schema_name).get("properties", {}).items():
        if _is_array(prop):
            item = _ref_name(prop.get("items") or {})
            if item:
                out[name] = item
    return out


def top_level_fields(schema_name: str) -> tuple[str, ...]:
    """The property names of a schema, in the SPEC's order."""
    return tuple(schema(schema_name).get("properties", {}))
