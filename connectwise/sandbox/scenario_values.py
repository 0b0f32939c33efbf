"""Reading a scenario's JSON values, with errors that name the JSON path of the problem.

``ScenarioError(path, problem)``; ``child(path, key)`` builds ``$.records["finance/agreements"][3]``; ``as_object``,
``as_list``, ``text``, ``flag`` and ``number`` read one value or raise ScenarioError saying what it must be. Shared
by the scenario parsers (``scenario``, ``scenario_security``, ``scenario_faults``).
"""

from __future__ import annotations

import json
import re
from typing import Any, NoReturn


class ScenarioError(ValueError):
    """A scenario that cannot be served. ``path`` is the JSON path of the first problem."""

    def __init__(self, path: str, problem: str, source: str | None = None) -> None:
        self.path = path
        self.problem = problem
        self.source = source
        where = f"{source}: " if source else ""
        super().__init__(f"{where}{path}: {problem}")


_IDENT = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


def child(path: str, key: str | int) -> str:
    """The JSON path of ``key`` under ``path``: ``$.a``, ``$[3]``, ``$["finance/agreements"]``."""
    if isinstance(key, int):
        return f"{path}[{key}]"
    if _IDENT.match(key):
        return f"{path}.{key}"
    return f"{path}[{json.dumps(key)}]"


def fail(path: str, problem: str) -> NoReturn:
    """Raise ScenarioError at ``path``."""
    raise ScenarioError(path, problem)


def as_object(value: Any, path: str) -> dict:
    """``value`` when it is a JSON object."""
    if not isinstance(value, dict):
        fail(path, f"must be an object, not {type_name(value)}")
    return value


def as_list(value: Any, path: str) -> list:
    """``value`` when it is a JSON array."""
    if not isinstance(value, list):
        fail(path, f"must be an array, not {type_name(value)}")
    return value


def text(obj: dict, key: str, path: str, required: bool = True, default: str | None = None) -> str | None:
    """``obj[key]`` as a string (non-empty when ``required``); ``default`` when absent and not required."""
    if key not in obj or obj[key] is None:
        if required:
            fail(child(path, key), "required")
        return default
    value = obj[key]
    if not isinstance(value, str) or (required and not value.strip()):
        fail(child(path, key), f"must be a non-empty string, not {type_name(value)}")
    return value


def flag(obj: dict, key: str, path: str, default: bool) -> bool:
    """``obj[key]`` as true or false; ``default`` when absent."""
    if key not in obj or obj[key] is None:
        return default
    if not isinstance(obj[key], bool):
        fail(child(path, key), f"must be true or false, not {type_name(obj[key])}")
    return obj[key]


def number(obj: dict, key: str, path: str, default: float, minimum: float = 0, maximum: float | None = None):
    """``obj[key]`` as a number in ``minimum``..``maximum``; ``default`` when absent."""
    if key not in obj or obj[key] is None:
        return default
    value = obj[key]
    if isinstance(value, bool) or not isinstance(value, int | float):
        fail(child(path, key), f"must be a number, not {type_name(value)}")
    if value < minimum or (maximum is not None and value > maximum):
        bound = f"between {minimum} and {maximum}" if maximum is not None else f"at least {minimum}"
        fail(child(path, key), f"must be {bound}, not {value}")
    return value


def type_name(value: Any) -> str:
    """How a problem message names the JSON type of ``value`` (``a string``, ``null``)."""
    if value is None:
        return "null"
    return {
        bool: "a boolean",
        int: "a number",
        float: "a number",
        str: "a string",
        list: "an array",
        dict: "an object",
    }.get(type(value), type(value).__name__)
