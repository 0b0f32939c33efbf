"""onboarding.results: stored results as the pages, the API and the CLI read them."""

from __future__ import annotations

import pytest

from onboarding import results, runs
from onboarding.models import CheckRun, StepResult

pytestmark = pytest.mark.django_db


def test_the_latest_result_of_each_step_wins(tenant_a):
    old = CheckRun.objects.create(tenant=tenant_a, status=CheckRun.Status.DONE)
    new = CheckRun.objects.create(tenant=tenant_a, status=CheckRun.Status.DONE)
    StepResult.objects.create(run=old, tenant=tenant_a, key="catalog", status="fail", findings=[])
    StepResult.objects.create(run=old, tenant=tenant_a, key="customers", status="pass", findings=[])
    latest = StepResult.objects.create(run=new, tenant=tenant_a, key="catalog", status="pass", findings=[])
    found = results.latest_results(tenant_a)
    assert set(found) == {"catalog", "customers"} and found["catalog"] == latest


def test_severity_groups_list_errors_then_warnings_then_infos_and_skip_empty_ones(tenant_a):
    run, _ = runs.start_run(tenant_a, enqueue=False)
    findings = [
        {"code": "a", "severity": "info"},
        {"code": "b", "severity": "error"},
        {"code": "c", "severity": "error"},
    ]
    result = StepResult(run=run, tenant=tenant_a, key="catalog", status="fail", findings=findings)
    assert [(s, [f["code"] for f in fs]) for s, fs in results.severity_groups(result)] == [
        ("error", ["b", "c"]),
        ("info", ["a"]),
    ]
