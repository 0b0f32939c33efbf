"""Results follow the partner's changes (issue 14): connecting checks every step, a change of choices re-checks
the steps that judge them by itself, "Check now" re-checks the step's dependents, and a stored result that judged
other choices is never shown as the step's state. Checks run against the in-process sandbox (broken scenario)."""

from __future__ import annotations

from unittest import mock

import pytest
from django.urls import reverse

from connectwise.checks import codes
from onboarding import runs
from onboarding.models import CheckRun, CompanyChoice
from tests.onboarding.wizard_helpers import (  # noqa: F401 (fixtures)
    clean_cache_fixture,
    sandboxed_fixture,
)

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _no_worker():
    with mock.patch("onboarding.tasks.run_checks.delay") as delay:
        yield delay


def _active(tenant) -> CheckRun | None:
    return CheckRun.objects.filter(tenant=tenant, status__in=CheckRun.ACTIVE).first()


def _execute_active(tenant) -> CheckRun:
    """What the worker does with the queued run."""
    run = _active(tenant)
    assert run is not None, "no run was started"
    return runs.execute_run(runs.claim(run.pk))


def _verify(tenant, steps=None) -> CheckRun:
    run, created = runs.start_run(tenant, steps=steps, enqueue=False)
    assert created
    return runs.execute_run(runs.claim(run.pk))


def test_saving_the_connection_checks_every_step(client, admin_a, tenant_a, settings):
    settings.CONNECTWISE_SANDBOX_URL = "http://sandbox.test"
    client.force_login(admin_a)
    response = client.post(
        reverse("step", args=[tenant_a.slug, "connection"]),
        {
            "region": "sandbox",
            "company_id": "brokenco",
            "public_key": "brokenpub",
            "private_key": "brokenpriv-1",
        },
    )
    assert response.status_code == 302, response.content.decode()[:2000]
    run = _active(tenant_a)
    assert run is not None and run.requested_steps() == list(runs.STEP_KEYS)


def test_check_now_rechecks_the_step_and_its_dependents(client, admin_a, tenant_a, sandboxed):
    client.force_login(admin_a)
    client.post(reverse("run_check", args=[tenant_a.slug]), {"step": "setup_tables"})
    assert _active(tenant_a).requested_steps() == ["catalog", "setup_tables"]


def test_choosing_customers_rechecks_customers_and_agreements_by_itself(client, admin_a, tenant_a, sandboxed):
    client.force_login(admin_a)
    _verify(tenant_a)
    page = client.get(reverse("step", args=[tenant_a.slug, "customers"])).content.decode()
    assert codes.CUSTOMERS_NONE_SELECTED in page

    client.post(reverse("customers_select", args=[tenant_a.slug]), {"action": "add", "company": ["7", "8"]})
    run = _active(tenant_a)
    assert run is not None and run.trigger == CheckRun.Trigger.CHANGE
    assert {"customers", "agreements"} <= set(run.requested_steps())

    # Until the re-check ends, neither page shows the old verdict on the new choices.
    for key in ("customers", "agreements"):
        page = client.get(reverse("step", args=[tenant_a.slug, key]))
        html = page.content.decode()
        assert page.context["stale"] is True, key  # agreements was blocked: it judged "no company chosen"
        assert "changed since the last check, checking" in html
        assert codes.CUSTOMERS_NONE_SELECTED not in html and "status-blocked" not in html
        assert "status-stale" in html

    _execute_active(tenant_a)
    page = client.get(reverse("step", args=[tenant_a.slug, "customers"]))
    assert page.context["stale"] is False
    assert codes.CUSTOMERS_NONE_SELECTED not in page.content.decode()
    agreements = client.get(reverse("step", args=[tenant_a.slug, "agreements"]))
    assert agreements.context["result"].status != "blocked"


def test_saving_the_agreement_mapping_rechecks_by_itself(client, admin_a, tenant_a, sandboxed):
    client.force_login(admin_a)
    CompanyChoice.objects.create(tenant=tenant_a, cw_company_id=12, name="Coho Winery")
    _verify(tenant_a)
    client.post(
        reverse("agreements_save", args=[tenant_a.slug]),
        {"action": "save", "row": ["12"], "motion-12": "annual", "agreement-12": ""},
    )
    run = _active(tenant_a)
    assert run is not None and "agreements" in run.requested_steps()
    page = client.get(reverse("step", args=[tenant_a.slug, "agreements"]))
    assert page.context["stale"] is True
    assert all(rule["state"] == "none" for row in page.context["rows"] for rule in row["rules"])


def test_a_change_saved_during_a_run_is_rechecked_when_it_ends(client, admin_a, tenant_a, sandboxed):
    client.force_login(admin_a)
    run, _ = runs.start_run(tenant_a, steps=["customers"], enqueue=False)
    # Its own re-check cannot start while a run is active (one active run per tenant) ...
    client.post(reverse("customers_select", args=[tenant_a.slug]), {"action": "add", "company": ["7"]})
    assert _active(tenant_a).pk == run.pk
    runs.execute_run(runs.claim(run.pk))
    # ... this run read the new choice, so nothing is stale; a later change is.
    assert runs.recheck_changed(tenant_a.pk) is None
    CompanyChoice.objects.create(tenant=tenant_a, cw_company_id=9, name="Proseware")
    follow = runs.recheck_changed(tenant_a.pk)
    assert follow is not None and follow.trigger == CheckRun.Trigger.CHANGE
    assert {"customers", "agreements"} <= set(follow.requested_steps())
