"""The audit trail page (views/audit.py) and the support tenant page's trail: a check shows its name (which steps
ran) and, once finished, its result per step with finding counts; no raw JSON or API field names anywhere."""

from __future__ import annotations

import re

import pytest
from django.urls import reverse

from onboarding.models import AuditEvent, CheckRun
from tests.onboarding.dashboard_factories import finding, make_run

pytestmark = pytest.mark.django_db


def started(tenant, run, actor) -> AuditEvent:
    steps = ", ".join(run.steps) if run.steps else "all steps"
    return AuditEvent.record(
        AuditEvent.Kind.RUN_STARTED,
        tenant=tenant,
        actor=actor,
        message=f"Check started ({steps})",
        run=str(run.uuid),
        trigger=run.trigger,
    )


def details(html: str) -> str:
    """The trail's table body: where a JSON dump used to appear."""
    return html[html.index("<tbody>") : html.index("</tbody>")]


def item(body: str, title: str) -> str:
    """The <li> of one step in a run's result list."""
    found = re.search(rf"<li[^>]*>(?:(?!</li>).)*{title}(?:(?!</li>).)*</li>", body, re.S)
    assert found, f"no result for {title} in {body}"
    return found.group(0)


def test_a_finished_check_shows_pass_or_fail_per_step_with_finding_counts(client, admin_a, tenant_a):
    full = make_run(
        tenant_a,
        {
            "connection": "pass",
            "catalog": (
                "fail",
                [finding("catalog.inactive", "misc-seat"), finding("catalog.uom", "misc-seat")],
            ),
            "customers": ("warn", [finding("customers.x", "Contoso", "warning")]),
        },
    )
    started(tenant_a, full, admin_a)
    client.force_login(admin_a)
    body = details(client.get(reverse("audit", args=[tenant_a.slug])).content.decode())
    assert re.search(r"Full check, \d{1,2} \w{3} \d\d:\d\d", body)
    assert "Not ready" in body
    catalog, customers = item(body, "Product catalog"), item(body, "Customers")
    assert "status-fail" in catalog and "2 findings" in catalog
    assert "status-warn" in customers and "1 finding" in customers and "1 findings" not in customers
    assert "status-pass" in item(body, "Connection")
    assert "all steps" not in body  # the stored message's step keys are replaced by the run's name


def test_a_one_step_check_is_named_by_its_step_and_a_running_one_says_so(client, admin_a, tenant_a):
    one = make_run(tenant_a, {}, steps=["agreements"], status=CheckRun.Status.RUNNING)
    CheckRun.objects.filter(pk=one.pk).update(finished_at=None)
    started(tenant_a, one, admin_a)
    client.force_login(admin_a)
    body = details(client.get(reverse("audit", args=[tenant_a.slug])).content.decode())
    assert re.search(r"Agreements only, \d{1,2} \w{3} \d\d:\d\d", body)
    assert "Checking" in body and "(agreements)" not in body


def test_the_trail_shows_no_raw_json_or_api_field_names(client, admin_a, support, tenant_a):
    AuditEvent.record(
        AuditEvent.Kind.OPERATION_APPLIED,
        tenant=tenant_a,
        actor=admin_a,
        message="Reactivate misc-seat",
        method="PATCH",
        path="procurement/catalog/12",
        before={
            "inactiveFlag": True,
            "unitOfMeasure": {"id": 3, "_info": {"x": 1}},
            "applicationUnits": ["a", "b"],
        },
        after={
            "inactiveFlag": False,
            "customFields": [{"id": 1, "value": "v"}],
            "billingCycle": {"x": {"y": 2}},
        },
        approved_by=admin_a.email,
    )
    AuditEvent.record(
        AuditEvent.Kind.CONNECTION_SAVED, tenant=tenant_a, actor=admin_a, message="Saved", site="x"
    )
    for user, url in (
        (admin_a, reverse("audit", args=[tenant_a.slug])),
        (support, reverse("support_tenant", args=[tenant_a.slug])),
    ):
        client.force_login(user)
        body = (
            details(client.get(url).content.decode()) if user == admin_a else client.get(url).content.decode()
        )
        if user == support:
            body = body[body.index("audit-table") :]
            body = body[: body.index("</table>")]
        assert "{" not in body and "[" not in body and "&quot;" not in body, body
        assert "inactiveFlag" not in body and "Inactive: Yes" in body and "Inactive: No" in body
        assert "_info" not in body


def test_step_keys_in_stored_lines_are_shown_as_step_titles(client, admin_a, tenant_a):
    for message in (
        "Repair plan for setup_tables: 4 changes",
        "Approved 1 change for catalog",
        "Retried the remaining changes of the existing_billing plan",
        "Check started (catalog, customers)",
    ):
        AuditEvent.record(AuditEvent.Kind.PLAN_CREATED, tenant=tenant_a, actor=admin_a, message=message)
    client.force_login(admin_a)
    body = details(client.get(reverse("audit", args=[tenant_a.slug])).content.decode())
    assert (
        "Repair plan for Setup tables: 4 changes" in body and "Approved 1 change for Product catalog" in body
    )
    assert "of the Seats billed today plan" in body and "Check started (Product catalog, Customers)" in body
    assert not re.search(r"setup_tables|existing_billing|\(catalog", body)


@pytest.mark.parametrize(
    ("label", "shown"),
    [
        ("schedule", "Automatic schedule"),
        ("demo seed", "Demo set-up"),
        ("", "System"),
        ("admin@acme.example", "admin@acme.example"),
    ],
)
def test_who_is_never_an_internal_name(label, shown):
    """The newcomer's screenshot walk saw "schedule" and "demo seed" in the Who column."""
    from onboarding.templatetags.onboarding_tags import audit_actor

    assert audit_actor(label) == shown


def test_a_finished_check_is_not_labelled_started_beside_its_results(client, admin_a, tenant_a):
    """The newcomer's screenshot walk: "Check started" sat beside the finished check's results, and Who read
    "schedule"."""
    started(tenant_a, make_run(tenant_a, {"connection": "pass"}), "schedule")
    client.force_login(admin_a)
    body = details(client.get(reverse("audit", args=[tenant_a.slug])).content.decode())
    assert "Check started" not in body and ">Check<" in body and "Automatic schedule" in body
