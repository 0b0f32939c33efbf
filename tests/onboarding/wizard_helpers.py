"""Fixtures and builders shared by the wizard, accounts and plan view tests.

Test modules import the ``*_fixture`` functions: pytest registers them under their ``name`` (``connection_a``,
``clean_cache``), so test arguments do not shadow an imported name.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from django.conf import settings
from django.core.cache import cache
from django.utils import timezone

PRIVATE_KEY = "PRIVATEKEY-never-shown-7Q3Z"


@pytest.fixture(autouse=True, name="clean_cache")
def clean_cache_fixture():
    """Login and rate-limit counters live in the cache: every test starts clean."""
    cache.clear()
    yield
    cache.clear()


@pytest.fixture(name="connection_a")
def connection_a_fixture(tenant_a, admin_a):
    from onboarding.models import Connection

    conn = Connection(
        tenant=tenant_a,
        site="api-na.myconnectwise.net",
        company_id="acme",
        public_key="pubkey123",
        updated_by=admin_a,
    )
    conn.set_private_key(PRIVATE_KEY)
    conn.save()
    tenant_a.refresh_from_db()
    return conn


def directory_row(
    tenant, cid: int, name: str, *, identifier: str | None = None, inactive=False, agreements=None
):
    from connectwise.checks.names import normalize_company_name
    from onboarding.models import CompanyDirectory

    agreements = agreements if agreements is not None else []
    return CompanyDirectory.objects.create(
        tenant=tenant,
        cw_company_id=cid,
        identifier=identifier or name.replace(" ", "")[:30],
        name=name,
        normalized=normalize_company_name(name),
        status_name="Inactive" if inactive else "Active",
        inactive=inactive,
        active_agreements=sum(1 for a in agreements if a.get("active")),
        agreements=agreements,
    )


def agreement(
    aid: int, name: str, *, active=True, child=False, cycle="Monthly", type_="O365", fits=None
) -> dict:
    """A company-list agreement summary as the customers step stores it; ``fits`` (the motions the agreements
    check counts it a candidate for) defaults to what ``candidates_for`` says of it beside a one-time agreement."""
    if fits is None:
        one_time = "one" in cycle.casefold()
        fits = [] if not active or child else (["annual"] if one_time else ["monthly", "azure"])
    return {
        "fits": list(fits),
        "id": aid,
        "name": name,
        "type": type_,
        "status": "Active" if active else "Cancelled",
        "active": active,
        "child": child,
        "billing_cycle": cycle,
    }


def stored_result(tenant, key: str, status: str, findings: list[dict] | None = None, *, summary: str = ""):
    """A finished run with one step result, as the worker would have stored it."""
    from onboarding.models import CheckRun, StepResult

    now = timezone.now()
    run = CheckRun.objects.create(
        tenant=tenant, steps=[key], status=CheckRun.Status.DONE, started_at=now, finished_at=now
    )
    return StepResult.objects.create(
        run=run,
        tenant=tenant,
        key=key,
        status=status,
        findings=findings or [],
        summary=summary,
        created_at=now,
    )


def finding(
    code: str, severity: str = "error", *, subject="Something", repairable=False, record=None, data=None
):
    return {
        "code": code,
        "severity": severity,
        "subject": subject,
        "explanation": f"Explanation of {code}.",
        "fix": f"Fix for {code}.",
        "repairable": repairable,
        "record": record,
        "data": data or {},
    }


BROKEN_SCENARIO = Path(settings.BASE_DIR) / "connectwise" / "sandbox" / "scenarios" / "broken.json"


@pytest.fixture(name="sandboxed")
def sandboxed_fixture(settings, monkeypatch, tenant_a):
    """tenant_a connected to the in-process sandbox's broken scenario (company ``brokenco``); returns the app."""
    from connectwise.sandbox import SandboxApp, load_scenario, sandbox_transport
    from onboarding import cw
    from onboarding.models import Connection

    settings.CONNECTWISE_SANDBOX_URL = "http://sandbox.test"
    app = SandboxApp([load_scenario(BROKEN_SCENARIO)], sleep=lambda s: None, enable_faults=False)
    monkeypatch.setattr(cw, "TRANSPORT_FACTORY", lambda: sandbox_transport(app))
    conn = Connection(tenant=tenant_a, site="sandbox.test", company_id="brokenco", public_key="brokenpub")
    conn.set_private_key("brokenpriv-0123456789")
    conn.save()
    tenant_a.refresh_from_db()
    return app
