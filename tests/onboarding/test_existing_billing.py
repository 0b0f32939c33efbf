"""The first-sync rehearsal end to end over the in-process sandbox (billing.json): verify_tenant --step
existing_billing, repair_tenant --cutover, preview_sync, the scheduled verify's weekly rule, and the pages."""

from __future__ import annotations

import csv
import io
import json
import re
import time
from datetime import date, timedelta
from pathlib import Path

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.urls import reverse
from django.utils import timezone

from connectwise.checks import codes
from connectwise.preview import CAUSES, export_rows
from connectwise.sandbox import SandboxApp, load_scenario, parse_scenario, sandbox_transport
from onboarding import billing, cw, tasks
from onboarding.models import AuditEvent, CompanyChoice, RepairPlan, SyncPreview, Tenant

pytestmark = pytest.mark.django_db

SCENARIOS = Path(__file__).resolve().parents[2] / "connectwise" / "sandbox" / "scenarios"
FLAGGED = {1, 3, 4, 5}
CUTOVER = (timezone.now().date() + timedelta(days=40)).isoformat()


def run(*args) -> str:
    out = io.StringIO()
    call_command(*args, stdout=out, stderr=io.StringIO())
    return out.getvalue()


def writes(app: SandboxApp) -> dict[str, int]:
    return {k: v for k, v in app.request_counts("billco")["billco"].items() if not k.startswith("GET")}


def additions(app: SandboxApp) -> dict[int, dict]:
    return dict(app.tenant("billco").tables["finance/agreements/additions"].rows)


@pytest.fixture
def sandbox(settings, monkeypatch):
    app = SandboxApp([load_scenario(SCENARIOS / "billing.json")], sleep=lambda s: None)
    settings.CONNECTWISE_SANDBOX_URL = "http://sandbox.test"
    monkeypatch.setattr(cw, "TRANSPORT_FACTORY", lambda: sandbox_transport(app))
    return app


@pytest.fixture
def billco(sandbox, monkeypatch, tmp_path) -> Tenant:
    monkeypatch.setenv("CW_PRIVATE_KEY", "billpriv-0123456789")
    run(
        "tenant_connect", "billco", "--site", "sandbox.test", "--company", "billco", "--public-key", "billpub"
    )
    path = tmp_path / "customers.csv"
    path.write_text("company,motion\n" + "".join(f"{i},monthly\n" for i in range(1, 7)) + "7,annual\n")
    run("tenant_customers", "billco", "--csv", str(path))
    return Tenant.objects.get(slug="billco")


def verify(*steps: str) -> dict:
    args = ["verify_tenant", "billco", "--json"]
    for s in steps:
        args += ["--step", s]
    return json.loads(run(*args))


def step(result: dict, key: str) -> dict:
    return next(s for s in result["steps"] if s["key"] == key)


# verify and readiness --------------------------------------------------------------------------------------------


def test_verify_names_each_customer_billing_seats_and_the_tenant_stays_ready(billco):
    result = verify()
    eb = step(result, "existing_billing")
    assert eb["status"] == "warn" and result["ready"] is True
    subjects = {f["code"]: [] for f in eb["findings"]}
    for f in eb["findings"]:
        subjects[f["code"]].append(f["subject"])
    assert sorted(subjects[codes.BILLING_EXISTING_ADDITIONS]) == [
        'Agreement "Contoso Ltd - O365" (id 1) of Contoso Ltd',
        'Agreement "Fabrikam Inc - O365" (id 2) of Fabrikam Inc',
        'Agreement "Northwind Traders - O365" (id 3) of Northwind Traders',
    ]
    assert subjects[codes.BILLING_ADDITION_ON_OTHER_AGREEMENT] == [
        'Agreement "Tailspin Toys - Azure Plan" (id 16) of Tailspin Toys'
    ]
    assert all(f["repairable"] and f["severity"] == "warning" for f in eb["findings"])


def test_the_step_alone_never_blocks_readiness_even_when_it_cannot_check(billco, sandbox):
    assert verify()["ready"] is True
    sandbox.set_faults({"rates": {"500": 1.0}, "paths": ["finance/agreements/1/additions"]}, "billco")
    result = verify("existing_billing")
    assert step(result, "existing_billing")["status"] == "error"
    billco.refresh_from_db()
    assert billco.ready is True and billco.first_open_step == ""


# the cutover repair ----------------------------------------------------------------------------------------------


def test_the_cutover_plan_ends_exactly_the_flagged_additions_once_and_the_step_then_passes(billco, sandbox):
    before = additions(sandbox)
    out = run("repair_tenant", "billco", "--step", "existing_billing", "--cutover", CUTOVER)
    assert out.count("PATCH") == 4 and "Nothing was changed" in out
    assert writes(sandbox) == {} and Tenant.objects.get(slug="billco").billing_cutover is None

    result = json.loads(
        run("repair_tenant", "billco", "--step", "existing_billing", "--cutover", CUTOVER, "--yes", "--json")
    )
    assert step(result, "existing_billing")["status"] == "pass" and result["ready"] is True
    after = additions(sandbox)
    for aid, record in before.items():
        if aid in FLAGGED:
            assert after[aid]["cancelledDate"] == f"{CUTOVER}T00:00:00Z", aid
            assert {k: v for k, v in after[aid].items() if k != "cancelledDate"} == {
                k: v for k, v in record.items() if k != "cancelledDate"
            }
        else:
            assert after[aid] == record, aid  # nothing else touched
    assert writes(sandbox) == {
        f"PATCH finance/agreements/{a}/additions/{i}": 1 for a, i in ((1, 1), (2, 3), (3, 4), (16, 5))
    }
    plan = RepairPlan.objects.get(tenant=billco, step="existing_billing", status=RepairPlan.Status.APPLIED)
    fabrikam = plan.operations.get(path="finance/agreements/2/additions/3")
    assert fabrikam.before == {"cancelledDate": "2030-12-31T00:00:00Z"} and fabrikam.status == "done"
    assert plan.approved_at is not None
    assert AuditEvent.objects.filter(tenant=billco, kind=AuditEvent.Kind.CUTOVER_SET).count() == 1
    assert AuditEvent.objects.filter(tenant=billco, kind=AuditEvent.Kind.OPERATION_APPLIED).count() == 4

    sandbox.clear_requests()
    again = json.loads(
        run("repair_tenant", "billco", "--step", "existing_billing", "--cutover", CUTOVER, "--yes", "--json")
    )
    assert writes(sandbox) == {}  # a second apply changes nothing
    assert "existing_billing" not in {s["key"] for s in again["steps"]}  # not due: nothing changed since
    assert step(verify("existing_billing"), "existing_billing")["status"] == "pass"
    assert AuditEvent.objects.filter(tenant=billco, kind=AuditEvent.Kind.CUTOVER_SET).count() == 1


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--step", "existing_billing", "--cutover", "2020-01-31"], "in the past"),
        (["--step", "existing_billing", "--cutover", "31/12/2026"], "not a date"),
        (["--step", "existing_billing", "--cutover", "2999-01-01"], "more than a year ahead"),
        (["--cutover", "2026-12-31"], "--cutover goes with --step existing_billing"),
    ],
)
def test_a_bad_cutover_is_refused_and_changes_nothing(billco, sandbox, args, message):
    with pytest.raises(CommandError, match=message):
        run("repair_tenant", "billco", *args, "--yes")
    assert writes(sandbox) == {} and Tenant.objects.get(slug="billco").billing_cutover is None
    assert not RepairPlan.objects.filter(tenant=billco).exists()


def test_a_plain_repair_never_ends_additions(billco, sandbox):
    run("repair_tenant", "billco", "--yes")
    assert writes(sandbox) == {}


# the scheduled verify ---------------------------------------------------------------------------------------------


def test_the_scheduled_verify_runs_the_step_at_most_weekly_and_after_choices_change(billco, settings):
    settings.EXISTING_BILLING_INTERVAL_DAYS = 7
    now = timezone.now()
    assert "existing_billing" in billing.scheduled_steps(billco, now)  # never ran
    verify("existing_billing")
    assert billing.scheduled_steps(billco, now + timedelta(days=1)) == [
        "connection", "security_role", "catalog", "setup_tables", "customers", "agreements"
    ]  # fmt: skip
    assert "existing_billing" in billing.scheduled_steps(billco, now + timedelta(days=8))
    AuditEvent.record(AuditEvent.Kind.CUSTOMERS_CHANGED, tenant=billco, actor="test", message="changed")
    assert "existing_billing" in billing.scheduled_steps(billco, now + timedelta(days=1))


def test_schedule_verifications_passes_the_steps(billco, monkeypatch):
    from onboarding.models import CheckRun

    monkeypatch.setattr(tasks.run_checks, "delay", lambda *a, **k: None)
    verify("existing_billing")
    Tenant.objects.filter(pk=billco.pk).update(next_check_at=None, last_checked_at=None)
    assert tasks.schedule_verifications() == 1
    run_ = CheckRun.objects.filter(tenant=billco, trigger=CheckRun.Trigger.SCHEDULE).get()
    assert "existing_billing" not in run_.steps and "agreements" in run_.steps


# the preview --------------------------------------------------------------------------------------------------------

PREVIEW_CSV = """customer,product,quantity,term,start date
Contoso Ltd,Microsoft 365 Business Premium,25,monthly,2026-01-01
Tailspin Toys,Microsoft 365 Business Basic,12,monthly,2026-01-01
Adventure Works,O365-E3,5,Monthly,2026-01-01
Northwind Traders,Teams Phone,3,monthly,{mid}
Litware Inc,Microsoft 365 E5,10,annual,2026-01-01
Fourth Coffee,Microsoft 365 E3,4,monthly,2026-01-01
Woodgrove Bank,Microsoft 365 E3,4,monthly,2026-01-01
Contoso Ltd,Microsoft 365 E5,2,annual,2026-01-01
Litware Inc,Exchange Online,9,monthly,2026-01-01
Alpine Ski House,Microsoft 365 E3,1,monthly,2026-01-01
"""


def preview_text() -> str:
    first = date.fromisoformat(CUTOVER) + timedelta(days=1)
    mid = (first.replace(day=1) + timedelta(days=45)).replace(day=15)
    return PREVIEW_CSV.format(mid=mid.isoformat())


@pytest.fixture
def preview_tenant(billco):
    billco.billing_cutover = date.fromisoformat(CUTOVER)
    billco.save()
    # Alpine Ski House (10): chosen with an agreement that is gone -> no target agreement
    CompanyChoice.objects.create(
        tenant=billco,
        cw_company_id=10,
        identifier="AlpineSkiHouse",
        name="Alpine Ski House",
        agreement_id=999,
    )
    return billco


def preview_json(tmp_path, text: str) -> dict:
    path = tmp_path / "subs.csv"
    path.write_text(text)
    return json.loads(run("preview_sync", "billco", "--csv", str(path), "--json"))


def test_preview_places_each_line_and_says_why_when_it_cannot(preview_tenant, sandbox, tmp_path):
    sandbox.clear_requests()
    data = preview_json(tmp_path, preview_text())
    assert writes(sandbox) == {}  # nothing is written to ConnectWise
    rows = {r["line"]: r for r in data["rows"]}
    first_day = (date.fromisoformat(CUTOVER) + timedelta(days=1)).isoformat()
    contoso = rows[2]
    assert contoso["placed"] and contoso["agreement_id"] == 1
    assert contoso["addition"] == {
        "product": "misc-seat",
        "description": "Microsoft 365 Business Premium",
        "quantity": 25,
        "effectiveDate": f"{first_day}T00:00:00Z",
        "oneTime": False,
        "proration": "none: starts on the first of the month"
        if first_day.endswith("-01")
        else contoso["addition"]["proration"],
    }
    assert [(c["id"], c["same_agreement"]) for c in contoso["collisions"]] == [(1, True)]
    assert [(c["id"], c["same_agreement"]) for c in rows[3]["collisions"]] == [
        (5, False)
    ]  # Tailspin, Azure Plan
    assert [c["id"] for c in rows[4]["collisions"]] == [7]  # Adventure Works: the SKU O365-E3
    assert rows[5]["placed"] and rows[5]["collisions"] == []
    assert rows[5]["addition"]["proration"].startswith("expected: ")
    litware = rows[6]
    assert litware["placed"] and litware["agreement_id"] == 7 and litware["addition"]["oneTime"] is True
    assert litware["addition"]["proration"].startswith("none: one-time")
    causes = {r["line"]: r["cause"] for r in data["rows"] if not r["placed"]}
    assert causes == {
        7: "customer_unmatched",  # Fourth Coffee: no such company
        8: "customer_unmatched",  # Woodgrove Bank: a company, but not chosen
        9: "annual_on_recurring",  # Contoso annual: its target is the monthly O365 agreement
        10: "monthly_on_one_time",  # Litware monthly: its target is the one-time agreement
        11: "no_target_agreement",  # Alpine Ski House: the chosen agreement is gone
    }
    assert "not chosen on the Customers step" in rows[8]["reason"]
    assert data["counts"] == {"lines": 10, "placed": 5, "not_placed": 5, "collisions": 3}
    preview = SyncPreview.objects.get(uuid=data["preview"])
    assert preview.status == "done" and preview.rows == data["rows"]


def test_preview_without_an_active_misc_product_places_nothing(preview_tenant, sandbox, tmp_path):
    catalog = sandbox.tenant("billco").tables["procurement/catalog"]
    catalog.replace({**catalog.rows[1], "inactiveFlag": True})
    data = preview_json(tmp_path, preview_text())
    assert data["counts"]["placed"] == 0
    assert rows_with(data, "no_misc_product") == [2, 3, 4, 5, 6]
    # with the earlier causes, every cause of "cannot be placed" has a line in this file
    assert {r["cause"] for r in data["rows"]} == set(CAUSES)


def rows_with(data, cause):
    return [r["line"] for r in data["rows"] if r["cause"] == cause]


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("customer,product,quantity,term\nA,B,1,monthly\n", "no column for start date"),
        ("customer,product,quantity,term,start date\nA,B,x,monthly,2026-01-01\n", "line 2: quantity 'x'"),
        ("customer,product,quantity,term,start date\nA,B,0,monthly,2026-01-01\n", "must be 1 or more"),
        ("customer,product,quantity,term,start date\nA,B,1,weekly,2026-01-01\n", "term 'weekly'"),
        ("customer,product,quantity,term,start date\nA,B,1,monthly,01/02/2026\n", "not a date"),
        ("customer,product,quantity,term,start date\n,B,1,monthly,2026-01-01\n", "customer is empty"),
        ("", "empty"),
    ],
)
def test_a_bad_subscription_csv_is_refused_with_its_line_and_nothing_stored(billco, tmp_path, text, problem):
    path = tmp_path / "subs.csv"
    path.write_text(text)
    with pytest.raises(CommandError, match=re.escape(problem)):
        run("preview_sync", "billco", "--csv", str(path))
    assert not SyncPreview.objects.exists()


# the pages ----------------------------------------------------------------------------------------------------------


def _upload(client, slug, text, name="subs.csv"):
    from django.core.files.uploadedfile import SimpleUploadedFile

    return client.post(
        reverse("previews", args=[slug]), {"file": SimpleUploadedFile(name, text.encode(), "text/csv")}
    )


@pytest.fixture
def web_tenant(preview_tenant, admin_a):
    from onboarding.models import Membership

    Membership.objects.create(tenant=preview_tenant, user=admin_a, role=Membership.Role.ADMIN)
    return preview_tenant


def test_the_preview_page_and_its_csv_export_show_the_same_rows(client, admin_a, web_tenant, monkeypatch):
    client.force_login(admin_a)
    queued = []
    monkeypatch.setattr(tasks.build_preview, "delay", lambda pk: queued.append(pk))
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(
            cw,
            "client_for",
            lambda *a, **k: (_ for _ in ()).throw(AssertionError("views never call ConnectWise")),
        )
        from django.test import TestCase

        with TestCase.captureOnCommitCallbacks(execute=True):
            response = _upload(client, web_tenant.slug, preview_text())
    assert response.status_code == 302
    preview = SyncPreview.objects.get(tenant=web_tenant)
    assert queued == [preview.pk] and preview.status == "queued"
    assert "Reading your ConnectWise" in client.get(response["Location"]).content.decode()
    assert tasks.build_preview(preview.pk) == "done"

    html = client.get(response["Location"]).content.decode()
    export = client.get(reverse("preview_export", args=[web_tenant.slug, preview.uuid]))
    assert export.status_code == 200 and export["Content-Type"].startswith("text/csv")
    exported = list(csv.reader(io.StringIO(export.content.decode())))
    preview.refresh_from_db()
    assert exported == [[str(v) for v in row] for row in export_rows(preview.rows)]
    header = exported[0]
    for row in exported[1:]:
        values = dict(zip(header, row, strict=True))
        page_row = re.search(rf'data-line="{values["line"]}">(.*?)</tr>', html, re.S).group(1)
        text = (
            re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", page_row))
            .replace("&quot;", '"')
            .replace("&#x27;", "'")
        )
        for column in ("customer", "product", "quantity", "reason" if values["placed"] == "no" else "agreement",
                       "effective_date", "collisions"):  # fmt: skip
            if values[column]:
                for part in values[column].split("; "):
                    assert part in text, (column, part, text)


def test_a_bad_upload_says_why_next_to_the_field_and_stores_nothing(client, admin_a, web_tenant):
    client.force_login(admin_a)
    response = _upload(
        client, web_tenant.slug, "customer,product,quantity,term,start date\nA,B,two,monthly,2026-01-01\n"
    )
    assert response.status_code == 400
    assert (
        "line 2: quantity" in response.content.decode()
        and "Nothing was imported" in response.content.decode()
    )
    assert not SyncPreview.objects.exists()


def test_support_may_import_for_the_partner_and_a_read_only_member_may_not(
    client, web_tenant, support, member_a, monkeypatch
):
    from onboarding.models import Membership

    monkeypatch.setattr(tasks.build_preview, "delay", lambda pk: None)
    Membership.objects.create(tenant=web_tenant, user=member_a, role=Membership.Role.MEMBER)
    client.force_login(member_a)
    assert _upload(client, web_tenant.slug, preview_text()).status_code == 403
    client.force_login(support)
    assert _upload(client, web_tenant.slug, preview_text()).status_code == 302
    assert SyncPreview.objects.get().actor_label


def test_the_step_page_offers_the_cutover_and_builds_a_plan_for_the_ticked_additions(
    client, admin_a, web_tenant, monkeypatch
):
    verify("existing_billing")
    client.force_login(admin_a)
    page = client.get(reverse("step", args=[web_tenant.slug, "existing_billing"]))
    assert page.status_code == 200
    assert [a["id"] for a in page.context["flagged"]] == [1, 3, 4, 5]
    built = []
    monkeypatch.setattr(tasks.build_plan_task, "delay", lambda *a, **kw: built.append((a, kw)))
    from django.test import TestCase

    bad = client.post(
        reverse("billing_cutover", args=[web_tenant.slug]), {"cutover": "2020-01-01", "addition": ["1"]}
    )
    assert bad.status_code == 400 and "in the past" in bad.content.decode()
    with TestCase.captureOnCommitCallbacks(execute=True):
        ok = client.post(
            reverse("billing_cutover", args=[web_tenant.slug]), {"cutover": CUTOVER, "addition": ["1", "5"]}
        )
    assert ok.status_code == 302
    building = RepairPlan.objects.get(tenant=web_tenant, status=RepairPlan.Status.BUILDING)
    assert built == [
        (
            (web_tenant.pk, "existing_billing", admin_a.pk, {"addition_ids": [1, 5]}),
            {"plan_id": building.pk},
        )
    ]
    (args, kwargs) = built[0]
    assert tasks.build_plan_task.apply(args=args, kwargs=kwargs).get() == str(building.uuid)
    plan = RepairPlan.objects.get(pk=building.pk)
    assert plan.status == RepairPlan.Status.DRAFT
    assert sorted(op.path for op in plan.operations.all()) == [
        "finance/agreements/1/additions/1",
        "finance/agreements/16/additions/5",
    ]
    assert all(op.body[0]["value"] == f"{CUTOVER}T00:00:00Z" for op in plan.operations.all())


@pytest.mark.slow
def test_a_200_line_preview_on_a_generated_tenant_renders_in_under_a_second(
    client, admin_a, settings, monkeypatch, tenant_a
):
    from connectwise.sandbox import generate_scenario
    from onboarding.models import Connection

    app = SandboxApp([parse_scenario(generate_scenario(2000, 4000, "genco"))], sleep=lambda s: None)
    settings.CONNECTWISE_SANDBOX_URL = "http://sandbox.test"
    monkeypatch.setattr(cw, "TRANSPORT_FACTORY", lambda: sandbox_transport(app))
    conn = Connection(tenant=tenant_a, site="sandbox.test", company_id="genco", public_key="gencopub")
    conn.set_private_key("gencopriv-0123456789")
    conn.save()
    companies = app.tenant("genco").tables["company/companies"].rows
    CompanyChoice.objects.bulk_create(
        [
            CompanyChoice(
                tenant=tenant_a,
                cw_company_id=i,
                identifier=companies[i]["identifier"],
                name=companies[i]["name"],
            )
            for i in range(1, 201)
        ]  # fmt: skip
    )
    lines = "".join(
        f"{companies[i]['name']},Microsoft 365 E3,{i % 50 + 1},monthly,2027-01-01\n" for i in range(1, 201)
    )
    preview = billing.create_preview(
        tenant_a, "customer,product,quantity,term,start date\n" + lines, enqueue=False
    )
    assert billing.execute_preview(preview).status == "done", preview.error
    assert len(preview.rows) == 200
    client.force_login(admin_a)
    url = reverse("preview", args=[tenant_a.slug, preview.uuid])
    client.get(url)  # warm the template cache
    started = time.perf_counter()
    response = client.get(url)
    elapsed = time.perf_counter() - started
    assert response.status_code == 200 and response.content.decode().count("data-line=") == 200
    assert elapsed < 1.0, f"the 200-line preview took {elapsed:.3f} s"
    print(f"200-line preview page: {elapsed * 1000:.0f} ms")
    export = client.get(reverse("preview_export", args=[tenant_a.slug, preview.uuid]))
    assert len(list(csv.reader(io.StringIO(export.content.decode())))) == 201


def test_before_any_customer_is_chosen_the_page_says_it_waits_for_customers_never_pass(
    sandbox, monkeypatch, client, admin_a
):
    # issue 14 item 8: "Seats billed today" showed Pass before any customer was chosen
    from onboarding.models import Membership

    monkeypatch.setenv("CW_PRIVATE_KEY", "billpriv-0123456789")
    run(
        "tenant_connect", "billco", "--site", "sandbox.test", "--company", "billco", "--public-key", "billpub"
    )
    tenant = Tenant.objects.get(slug="billco")
    Membership.objects.create(tenant=tenant, user=admin_a, role=Membership.Role.ADMIN)
    assert step(verify("existing_billing"), "existing_billing")["status"] == "blocked"
    client.force_login(admin_a)
    page = client.get(reverse("step", args=[tenant.slug, "existing_billing"]))
    html = page.content.decode()
    assert page.context["result"].status == "blocked"
    assert "Waiting for customers" in html and 'class="status status-blocked"' in html
    assert "Nothing to fix here" not in html  # said of a step that has not looked at anything
    tenant.refresh_from_db()
    assert tenant.step_statuses["existing_billing"] == "blocked"
