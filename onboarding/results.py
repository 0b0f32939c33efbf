"""Stored results as the pages, the API and the CLI read them: the newest result of each step, findings grouped by
severity, a run as the ``verify_tenant --json`` contract. Reads only; ``runs`` writes them."""

from __future__ import annotations

from connectwise.checks.base import Severity
from connectwise.checks.registry import STEP_KEYS

from .models import CheckRun, StepResult, Tenant


def latest_results(tenant: Tenant) -> dict[str, StepResult]:
    """The newest stored result of each step (one query)."""
    latest: dict[str, StepResult] = {}
    for r in (
        StepResult.objects.filter(tenant=tenant).select_related("run").order_by("-created_at", "-id")[:200]
    ):
        latest.setdefault(r.key, r)
        if len(latest) == len(STEP_KEYS):
            break
    return latest


def severity_groups(result: StepResult) -> list[tuple[str, list[dict]]]:
    """``[(severity, [finding dicts])]``: errors, then warnings, then infos, each group only when it has findings."""
    order = [Severity.ERROR, Severity.WARNING, Severity.INFO]
    return [
        (str(s), [f for f in result.findings if f["severity"] == s])
        for s in order
        if any(f["severity"] == s for f in result.findings)
    ]


def run_as_dict(run: CheckRun) -> dict:
    """The `verify_tenant --json` contract: tenant, run, ready, api_calls, steps[key, status, findings]."""
    results = {r.key: r for r in run.results.all()}
    return {
        "tenant": run.tenant.slug,
        "run": str(run.uuid),
        "status": run.status,
        "ready": bool(run.ready),
        "api_calls": run.api_calls,
        "duration_ms": run.duration_ms,
        "error": run.error or None,
        "error_detail": run.error_detail or None,
        "steps": [
            {
                "key": key,
                "status": results[key].status,
                "summary": results[key].summary,
                "findings": [
                    {
                        "code": f["code"],
                        "severity": f["severity"],
                        "subject": f["subject"],
                        "repairable": bool(f.get("repairable")),
                        "error": finding_error(f),
                    }
                    for f in results[key].findings
                ],
            }
            for key in STEP_KEYS
            if key in results
        ],
    }


def finding_error(finding: dict) -> dict | None:
    """A stored finding's ConnectWise error detail (``ConnectWiseError.detail()``), or None when it has none."""
    error = (finding.get("data") or {}).get("error")
    return error if isinstance(error, dict) else None
