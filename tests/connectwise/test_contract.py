"""Contract tests (issue 11): the sandbox, the client's request bodies and the shipped scenarios all conform to
the ConnectWise contract transcribed from the SPEC (connectwise/contract, docs/connectwise/REFERENCE.md).

The sandbox is driven through the real client and the real checks and repairs; a recording transport keeps every
request and answer, and each answer is validated against the schema the contract gives for its method and path.
"""

from __future__ import annotations

import json
import re
import uuid
from pathlib import Path

import httpx
import pytest

from connectwise import contract
from connectwise.checks.plans import apply_operation, plan_step
from connectwise.checks.registry import STEP_KEYS
from connectwise.checks.runner import ChosenCompany, ConnectionInfo, TenantChoices, run_steps
from connectwise.client import ConnectWiseClient, Credentials, replace_operation
from connectwise.errors import ConnectWiseError
from connectwise.sandbox import SandboxApp, load_scenario, sandbox_transport

SCENARIOS = Path(__file__).resolve().parents[2] / "connectwise" / "sandbox" / "scenarios"
SITE = ConnectionInfo("api-na.myconnectwise.net", "api-na.myconnectwise.net")
CHOICES = {
    "healthy": TenantChoices(
        [ChosenCompany(i, "annual" if i == 7 else "azure" if i == 2 else "monthly") for i in range(1, 13)]
    ),
    "broken": TenantChoices([ChosenCompany(i, "annual" if i == 12 else "monthly") for i in range(1, 17)]),
    "bare": TenantChoices([ChosenCompany(1, "annual"), ChosenCompany(2), ChosenCompany(3)]),
    "billing": TenantChoices([ChosenCompany(i) for i in range(1, 7)]),
}
REPAIRABLE = ("setup_tables", "catalog", "agreements", "existing_billing")
_API = re.compile(r"^/[^/]+/apis/3\.0/(?P<rest>.*)$")


class Recorder(httpx.BaseTransport):
    """Passes requests to the sandbox and keeps ``(method, api path, query, request body, status, answer)``."""

    def __init__(self, inner: httpx.BaseTransport) -> None:
        self.inner = inner
        self.exchanges: list[dict] = []

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        response = self.inner.handle_request(request)
        raw = response.read()  # decoded (gzip) by httpx
        headers = [
            (k, v)
            for k, v in response.headers.items()
            if k.lower() not in ("content-encoding", "content-length")
        ]
        path = request.url.path
        match = _API.match(path)
        self.exchanges.append(
            {
                "method": request.method,
                "path": match.group("rest") if match else path.lstrip("/"),
                "query": dict(request.url.params),
                "body": json.loads(request.content) if request.content else None,
                "status": response.status_code,
                "answer": json.loads(raw) if raw else None,
            }
        )
        return httpx.Response(response.status_code, headers=headers, content=raw, request=request)


def _client(app: SandboxApp, scenario, recorder: Recorder | None = None) -> ConnectWiseClient:
    member = scenario.api_members[0]
    creds = Credentials(
        "http://sandbox.test", scenario.id, member["publicKey"], member["privateKey"], str(uuid.uuid4())
    )
    return ConnectWiseClient(creds, transport=recorder or sandbox_transport(app), sleep=lambda s: None)


def _template(method: str, path: str) -> str:
    """``finance/agreements/12`` -> ``finance/agreements/{id}`` (the contract's operation paths)."""
    path = path.strip("/")
    if path.lower().startswith("login/companyinfo/"):
        return "login/companyinfo/{companyId}"
    parts = [("{id}" if p.isdigit() else p) for p in path.split("/")]
    text = "/".join(parts)
    for res in contract.resources().values():  # the SPEC's spelling (case) of the path
        for _, tmpl in res.methods():
            if (
                tmpl.lower().replace("{parentid}", "{id}") == text.lower()
            ):  # nested: finance/agreements/{parentId}/additions
                return tmpl
    for sys_path in contract.system_paths():
        if sys_path.lower() == text.lower():
            return sys_path
    return text


@pytest.fixture(scope="module")
def exercised():
    """Verify every shipped scenario, then build and apply every repair plan, recording every exchange."""
    exchanges: list[dict] = []
    plans: list = []
    for name in ("healthy", "broken", "bare", "billing"):
        scenario = load_scenario(SCENARIOS / f"{name}.json")
        app = SandboxApp([scenario], enable_faults=False)
        recorder = Recorder(sandbox_transport(app))
        with _client(app, scenario, recorder) as client:
            outcomes = run_steps(client, CHOICES[name], steps=list(STEP_KEYS), connection=SITE)
            assert [o.key for o in outcomes] == list(STEP_KEYS)
            for step in REPAIRABLE:
                plan = plan_step(client, CHOICES[name], step)
                plans.extend(plan)
                created: dict = {}
                for seq, op in enumerate(plan, start=1):
                    created[seq] = apply_operation(client, op, created).id
            # the single-record reads the product makes (the customers page and plan look-ups)
            # the contact look-up an annual agreement create makes (agreements._default_contacts)
            try:  # the least-privilege role may not read contacts: the 403 answer is checked too
                client.list(
                    "company/contacts", conditions="company/id = 1", fields="id,company/id,defaultFlag"
                )
            except ConnectWiseError:
                pass
            for path in ("company/companies", "finance/agreements", "procurement/catalog"):
                first = client.list(path, page_size=1000)[0]
                client.get(f"{path}/{first['id']}")
            if name == "billing":  # the additions paths the checks do not read: /count, one by id, create
                client.count("finance/agreements/1/additions")
                client.get("finance/agreements/1/additions/2")
                client.create(
                    "finance/agreements/4/additions", {"product": {"id": 1}, "billCustomer": "Billable"}
                )
        exchanges.extend(recorder.exchanges)
    return exchanges, plans


def test_every_sandbox_answer_conforms_to_the_contract(exercised):
    exchanges, _ = exercised
    failures = []
    for ex in exchanges:
        problems = contract.answer_problems(
            ex["method"], ex["path"], ex["status"], ex["answer"], fields=ex["query"].get("fields")
        )
        failures.extend(
            f"{ex['method']} {ex['path']} {ex['status']}: {p.where()} {p.message}" for p in problems
        )
    assert failures == [], "\n".join(failures[:20])
    assert len(exchanges) > 100


def test_the_exchanges_cover_every_path_and_method_the_product_uses(exercised):
    exchanges, _ = exercised
    seen = {(ex["method"], _template(ex["method"], ex["path"])) for ex in exchanges}
    wanted = {(m, t) for res in contract.resources().values() for m, t in res.methods()}
    wanted |= {(entry["method"], path) for path, entry in contract.system_paths().items()}
    assert wanted - seen == set()


def test_every_request_body_the_client_sends_conforms(exercised):
    exchanges, plans = exercised
    writes = [ex for ex in exchanges if ex["method"] in ("POST", "PUT", "PATCH")]
    assert {ex["method"] for ex in writes} == {"POST", "PATCH"}
    failures = []
    for ex in writes:
        path = _template(ex["method"], ex["path"]).removesuffix("/{id}")
        for p in contract.body_problems(ex["method"], path, ex["body"]):
            failures.append(f"{ex['method']} {ex['path']}: {p.where()} {p.message}")
    assert failures == [], "\n".join(failures)


def test_every_planned_body_conforms_before_it_is_sent(exercised):
    _, plans = exercised
    assert plans, "the broken and bare scenarios have repairable findings"
    failures = []
    for op in plans:
        body = _drop_placeholders(op.body)
        path = _template(op.method, op.path.replace("{$ref:", "").rstrip("}")).removesuffix("/{id}")
        for p in contract.body_problems(op.method, path, body):
            failures.append(f"{op.method} {op.path}: {p.where()} {p.message}")
    assert failures == [], "\n".join(failures)


def _drop_placeholders(value):
    """A plan's ``{"$ref": "2"}`` stands for the id an earlier operation of the plan creates."""
    if isinstance(value, dict):
        if "$ref" in value:
            return 1
        return {k: _drop_placeholders(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_drop_placeholders(v) for v in value]
    return value


@pytest.mark.parametrize("name", ["healthy", "broken", "bare", "billing"])
def test_every_shipped_scenario_record_conforms(name):
    raw = json.loads((SCENARIOS / f"{name}.json").read_text())
    failures = [
        f"{path}[{i}] {p.where()} {p.message}"
        for path, rows in raw["records"].items()
        for i, row in enumerate(rows)
        for p in contract.record_problems(path, row)
    ]
    assert failures == []
    for role in raw["securityRoles"]:
        for item in role.get("customizeItems", []):
            assert not contract.record_problems_of("MySecurityCustomizeItem", {"id": 1, **item})


# -- the contract itself --------------------------------------------------------------------------------------


def test_the_contract_states_its_spec_version():
    assert contract.SPEC_VERSION == "2025.8"
    assert contract.document()["specVersion"] == "2025.8" and "cw-api.json" in contract.document()["source"]


def test_the_contract_carries_the_specs_facts_named_in_issue_11():
    enum = contract.schema("MySecurityCustomizeItem")["properties"]["customizeIdentifier"]["enum"]
    assert {"SystemTableSetup", "FinanceAgreements"} <= set(enum) and "TableSetup" not in enum
    assert contract.schema("BillingCycle")["properties"]["identifier"]["maxLength"] == 5
    assert "inactiveFlag" not in contract.schema("BillingCycle")["properties"]
    assert "integrationXref" in contract.schema("Category")["properties"]
    assert "employeeCompRate" in contract.resource("finance/agreements/types").required
    assert "parentcompany/id" in contract.condition_fields("Company")
    assert "type/id" not in contract.condition_fields("Company")
    assert contract.collections("Company") == {
        "types": "CompanyTypeReference",
        "customFields": "CustomFieldValue",
    }


def test_patch_operations_are_built_in_one_place_as_the_reference_decides():
    # docs/connectwise/REFERENCE.md §5: scalars bare, references as {"id": N} (PatchOperation.value: assumption)
    assert replace_operation("inactiveFlag", False) == {
        "op": "replace",
        "path": "inactiveFlag",
        "value": False,
    }
    assert replace_operation("billingCycle", {"id": 2, "name": "Monthly"}) == {
        "op": "replace",
        "path": "billingCycle",
        "value": {"id": 2},
    }
    with pytest.raises(ValueError):
        replace_operation("billingCycle", {"name": "Monthly"})
    source = "\n".join(p.read_text() for p in (Path(contract.__file__).parents[1] / "checks").glob("*.py"))
    assert not re.search(
        r'"op": "replace", "path": "', source
    )  # every PATCH operation is replace_operation's


def test_a_conversion_problem_names_the_type_it_expected():
    problems = contract.body_problems("POST", "finance/agreements", {"name": "x", "company": 1})
    typed = [p for p in problems if p.kind == "type"]
    assert [(p.path, p.expected, p.value) for p in typed] == [(("company",), "CompanyReference", 1)]
