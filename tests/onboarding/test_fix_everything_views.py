"""Issue 18 in the browser's requests: "Fix everything that can be fixed" on the overview, the combined plan page,
and the Defaults for new agreements form (agreements page, summary, audit)."""

from __future__ import annotations

from unittest import mock

import pytest
from django.urls import reverse

from connectwise.checks.plans import COMBINED
from onboarding.models import AuditEvent, CheckRun, RepairOperation, RepairPlan
from tests.onboarding.wizard_helpers import (  # noqa: F401 (fixtures)
    clean_cache_fixture,
    connection_a_fixture,
    finding,
    stored_result,
)

pytestmark = pytest.mark.django_db

TYPES = [
    {"id": 1, "name": "O365", "allowed": True, "one_time": False, "inactive": False},
    {"id": 2, "name": "Azure Plan", "allowed": True, "one_time": False, "inactive": False},
    {"id": 3, "name": "Annual", "allowed": True, "one_time": True, "inactive": False},
    {"id": 4, "name": "Managed Services", "allowed": False, "one_time": False, "inactive": False},
]


@pytest.fixture
def build_delay():
    with mock.patch("onboarding.tasks.build_plan_task.delay") as delay:
        yield delay


def _repairable(tenant):
    stored_result(tenant, "catalog", "fail", [finding("catalog.misc_missing", repairable=True)])
    stored_result(
        tenant,
        "agreements",
        "fail",
        [
            finding("agreements.not_mapped", repairable=True),
            finding("agreements.prorate_off", repairable=True),
        ],
    )


def test_the_overview_offers_fix_everything_to_admins_only(client, admin_a, member_a, tenant_a, connection_a):
    _repairable(tenant_a)
    client.force_login(admin_a)
    html = client.get(reverse("tenant_home", args=[tenant_a.slug])).content.decode()
    assert "Fix everything that can be fixed" in html and "Product catalog: 1, Agreements: 2" in html
    assert reverse("plan_build", args=[tenant_a.slug, COMBINED]) in html
    client.force_login(member_a)
    html = client.get(reverse("tenant_home", args=[tenant_a.slug])).content.decode()
    assert reverse("plan_build", args=[tenant_a.slug, COMBINED]) not in html


def test_fix_everything_enqueues_one_combined_plan_build(
    client, admin_a, tenant_a, connection_a, build_delay, django_capture_on_commit_callbacks
):
    client.force_login(admin_a)
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(reverse("plan_build", args=[tenant_a.slug, COMBINED]))
    assert response.status_code == 302 and response["Location"].startswith(
        reverse("tenant_home", args=[tenant_a.slug])
    )
    building = RepairPlan.objects.get(tenant=tenant_a, step=COMBINED, status=RepairPlan.Status.BUILDING)
    build_delay.assert_called_once_with(tenant_a.pk, COMBINED, admin_a.pk, None, plan_id=building.pk)


def test_outsiders_and_members_cannot_build_or_set_defaults(
    client, member_a, outsider_b, tenant_a, connection_a, build_delay
):
    for user, status in ((outsider_b, 404), (member_a, 403)):
        client.force_login(user)
        assert client.post(reverse("plan_build", args=[tenant_a.slug, COMBINED])).status_code == status
        response = client.post(
            reverse("agreement_defaults_save", args=[tenant_a.slug]), {"monthly_type": "1"}
        )
        assert response.status_code == status
    build_delay.assert_not_called()
    tenant_a.refresh_from_db()
    assert tenant_a.agreement_defaults == {}


def _combined_plan(tenant, admin):
    plan = RepairPlan.objects.create(tenant=tenant, step=COMBINED, created_by=admin)
    ops = [
        (
            "setup_tables",
            "POST",
            "procurement/categories",
            {"name": "Miscellaneous"},
            "tables.category_missing",
        ),
        ("catalog", "POST", "procurement/catalog", {"identifier": "misc"}, "catalog.misc_missing"),
    ]
    ops += [
        (
            "agreements",
            "POST",
            "finance/agreements",
            {"name": f"Company {i} - Microsoft 365", "company": {"id": i}},
            "agreements.not_mapped",
        )
        for i in range(1, 121)
    ]
    RepairOperation.objects.bulk_create(
        [
            RepairOperation(
                plan=plan,
                seq=seq,
                step=step,
                method=method,
                path=path,
                body=body,
                finding_code=code,
                subject=f"record {seq}",
                description=f"change {seq}",
            )
            for seq, (step, method, path, body, code) in enumerate(ops, start=1)
        ]
    )
    return plan


def test_the_combined_plan_page_summarises_per_step_and_pages_the_changes(
    client, admin_a, tenant_a, connection_a, django_assert_max_num_queries
):
    plan = _combined_plan(tenant_a, admin_a)
    stored_result(
        tenant_a,
        "agreements",
        "fail",
        [
            finding(
                "agreements.not_mapped",
                subject="Company Woodgrove (id 9)",
                data={"not_repairable": "the company has no default contact"},
            )
        ],
    )
    stored_result(tenant_a, "security_role", "fail", [finding("role.insufficient_level")])
    client.force_login(admin_a)
    url = reverse("plan", args=[tenant_a.slug, plan.uuid])
    with django_assert_max_num_queries(25):
        html = client.get(url).content.decode()
    assert html.index("Setup tables") < html.index("Product catalog") < html.index("Agreements")
    assert "Create 120 records" in html and "Page 1 of 3" in html
    assert "Cannot be fixed here: 1" in html and "the company has no default contact" in html
    assert "ConnectWise does not let the API change security roles" in html
    assert "record 51" not in html and "record 50" in html
    page3 = client.get(url + "?page=3").content.decode()
    assert "record 122" in page3 and "record 1<" not in page3
    # the live fragment keeps the page it shows
    RepairPlan.objects.filter(pk=plan.pk).update(status=RepairPlan.Status.APPLYING)
    fragment = client.get(
        reverse("plan_status", args=[tenant_a.slug, plan.uuid]) + "?page=2"
    ).content.decode()
    assert "?page=2" in fragment and "record 60" in fragment and "0 of 122 done" in fragment


def test_admin_saves_defaults_audited_and_shown_on_the_summary(client, admin_a, tenant_a, connection_a):
    tenant_a.agreement_types = TYPES
    tenant_a.save()
    client.force_login(admin_a)
    page = client.get(reverse("step", args=[tenant_a.slug, "agreements"])).content.decode()
    assert "Defaults for new agreements" in page and "Managed Services" not in page
    response = client.post(
        reverse("agreement_defaults_save", args=[tenant_a.slug]),
        {
            "monthly_type": "1",
            "monthly_name": "{company} - Microsoft 365",
            "annual_type": "3",
            "annual_name": "{company} annual",
            "annual_start": "2026-12-01",
            "annual_one_time": "on",
        },
    )
    assert response.status_code == 302
    tenant_a.refresh_from_db()
    assert tenant_a.agreement_defaults == {
        "monthly": {"type_id": 1, "type_name": "O365", "name": "{company} - Microsoft 365", "start": ""},
        "annual": {
            "type_id": 3,
            "type_name": "Annual",
            "name": "{company} annual",
            "start": "2026-12-01",
            "one_time": True,
        },
    }
    run = CheckRun.objects.get(tenant=tenant_a)  # the agreements are checked again with the defaults
    assert run.steps == ["agreements"] and run.actor == admin_a
    event = AuditEvent.objects.get(tenant=tenant_a, kind=AuditEvent.Kind.DEFAULTS_CHANGED)
    assert event.actor == admin_a and event.detail["after"] == tenant_a.agreement_defaults
    summary = client.get(reverse("summary", args=[tenant_a.slug])).content.decode()
    assert "O365 (id 1)" in summary and "{company} annual" in summary and "2026-12-01" in summary


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"monthly_type": "4"}, "Select a valid choice"),  # not allowed by the role: not offered, refused
        ({"monthly_type": "1", "monthly_name": "{customer}"}, "unknown placeholder"),
        ({"monthly_type": "1", "monthly_name": "x" * 120}, "ConnectWise allows 100"),
        ({"monthly_type": "1", "monthly_start": "2026-13-45"}, "Enter a valid date"),
    ],
)
def test_bad_defaults_are_refused_next_to_the_field_and_nothing_is_saved(
    client, admin_a, tenant_a, connection_a, data, message
):
    tenant_a.agreement_types = TYPES
    tenant_a.agreement_defaults = {
        "azure": {"type_id": 2, "type_name": "Azure Plan", "name": "x", "start": ""}
    }
    tenant_a.save()
    client.force_login(admin_a)
    response = client.post(reverse("agreement_defaults_save", args=[tenant_a.slug]), data)
    assert response.status_code == 400
    assert message in response.content.decode()
    tenant_a.refresh_from_db()
    assert tenant_a.agreement_defaults == {
        "azure": {"type_id": 2, "type_name": "Azure Plan", "name": "x", "start": ""}
    }
    assert not AuditEvent.objects.filter(kind=AuditEvent.Kind.DEFAULTS_CHANGED).exists()
