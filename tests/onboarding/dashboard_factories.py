"""Tenants in a given readiness state for the dashboard and monitoring tests (the denormalised columns exactly as
runs.finish writes them), with a connection whose private key the tests look for in every output."""

from __future__ import annotations

from datetime import timedelta

from django.utils import timezone

from connectwise.checks.registry import STEP_KEYS

PRIVATE_KEY = "PRIVATE-sekrit-9f8e7d6c5b4a"
ALL_PASS = {k: "pass" for k in STEP_KEYS}
OK = ("pass", "warn")


def statuses(**overrides: str) -> dict[str, str]:
    return {**ALL_PASS, **overrides}


def make_tenant(
    slug: str,
    *,
    name: str | None = None,
    step_statuses: dict[str, str] | None = None,
    checked_hours_ago: float | None = 1,
    connected: bool = True,
    drift: tuple[str, ...] = (),
    site: str = "api-na.myconnectwise.net",
):
    from onboarding.models import Connection, Tenant

    now = timezone.now()
    st = dict(step_statuses or {}) if checked_hours_ago is not None else {}
    tenant = Tenant.objects.create(
        slug=slug,
        name=name or slug.replace("-", " ").title(),
        step_statuses=st,
        ready=bool(st) and all(st.get(k) in OK for k in STEP_KEYS),
        first_open_step=next((k for k in STEP_KEYS if st.get(k) not in OK), "") if st else "",
        has_error=any(v == "error" for v in st.values()),
        last_checked_at=None if checked_hours_ago is None else now - timedelta(hours=checked_hours_ago),
        drift_steps=list(drift),
        drift_since=now if drift else None,
    )
    if connected:
        connection = Connection(tenant=tenant, site=site, company_id=f"{slug}-co", public_key=f"pub-{slug}")
        connection.set_private_key(PRIVATE_KEY)
        connection.save()
    return tenant


def make_run(tenant, results: dict[str, str | tuple[str, list[dict]]], *, hours_ago: float = 0, **fields):
    """A finished run with one StepResult per entry: {"catalog": "fail"} or {"catalog": ("fail", [finding])}."""
    from onboarding.models import CheckRun, StepResult

    at = timezone.now() - timedelta(hours=hours_ago)
    run = CheckRun.objects.create(
        tenant=tenant,
        status=fields.pop("status", CheckRun.Status.DONE),
        created_at=at,
        started_at=at,
        finished_at=at + timedelta(seconds=3),
        **fields,
    )
    for key, value in results.items():
        status, findings = (value, []) if isinstance(value, str) else value
        StepResult.objects.create(
            run=run, tenant=tenant, key=key, status=status, findings=findings, created_at=at
        )
    return run


def finding(code: str, subject: str, severity: str = "error") -> dict:
    return {
        "code": code,
        "severity": severity,
        "subject": subject,
        "explanation": f"Explanation of {code}",
        "fix": "System > Setup Tables",
        "repairable": False,
        "record": None,
        "data": {},
    }
