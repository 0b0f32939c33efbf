"""Keys never leak: a unique private key (the canary) is saved through the web form and used for real against the
in-process sandbox, through every path that touches it (checks, customers, a repair plan built, approved and
applied, the CLI, the support dashboard and its exports, a wrong key, server faults, connection resets, a key
that cannot be decrypted), while everything the product emits is captured:

- every log record of every logger at DEBUG (message and formatted traceback),
- every HTTP response: body (HTML, JSON, CSV, streamed), headers and cookies,
- every Celery task message, serialised the way the broker would carry it (JSON),
- every text column of every table (sessions decoded), except Connection.private_key_encrypted,
- the cache, the e-mails sent, command output, and the str/repr/traceback of the client's exceptions.

Then the canary (and the wrong key, and the Basic credentials built from them) must appear nowhere.
"""

from __future__ import annotations

import base64
import functools
import io
import json
import logging
import pickle
import secrets
import traceback
from pathlib import Path
from types import SimpleNamespace

import pytest
from celery.app.task import Task
from django.conf import settings
from django.contrib.sessions.backends.db import SessionStore
from django.core import mail
from django.core.cache import cache
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import connection as db
from django.urls import reverse
from kombu.serialization import dumps as kombu_dumps
from kombu.serialization import loads as kombu_loads

from connectwise.client import ConnectWiseClient
from connectwise.errors import ConnectWiseError
from connectwise.sandbox import SandboxApp, load_scenario, sandbox_transport
from onboarding import cw
from onboarding.models import CheckRun, Connection, RepairPlan, StepResult, Tenant

from .test_isolation import ACCESS, ROUTES, fill

SCENARIO = Path(settings.BASE_DIR) / "connectwise" / "sandbox" / "scenarios" / "broken.json"
COMPANY, PUBLIC = "brokenco", "brokenpub"

pytestmark = pytest.mark.django_db


def secret_forms(secret: str) -> list[str]:
    """The secret and what it becomes on the way out: Basic credentials, base64, and slices of it (a truncated
    secret in a log line is still a leak; the masked hint shows only the last 4 characters)."""
    basic = f"{COMPANY}+{PUBLIC}:{secret}"
    forms = [
        secret,
        basic,
        base64.b64encode(basic.encode()).decode(),
        base64.b64encode(secret.encode()).decode(),
    ]
    forms += [secret[i : i + 12] for i in range(0, len(secret) - 12)]
    return forms


class Capture:
    def __init__(self):
        self.texts: list[tuple[str, str]] = []

    def add(self, where: str, value) -> None:
        if isinstance(value, bytes):
            value = value.decode("utf-8", "replace")
        self.texts.append((where, str(value)))

    def leaks(self, secret: str) -> list[str]:
        found = []
        for form in secret_forms(secret):
            for where, text in self.texts:
                if form in text:
                    i = text.index(form)
                    found.append(f"{where}: ...{text[max(0, i - 80) : i + len(form) + 40]!r}...")
        return found


@pytest.fixture
def capture():
    return Capture()


@pytest.fixture
def canary():
    return "cnry-" + secrets.token_hex(16)


@pytest.fixture
def sandbox(canary, tmp_path, settings, monkeypatch):
    data = json.loads(SCENARIO.read_text())
    for member in data["apiMembers"]:
        if member["publicKey"] == PUBLIC:
            member["privateKey"] = canary
    path = tmp_path / "canary.json"
    path.write_text(json.dumps(data))
    app = SandboxApp([load_scenario(path)], sleep=lambda s: None)
    settings.CONNECTWISE_SANDBOX_URL = "http://127.0.0.1:8765"
    settings.CACHES = {
        "default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache", "LOCATION": "canary"}
    }
    settings.EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
    cache.clear()
    monkeypatch.setattr(cw, "TRANSPORT_FACTORY", lambda: sandbox_transport(app))
    # Retries without waiting (the client's sleep is injectable; the product's factory uses time.sleep).
    monkeypatch.setattr(cw, "ConnectWiseClient", functools.partial(ConnectWiseClient, sleep=lambda s: None))
    return app


@pytest.fixture
def all_logs(caplog):
    """Every logger at DEBUG into caplog, including the ones settings quiet down or that do not propagate."""
    caplog.set_level(logging.DEBUG)
    for name, logger in list(logging.root.manager.loggerDict.items()):
        if isinstance(logger, logging.Logger):
            caplog.set_level(logging.DEBUG, logger=name)
            if not logger.propagate:
                logger.addHandler(caplog.handler)
    yield caplog
    for logger in logging.root.manager.loggerDict.values():
        if isinstance(logger, logging.Logger) and caplog.handler in logger.handlers:
            logger.removeHandler(caplog.handler)


@pytest.fixture
def tasks(monkeypatch, capture):
    """Celery's apply_async records the message as the broker would carry it (JSON), then runs the task here."""
    sent = []

    def apply_async(self, args=None, kwargs=None, **options):
        _, _, body = kombu_dumps([list(args or ()), dict(kwargs or {}), {}], serializer="json")
        sent.append((self.name, body))
        capture.add(f"task message {self.name}", body)
        capture.add(f"task options {self.name}", repr(options))  # headers, routing: part of the message too
        decoded_args, decoded_kwargs, _ = kombu_loads(body, "application/json", "utf-8")
        result = self.apply(args=decoded_args, kwargs=decoded_kwargs)
        if result.failed():
            raise result.result
        return result

    monkeypatch.setattr(Task, "apply_async", apply_async)
    return sent


class Browser:
    """The Django test client, keeping every response (body, headers, cookies) and running on-commit callbacks
    (where the views enqueue their tasks) like a real request's commit would."""

    def __init__(self, client, capture, commit):
        self.client, self.capture, self.commit = client, capture, commit

    def request(self, method: str, url: str, data=None, **extra):
        with self.commit(execute=True):
            response = getattr(self.client, method)(url, data or {}, **extra)
        body = b"".join(response.streaming_content) if response.streaming else response.content
        self.capture.add(f"{method.upper()} {url} body", body)
        self.capture.add(f"{method.upper()} {url} headers", dict(response.headers))
        self.capture.add(f"{method.upper()} {url} cookies", response.cookies.output())
        response.body_text = body.decode("utf-8", "replace")
        return response

    def get(self, url, data=None, **extra):
        return self.request("get", url, data, **extra)

    def post(self, url, data=None, **extra):
        return self.request("post", url, data, **extra)

    def login(self, user):
        self.client.logout()
        self.client.force_login(user)


def dump_database(capture: Capture) -> None:
    """Every column of every table as text; the encrypted key column is the one place the key may be."""
    with db.cursor() as cur:
        for table in db.introspection.table_names():
            columns = [c.name for c in db.introspection.get_table_description(cur, table)]
            if table == Connection._meta.db_table:
                columns = [c for c in columns if c != "private_key_encrypted"]
            cur.execute(
                f"SELECT {', '.join(db.ops.quote_name(c) for c in columns)} FROM {db.ops.quote_name(table)}"
            )
            for row in cur.fetchall():
                capture.add(f"table {table}", dict(zip(columns, row, strict=True)))
                if table == "django_session":
                    capture.add("session data", SessionStore().decode(row[columns.index("session_data")]))


def run_task_checks(browser, tenant, user, steps=None):
    browser.login(user)
    data = {"step": steps} if steps else {}
    browser.post(reverse("run_check", args=[tenant.slug]), data)
    return CheckRun.objects.filter(tenant=tenant).order_by("-created_at", "-id").first()


def key_fields(key: str) -> dict:
    """The replace-key form's field (its name has changed once; both spellings are sent)."""
    return {"new_private_key": key, "private_key": key}


def record_exception(capture: Capture, where: str, exc: BaseException) -> None:
    capture.add(f"{where} str", str(exc))
    capture.add(f"{where} repr", repr(exc))
    capture.add(f"{where} traceback", "".join(traceback.format_exception(exc)))
    capture.add(f"{where} args", exc.args)


def test_the_private_key_appears_nowhere(
    client,
    tenant_a,
    admin_a,
    member_a,
    support,
    canary,
    sandbox,
    capture,
    tasks,
    all_logs,
    django_capture_on_commit_callbacks,
):
    browser = Browser(client, capture, django_capture_on_commit_callbacks)
    wrong_key = "wrng-" + secrets.token_hex(16)

    # 1. The admin saves the connection through the form; the connection check runs (a task) -------------------
    browser.login(admin_a)
    page = browser.get(reverse("step", args=[tenant_a.slug, "connection"]))
    assert page.status_code == 200
    response = browser.post(
        reverse("step", args=[tenant_a.slug, "connection"]),
        {"region": "sandbox", "company_id": COMPANY, "public_key": PUBLIC, "private_key": canary},
    )
    assert response.status_code == 302, response.body_text[:2000]
    conn = Connection.objects.get(tenant=tenant_a)
    assert conn.get_private_key() == canary and canary not in conn.private_key_encrypted
    first = CheckRun.objects.filter(tenant=tenant_a).first()
    assert first.status == "done", first.error
    # the canary really authenticated against the sandbox
    assert StepResult.objects.get(run=first, key="connection").status == "pass"

    # 2. Every step, customers chosen, another run -----------------------------------------------------------------
    browser.post(reverse("customers_refresh", args=[tenant_a.slug]))
    browser.post(
        reverse("customers_select", args=[tenant_a.slug]), {"action": "add", "company": ["7", "8", "9"]}
    )
    full = run_task_checks(browser, tenant_a, admin_a)
    assert full.status == "done", full.error
    assert full.api_calls > 5

    # 3. A repair: built (a task), approved, applied (a task) with before/after, re-verified -----------------------
    browser.post(reverse("plan_build", args=[tenant_a.slug, "setup_tables"]))
    plan = RepairPlan.objects.filter(tenant=tenant_a, step="setup_tables", status="draft").first()
    assert plan is not None and plan.operations.exists(), "no repair plan was built"
    browser.get(reverse("plan", args=[tenant_a.slug, plan.uuid]))
    browser.post(reverse("plan_approve", args=[tenant_a.slug, plan.uuid]))
    plan.refresh_from_db()
    assert plan.status == "applied", plan.error

    # 4. A teammate invitation (an e-mail) ------------------------------------------------------------------------
    browser.post(reverse("team", args=[tenant_a.slug]), {"email": "new@a.example", "role": "member"})
    invitation = tenant_a.invitations.first()

    # 5. The command line -----------------------------------------------------------------------------------------
    out, err = io.StringIO(), io.StringIO()
    call_command("verify_tenant", tenant_a.slug, "--json", stdout=out, stderr=err)
    call_command("repair_tenant", tenant_a.slug, "--step", "catalog", stdout=out, stderr=err)
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("CW_PRIVATE_KEY", canary)
        call_command(
            "tenant_connect", "cli-tenant", "--site", "127.0.0.1:8765", "--company", COMPANY,
            "--public-key", PUBLIC, stdout=out, stderr=err,
        )  # fmt: skip
        call_command("verify_tenant", "cli-tenant", stdout=out, stderr=err)
    capture.add("command output", out.getvalue() + err.getvalue())

    # 6. Every page as admin, member and support; the dashboard and its exports -----------------------------------
    from onboarding import billing  # noqa: PLC0415

    preview = billing.create_preview(
        tenant_a, "customer,product,quantity,term,start date\nContoso Ltd,M365 E3,5,monthly,2027-01-01\n",
        source_name="subs.csv", actor=admin_a, enqueue=False,
    )  # fmt: skip
    assert billing.execute_preview(preview).status == "done", preview.error
    world = SimpleNamespace(
        a=SimpleNamespace(tenant=tenant_a, run=full, plan=plan, invitation=invitation, preview=preview),
        b=SimpleNamespace(tenant=tenant_a),
    )
    users = {"admin": admin_a, "member": member_a, "support": support}
    pages = 0
    for user in users.values():
        browser.login(user)
        for route in ROUTES:
            spec = ACCESS.get(route.name)
            if spec is None or spec.get is None or spec.scope == "public":
                continue
            browser.get(fill(route, world))
            pages += 1
        for key in (
            "connection", "security_role", "catalog", "setup_tables", "customers", "agreements", "existing_billing"
        ):  # fmt: skip
            browser.get(reverse("step", args=[tenant_a.slug, key]))
    browser.login(support)
    csv_export = browser.get(reverse("support_export"))
    json_export = browser.get(reverse("support_api_tenants"))
    assert tenant_a.slug in csv_export.body_text and tenant_a.slug in json_export.body_text
    assert pages > 40

    # 7. Failure paths --------------------------------------------------------------------------------------------
    # a wrong key: auth_failed, stored and shown
    browser.login(admin_a)
    replaced = browser.post(reverse("replace_key", args=[tenant_a.slug]), key_fields(wrong_key))
    assert replaced.status_code == 302, replaced.body_text[:2000]
    wrong = CheckRun.objects.filter(tenant=tenant_a).first()
    codes = [f["code"] for f in StepResult.objects.get(run=wrong, key="connection").findings]
    assert "connection.auth_failed" in codes
    browser.get(reverse("step", args=[tenant_a.slug, "connection"]))
    with cw.client_for(Connection.objects.get(tenant=tenant_a)) as client_:
        try:
            client_.system_info()
        except ConnectWiseError as exc:
            record_exception(capture, "wrong key", exc)
        else:
            pytest.fail("the wrong key was accepted")
    assert browser.post(reverse("replace_key", args=[tenant_a.slug]), key_fields(canary)).status_code == 302

    # the sandbox answers 500 or 503, resets connections, or fails only the agreement reads
    no_faults = {"latencyMs": 0, "seed": 1, "rates": {"429": 0.0, "500": 0.0, "503": 0.0, "reset": 0.0}}
    for fault in (
        {"rates": {"500": 1.0}},
        {"rates": {"503": 1.0}},
        {"rates": {"reset": 1.0}},
        {"rates": {"500": 1.0}, "paths": ["finance/"]},
    ):
        sandbox.set_faults({**no_faults, **fault})
        faulty = run_task_checks(browser, tenant_a, admin_a)
        statuses = set(StepResult.objects.filter(run=faulty).values_list("status", flat=True))
        assert faulty.status == "error" or statuses & {"error", "fail"}, (fault, faulty.status, statuses)
        with cw.client_for(Connection.objects.get(tenant=tenant_a)) as client_:
            try:
                client_.list("finance/agreements")
            except ConnectWiseError as exc:
                record_exception(capture, f"fault {fault}", exc)
            else:
                pytest.fail(f"no error under {fault}")
        browser.get(reverse("tenant_home", args=[tenant_a.slug]))
        browser.get(reverse("step", args=[tenant_a.slug, "agreements"]))
        browser.login(support)
        browser.get(reverse("support_tenant", args=[tenant_a.slug]))
        browser.get(reverse("support_export"))
        browser.get(reverse("support_api_tenants"))
        browser.login(admin_a)
    sandbox.set_faults(no_faults)

    # the key cannot be decrypted (an encryption key removed too early)
    keys = list(settings.FIELD_ENCRYPTION_KEYS)
    from cryptography.fernet import Fernet

    settings.FIELD_ENCRYPTION_KEYS = [Fernet.generate_key().decode()]
    broken = run_task_checks(browser, tenant_a, admin_a)
    assert broken.status == "error" and "decrypt" in broken.error
    browser.get(reverse("step", args=[tenant_a.slug, "connection"]))
    try:
        Connection.objects.get(tenant=tenant_a).get_private_key()
    except Exception as exc:  # noqa: BLE001 - whatever it is, its text must be clean
        record_exception(capture, "decrypt failure", exc)
    with pytest.raises(CommandError) as failed_cli:
        call_command("verify_tenant", tenant_a.slug, stdout=out, stderr=err)
    record_exception(capture, "verify_tenant with a bad key", failed_cli.value)
    settings.FIELD_ENCRYPTION_KEYS = keys

    # 8. Everything that was emitted ------------------------------------------------------------------------------
    formatter = logging.Formatter("%(name)s %(levelname)s %(message)s")
    for record in all_logs.records:
        capture.add(f"log {record.name}", formatter.format(record))
        capture.add(f"log args {record.name}", repr(record.args))
    capture.add("command output", out.getvalue() + err.getvalue())
    for message in mail.outbox:
        capture.add(f"mail {message.subject}", message.message().as_string())
    for key, value in getattr(cache, "_cache", {}).items():
        capture.add(f"cache {key}", repr(pickle.loads(value)))
    dump_database(capture)

    assert len(tasks) >= 5 and {name for name, _ in tasks} >= {
        "onboarding.run_checks",
        "onboarding.apply_plan",
    }
    assert len(all_logs.records) > 20
    # the dumps do contain the connection's other fields
    assert any(PUBLIC in text for _, text in capture.texts)
    assert Tenant.objects.filter(slug="cli-tenant").exists()

    leaks = capture.leaks(canary) + capture.leaks(wrong_key)
    assert not leaks, "the private key leaked:\n" + "\n".join(leaks[:20])
