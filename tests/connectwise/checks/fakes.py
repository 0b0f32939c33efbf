"""A small in-memory ConnectWise for unit tests of the checks: the client methods the checks call, the real
error classes, a call log to assert API cost, and a healthy tenant to break one thing at a time."""

from __future__ import annotations

import copy
import functools
import itertools
import math
from types import SimpleNamespace
from typing import Any

from connectwise.errors import BadRequest, ErrorDetail, Forbidden, NotFound
from connectwise.sandbox.condition_eval import compile_conditions


@functools.lru_cache(maxsize=512)
def _predicate(conditions: str):
    return compile_conditions(conditions)


def _field(record: dict, name: str) -> Any:
    value: Any = record
    for part in name.split("/"):
        value = value.get(part) if isinstance(value, dict) else None
    return value


def matches(record: dict, conditions: str | None) -> bool:
    """Whether a record matches ConnectWise ``conditions``, evaluated by the sandbox's parser
    (``connectwise.sandbox.conditions`` and ``condition_eval``): one reading of the query language for the sandbox and the fakes."""
    return not conditions or _predicate(conditions)(record)


def _project(record: dict, fields: str | None) -> dict:
    if not fields:
        return copy.deepcopy(record)
    out: dict = {}
    for name in fields.split(","):
        parts = name.strip().split("/")
        value = _field(record, name.strip())
        if value is None and parts[0] not in record:
            continue
        target = out
        for part in parts[:-1]:
            target = target.setdefault(part, {})
            if not isinstance(target, dict):
                break
        else:
            target[parts[-1]] = copy.deepcopy(value)
    return out


class FakeClient:
    """Records per API path (no leading slash), like a sandbox scenario's ``records``."""

    def __init__(
        self,
        records: dict[str, list[dict]] | None = None,
        *,
        my_security: list[dict] | None = None,
        customize_items: list[dict] | None = None,
        forbidden: tuple[str, ...] = (),
        failures: dict[str, Exception] | None = None,
        unique: dict[str, str] | None = None,
        company_info: Any = None,
        system_info: dict | None = None,
        discover_error: Exception | None = None,
        system_info_error: Exception | None = None,
    ) -> None:
        self.records = copy.deepcopy(records or {})
        self.my_security = copy.deepcopy(my_security or [])
        self.customize_items = copy.deepcopy(customize_items or [])
        self.forbidden = tuple(forbidden)
        self.failures = dict(failures or {})
        self.unique = (
            unique
            if unique is not None
            else {"procurement/categories": "name", "procurement/catalog": "identifier"}
        )
        self.company_info = company_info or SimpleNamespace(
            company_name="Acme MSP", version_code="v2025.8", codebase="v4_6_release/", is_cloud=True
        )
        self._system_info = system_info or {"version": "v2025.8", "isCloud": True, "cloudRegion": "NA"}
        self.discover_error = discover_error
        self.system_info_error = system_info_error
        self.calls: list[tuple[str, str]] = []
        self._ids = itertools.count(1000)

    # -- bookkeeping -------------------------------------------------------------------------------------

    @property
    def stats(self):
        return SimpleNamespace(calls=len(self.calls), retries=0, errors=0, elapsed_ms=0.0)

    def calls_to(self, method: str, path: str) -> int:
        return sum(1 for m, p in self.calls if m == method and p == path)

    def _call(self, method: str, path: str) -> str:
        path = path.strip("/")
        self.calls.append((method, path))
        for prefix, exc in self.failures.items():
            if path.startswith(prefix):
                raise exc
        for prefix in self.forbidden:
            if path.startswith(prefix):
                raise Forbidden(f"{method} {path} failed: HTTP 403", status=403, method=method, path=path)
        return path

    def _collection(self, path: str) -> list[dict]:
        parts = path.split("/")
        if len(parts) == 4 and parts[:2] == ["finance", "agreements"] and parts[3] == "additions":
            # the nested resource: a scenario keeps every addition in one list, each with its agreementId
            return [
                r
                for r in self.records.get("finance/agreements/additions", [])
                if r.get("agreementId") == int(parts[2])
            ]
        if path not in self.records:
            raise NotFound(f"GET {path} failed: HTTP 404", status=404, method="GET", path=path)
        return self.records[path]

    # -- the client surface the checks use ---------------------------------------------------------------

    def discover(self):
        self.calls.append(("GET", "login/companyinfo"))
        if self.discover_error:
            raise self.discover_error
        return self.company_info

    def system_info(self) -> dict:
        self._call("GET", "system/info")
        if self.system_info_error:
            raise self.system_info_error
        return dict(self._system_info)

    def list(self, path, *, conditions=None, fields=None, order_by=None, page_size=1000, **_):
        path = self._call("GET", path)
        rows = [r for r in self._collection(path) if matches(r, conditions)]
        for _page in range(2, max(1, math.ceil(len(rows) / page_size)) + 1):
            self.calls.append(("GET", path))  # one call per further page; the first was logged above
        self.calls.append(("GET", f"{path}/count"))
        return [_project(r, fields) for r in rows]

    def count(self, path, *, conditions=None, **_):
        path = self._call("GET", f"{path.strip('/')}/count").removesuffix("/count")
        return sum(1 for r in self._collection(path) if matches(r, conditions))

    def get(self, path, *, params=None, fields=None):
        path = self._call("GET", path)
        if path == "system/mySecurity":
            return copy.deepcopy(self.my_security)
        if path == "system/mySecurity/customizeItems":
            return copy.deepcopy(self.customize_items)
        collection, _, record_id = path.rpartition("/")
        if record_id.isdigit():
            for r in self._collection(collection):
                if r["id"] == int(record_id):
                    return _project(r, fields)
            raise NotFound(f"GET {path} failed: HTTP 404", status=404, method="GET", path=path)
        params = params or {}
        rows = [r for r in self._collection(path) if matches(r, params.get("conditions"))]
        return [_project(r, fields) for r in rows[: params.get("pageSize", 25)]]

    def create(self, path, body):
        path = self._call("POST", path)
        rows = self.records.setdefault(path, [])
        key = self.unique.get(path)
        if key and any(str(r.get(key, "")).casefold() == str(body.get(key, "")).casefold() for r in rows):
            raise BadRequest(
                f"POST {path} failed: HTTP 400 InvalidObject",
                errors=[ErrorDetail(code="ObjectExists", field=key)],
                status=400,
                code="InvalidObject",
                method="POST",
                path=path,
            )
        record = {"id": next(self._ids), **copy.deepcopy(body)}
        rows.append(record)
        return copy.deepcopy(record)

    def patch(self, path, operations):
        path = self._call("PATCH", path)
        collection, _, record_id = path.rpartition("/")
        for r in self._collection(collection):
            if r["id"] == int(record_id):
                for op in operations:
                    assert op["op"] == "replace", op
                    r[op["path"]] = copy.deepcopy(op["value"])
                return copy.deepcopy(r)
        raise NotFound(f"PATCH {path} failed: HTTP 404", status=404, method="PATCH", path=path)

    def map_concurrent(self, fn, items):
        return [fn(i) for i in items]


# -- a healthy tenant ---------------------------------------------------------------------------------------


def security_row(module, function, add="None", edit="None", delete="None", inquire="None") -> dict:
    return {
        "moduleName": module,
        "moduleFunctionName": function,
        "addLevel": add,
        "editLevel": edit,
        "deleteLevel": delete,
        "inquireLevel": inquire,
    }


def healthy_security() -> list[dict]:
    return [
        security_row("Companies", "Company Maintenance", inquire="All"),
        security_row("Companies", "Contacts"),
        security_row("Finance", "Agreements", add="All", edit="All", inquire="All"),
        security_row("Procurement", "Product Catalog", add="All", edit="All", inquire="All"),
        security_row("Procurement", "Products", add="All", edit="All", inquire="All"),
        security_row("System", "Table Setup", add="All", edit="All", inquire="All"),
        security_row("System", "Members"),
    ]


def healthy_customize_items() -> list[dict]:
    items = [
        "Company / Company Status",
        "Products / Category",
        "Products / Subcategories",
        "Product",
        "Product Type",
        "Product / UOM",
    ]
    return [{"customizeIdentifier": "TableSetup", "itemIdentifier": i} for i in items] + [
        {"customizeIdentifier": "Agreements", "itemIdentifier": "O365"},
        {"customizeIdentifier": "Agreements", "itemIdentifier": "Annual"},
    ]


def company(id, name, status_id=1, status="Active", **extra) -> dict:
    return {
        "id": id,
        "identifier": name.split()[0],
        "name": name,
        "status": {"id": status_id, "name": status},
        "deletedFlag": False,
        "defaultContact": {"id": id * 100},
        **extra,
    }


def agreement(id, company_id, name="O365", type_id=3, type_name="O365", cycle=1, **extra) -> dict:
    return {
        "id": id,
        "name": name,
        "type": {"id": type_id, "name": type_name},
        "company": {"id": company_id},
        "agreementStatus": "Active",
        "cancelledFlag": False,
        "billingCycle": {"id": cycle, "name": {1: "Monthly", 2: "Quarterly", 4: "One Time"}.get(cycle, "?")},
        "invoicingCycle": "CalendarYear",
        "prorateFlag": True,
        **extra,
    }


def healthy_records() -> dict[str, list[dict]]:
    return {
        "company/companies": [company(2, "Contoso Ltd"), company(3, "Fabrikam Inc")],
        "company/companies/statuses": [
            {"id": 1, "name": "Active", "inactiveFlag": False},
            {"id": 2, "name": "Inactive", "inactiveFlag": True},
            {"id": 3, "name": "Prospect", "inactiveFlag": False},
        ],
        "company/contacts": [{"id": 200, "company": {"id": 2}}, {"id": 300, "company": {"id": 3}}],
        "finance/agreements": [agreement(10, 2), agreement(11, 3)],
        "finance/agreements/types": [
            {"id": 3, "name": "O365", "inactiveFlag": False},
            {"id": 5, "name": "Annual", "inactiveFlag": False},
        ],
        "finance/billingCycles": [
            {"id": 1, "identifier": "M", "name": "Monthly", "billingOptions": "Monthly"},
            {"id": 2, "identifier": "Q", "name": "Quarterly", "billingOptions": "Quarterly"},
            {"id": 4, "identifier": "O", "name": "One Time", "billingOptions": "NotRecurring"},
        ],
        "procurement/catalog": [
            {"id": 12, "identifier": "misc", "description": "Miscellaneous", "inactiveFlag": False},
            {"id": 13, "identifier": "laptop", "description": "Laptop", "inactiveFlag": True},
        ],
        "procurement/categories": [{"id": 1, "name": "Miscellaneous", "inactiveFlag": False}],
        "procurement/subcategories": [
            {
                "id": 1,
                "name": "Miscellaneous",
                "category": {"id": 1, "name": "Miscellaneous"},
                "inactiveFlag": False,
            }
        ],
        "procurement/types": [{"id": 1, "name": "Miscellaneous", "inactiveFlag": False}],
        "procurement/unitOfMeasures": [{"id": 1, "name": "Each", "inactiveFlag": False}],
    }


def healthy_client(**kwargs) -> FakeClient:
    records = kwargs.pop("records", None) or healthy_records()
    kwargs.setdefault("my_security", healthy_security())
    kwargs.setdefault("customize_items", healthy_customize_items())
    return FakeClient(records, **kwargs)


def codes_of(outcome) -> list[str]:
    return [f.code for f in outcome.findings]


def run_check(key: str, client, choices=None, connection=None):
    """One step's outcome the way the runner evaluates it (failed reads become `error`), without the
    connection step in front."""
    from connectwise.checks.context import RunContext
    from connectwise.checks.registry import step_module
    from connectwise.checks.runner import TenantChoices, evaluate

    choices = choices or TenantChoices()
    ctx = RunContext(client, choices, connection)
    ctx.prefetch(step_module(key).needs(choices))
    return evaluate(key, ctx)
