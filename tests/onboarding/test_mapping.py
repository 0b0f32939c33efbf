"""onboarding/mapping.py: every change of what a chosen company's mapping says emits ``mapping.changed``, including
the ones no page makes: a repair plan's created agreement becoming a company's target when the re-check stores it."""

from __future__ import annotations

import pytest

from connectwise.checks.base import Status, StepOutcome
from onboarding import mapping, runs, webhooks
from onboarding.models import AuditEvent, CheckRun, CompanyChoice, WebhookDelivery, WebhookEndpoint
from tests.onboarding.wizard_helpers import agreement, directory_row


@pytest.fixture
def endpoint(tenant_a, monkeypatch):
    monkeypatch.setattr(webhooks.deliver, "delay", lambda *a, **k: None)
    endpoint = WebhookEndpoint(url="https://hooks.example.com/a", events=["mapping.changed"])
    endpoint.set_secret("whsec_test")
    endpoint.save()
    return endpoint


def _company(cid: int, name: str, agreements: list[dict]) -> dict:
    return {"id": cid, "identifier": name, "name": name, "status": "Active", "inactive": False,
            "active_agreements": sum(1 for a in agreements if a["active"]), "agreements": agreements}  # fmt: skip


def _recheck(tenant, companies: list[dict], django_capture_on_commit_callbacks) -> list[str]:
    """The customers step's re-check storing the company list, as after a plan's verify run."""
    before = WebhookDelivery.objects.count()
    run = CheckRun.objects.create(tenant=tenant, status=CheckRun.Status.RUNNING)
    outcome = StepOutcome("customers", Status.PASS, facts={"directory": companies})
    with django_capture_on_commit_callbacks(execute=True):
        runs.finish(run, [outcome], calls=1, retries=0, started=0)
    return list(WebhookDelivery.objects.order_by("id").values_list("event", flat=True)[before:])


@pytest.mark.django_db
def test_a_created_agreement_that_becomes_the_target_emits_mapping_changed(
    tenant_a, endpoint, django_capture_on_commit_callbacks
):
    directory_row(tenant_a, 7, "Contoso", agreements=[])
    CompanyChoice.objects.create(tenant=tenant_a, cw_company_id=7, name="Contoso", motion="annual")
    assert mapping.targets(tenant_a) == {7: None}
    # The combined plan created a one-time agreement for Contoso; its re-check stores the new company list.
    created = agreement(501, "Contoso annual", cycle="One Time")
    events = _recheck(tenant_a, [_company(7, "Contoso", [created])], django_capture_on_commit_callbacks)
    assert events == ["mapping.changed"]
    assert mapping.targets(tenant_a) == {7: 501}
    delivery = WebhookDelivery.objects.get(event="mapping.changed")
    assert delivery.payload["data"]["mapping_url"].endswith(f"/api/v1/tenants/{tenant_a.slug}/mapping/")
    audit = AuditEvent.objects.get(kind=AuditEvent.Kind.CUSTOMERS_CHANGED)
    assert "Contoso" in audit.message and "501" in audit.message
    # The same list again: nothing changed, nothing sent.
    assert _recheck(tenant_a, [_company(7, "Contoso", [created])], django_capture_on_commit_callbacks) == []


@pytest.mark.django_db
def test_a_directory_change_that_leaves_every_target_alone_emits_nothing(
    tenant_a, endpoint, django_capture_on_commit_callbacks
):
    monthly = agreement(11, "Contoso O365")
    directory_row(tenant_a, 7, "Contoso", agreements=[monthly])
    CompanyChoice.objects.create(tenant=tenant_a, cw_company_id=7, name="Contoso", motion="monthly")
    assert mapping.targets(tenant_a) == {7: 11}
    # Another company (not chosen) gained an agreement, and Contoso's agreement was renamed: same targets.
    companies = [
        _company(7, "Contoso", [{**monthly, "name": "Contoso Microsoft 365"}]),
        _company(8, "Fabrikam", [agreement(12, "Fabrikam O365")]),
    ]
    assert _recheck(tenant_a, companies, django_capture_on_commit_callbacks) == []
    # Its agreement cancelled: Contoso has no target any more, which the billing sync must hear.
    companies[0] = _company(7, "Contoso", [agreement(11, "Contoso O365", active=False)])
    assert _recheck(tenant_a, companies, django_capture_on_commit_callbacks) == ["mapping.changed"]
    assert mapping.targets(tenant_a) == {7: None}


@pytest.mark.django_db
def test_an_explicit_target_is_the_target_whatever_the_directory_says(tenant_a):
    directory_row(tenant_a, 7, "Contoso", agreements=[agreement(11, "A"), agreement(12, "B")])
    CompanyChoice.objects.create(tenant=tenant_a, cw_company_id=7, name="Contoso", motion="monthly")
    CompanyChoice.objects.create(
        tenant=tenant_a, cw_company_id=9, name="Gone", motion="monthly", agreement_id=44
    )
    CompanyChoice.objects.create(tenant=tenant_a, cw_company_id=5, name="Unread", motion="monthly")
    # Two candidates: no automatic target; company 5 is not in the stored list: unknown, left out.
    assert mapping.targets(tenant_a) == {7: None, 9: 44}


@pytest.mark.django_db
def test_the_first_company_list_is_not_a_change(tenant_a, endpoint, django_capture_on_commit_callbacks):
    """Before any list is stored the targets are unknown; learning them is not a mapping change (it would make
    existing_billing due after every first check)."""
    CompanyChoice.objects.create(tenant=tenant_a, cw_company_id=7, name="Contoso", motion="monthly")
    assert mapping.targets(tenant_a) == {}
    companies = [_company(7, "Contoso", [agreement(11, "Contoso O365")])]
    assert _recheck(tenant_a, companies, django_capture_on_commit_callbacks) == []
    assert mapping.targets(tenant_a) == {7: 11}
