"""One served company's mutable state: its tables, faults, random source and request log, behind one lock.

Records are copy-on-write: a write replaces the stored dict instead of changing it, so a reader can take a
snapshot of a table under the lock and filter, sort and encode it outside the lock.
"""

from __future__ import annotations

import copy
import json
import random
import threading
from collections import Counter
from collections.abc import Callable
from typing import Any

from .resources import (
    KNOWN_MODULE_FUNCTIONS,
    LEVEL_FIELDS,
    RESOURCES,
    ResourceSpec,
    norm_identifier,
    norm_text,
)
from .scenario import Scenario
from .scenario_faults import FAULT_KINDS


class Table:
    """The records of one API path, by id, kept in id order (ConnectWise's default order)."""

    def __init__(self, spec: ResourceSpec, rows: list[dict]) -> None:
        self.spec = spec
        self.rows: dict[int, dict] = {r["id"]: r for r in sorted(rows, key=lambda r: r["id"])}
        self.next_id = max(self.rows, default=0) + 1
        self.version = 0  # bumped by every write; cached views of an older version are stale
        self._views: dict[tuple, tuple[int, list[dict]]] = {}
        self._fields = (
            frozenset(spec.fields).union(*(r.keys() for r in rows)) if rows else frozenset(spec.fields)
        )

    @property
    def known_fields(self) -> frozenset[str]:
        return self._fields

    def view(self, key: tuple, compute: Callable[[list[dict]], list[dict]], lock) -> list[dict]:
        """The filtered (and ordered) rows for one query, cached until the table changes: the pages of a large
        list are served concurrently and would each filter every record again."""
        with lock:
            hit = self._views.get(key)
            if hit is not None and hit[0] == self.version:
                return hit[1]
            version, rows = self.version, list(self.rows.values())
        result = compute(rows)
        with lock:
            if len(self._views) > 64:
                self._views.clear()
            self._views[key] = (version, result)
        return result

    def delete(self, record_id: int) -> None:
        del self.rows[record_id]
        self.version += 1

    def insert(self, record: dict) -> dict:
        self.version += 1
        record["id"] = self.next_id
        self.next_id += 1
        self.rows[record["id"]] = record
        self._fields = self._fields.union(record.keys())
        return record

    def replace(self, record: dict) -> None:
        self.version += 1
        self.rows[record["id"]] = record
        self._fields = self._fields.union(record.keys())


class Tenant:
    """The live copy of one scenario."""

    def __init__(self, scenario: Scenario) -> None:
        self.scenario = scenario
        self.lock = threading.RLock()
        self.requests: Counter[str] = Counter()
        self.reset()

    @property
    def id(self) -> str:
        return self.scenario.id

    @property
    def codebase(self) -> str:
        return self.scenario.codebase

    @property
    def company(self) -> dict:
        return self.scenario.company

    def reset(self) -> None:
        """Back to the scenario as loaded: records, roles and faults (the request log is kept)."""
        with self.lock:
            records = copy.deepcopy(self.scenario.records)
            self.tables = {path: Table(spec, records.get(path, [])) for path, spec in RESOURCES.items()}
            self.roles = copy.deepcopy(self.scenario.security_roles)
            self.next_role_id = max((r["id"] for r in self.roles), default=0) + 1
            self.members_by_public = {m["publicKey"]: m for m in self.scenario.api_members}
            self._role_index: dict[str, dict] = {}
            self._encoded: dict[tuple[str, str | None, int], tuple[dict, bytes]] = {}
            self.set_faults(self.scenario.faults)

    MAX_ENCODED = 200_000

    def encode_rows(
        self, path: str, rows: list[dict], fields: str | None, project: Callable[[dict], dict] | None
    ) -> bytes:
        """A JSON array of ``rows``; each record's encoding is cached while the stored dict stays the same object
        (writes replace records, so a changed record is re-encoded)."""
        cache = self._encoded
        if len(cache) > self.MAX_ENCODED:
            cache.clear()
        parts = []
        for record in rows:
            key = (path, fields, record["id"])
            hit = cache.get(key)
            if hit is None or hit[0] is not record:
                data = json.dumps(
                    project(record) if project else record, separators=(",", ":"), ensure_ascii=False
                )
                hit = (record, data.encode("utf-8"))
                cache[key] = hit
            parts.append(hit[1])
        return b"[" + b",".join(parts) + b"]"

    def set_faults(self, faults: dict[str, Any]) -> None:
        with self.lock:
            self.faults = copy.deepcopy(faults)
            self.fault_queue = list(self.faults.get("queue") or [])
            self.rng = random.Random(self.faults.get("seed", 1))

    def draw_fault(self, api_path: str, method: str = "GET") -> str | None:
        """The fault for this request, if any: the queue first, then one draw from the seeded random source."""
        faults = self.faults
        prefixes = faults.get("paths")
        if prefixes and not any(api_path.lower().startswith(p.lower()) for p in prefixes):
            return None
        methods = faults.get("methods")
        if methods and method.upper() not in methods:
            return None
        with self.lock:
            if self.fault_queue:
                return self.fault_queue.pop(0)
            rates = faults["rates"]
            if not any(rates.values()):
                return None
            r = self.rng.random()
            acc = 0.0
            for kind in FAULT_KINDS:
                acc += rates.get(kind, 0.0)
                if r < acc:
                    return kind
        return None

    # ----------------------------------------------------------------------------------------------- security
    def role_of(self, member: dict) -> dict | None:
        wanted = member["securityRole"].casefold()
        return next((r for r in self.roles if r["name"].casefold() == wanted), None)

    def role_index(self, role: dict) -> dict:
        """Levels by (module, function) and allowed customize items, computed once per role version."""
        key = f"{role['id']}:{id(role)}"
        cached = self._role_index.get(key)
        if cached is None:
            levels = {
                (norm_text(s["moduleName"]), norm_text(s["moduleFunctionName"])): s for s in role["settings"]
            }
            items: dict[str, set[str]] = {}
            for item in role["customizeItems"]:
                items.setdefault(norm_identifier(item["customizeIdentifier"]), set()).add(
                    norm_text(item["itemIdentifier"])
                )
            cached = {"levels": levels, "items": items}
            self._role_index[key] = cached
        return cached

    def level(self, role: dict, function: tuple[str, str], level_field: str) -> str:
        row = self.role_index(role)["levels"].get((norm_text(function[0]), norm_text(function[1])))
        return (row or {}).get(level_field, "None")

    def has_item(self, role: dict, customize: str, item: str) -> bool:
        return norm_text(item) in self.role_index(role)["items"].get(norm_identifier(customize), set())

    def security_rows(self, role: dict) -> list[dict]:
        """mySecurity / role settings: the role's rows plus every other known function at None."""
        rows = []
        listed = set()
        for setting in role["settings"]:
            listed.add((norm_text(setting["moduleName"]), norm_text(setting["moduleFunctionName"])))
            rows.append(setting)
        for module, function in KNOWN_MODULE_FUNCTIONS:
            if (norm_text(module), norm_text(function)) in listed:
                continue
            rows.append(
                {
                    "moduleName": module,
                    "moduleFunctionName": function,
                    "moduleIdentifier": "".join(ch for ch in module.title() if ch.isalnum()),
                    "moduleFunctionIdentifier": "".join(ch for ch in function.title() if ch.isalnum()),
                    **dict.fromkeys(LEVEL_FIELDS, "None"),
                }
            )
        return rows
