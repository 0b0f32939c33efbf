"""The agreements page: billing motion and target agreement per chosen company, bulk motion, and each rule's
pass or fail from the latest stored agreements result."""

from __future__ import annotations

import pytest
from django.urls import reverse

from connectwise.checks import codes
from onboarding.models import AuditEvent, CompanyChoice
from tests.onboarding.wizard_helpers import (  # noqa: F401 (fixtures)
    agreement,
    clean_cache_fixture,
    directory_row,
    finding,
    stored_result,
)

pytestmark = pytest.mark.django_db


@pytest.fixture
def chosen(tenant_a):
    """Contoso has one monthly agreement; Fabrikam has two (ambiguous); Tailspin has a monthly and a one-time."""
    directory_row(tenant_a, 1, "Contoso Ltd", agreements=[agreement(10, "Contoso O365")])
    directory_row(tenant_a, 2, "Fabrikam Inc", agreements=[agreement(20, "Fab A"), agreement(21, "Fab B")])
    directory_row(
        tenant_a,
        3,
        "Tailspin Toys",
        agreements=[agreement(30, "Tailspin monthly"), agreement(31, "Tailspin annual", cycle="One Time")],
    )
    return [
        CompanyChoice.objects.create(
            tenant=tenant_a, cw_company_id=1, identifier="Contoso", name="Contoso Ltd"
        ),
        CompanyChoice.objects.create(tenant=tenant_a, cw_company_id=2, identifier="Fab", name="Fabrikam Inc"),
        CompanyChoice.objects.create(
            tenant=tenant_a, cw_company_id=3, identifier="Tail", name="Tailspin Toys"
        ),
    ]


def _page(client, tenant, **params):
    return client.get(reverse("step", args=[tenant.slug, "agreements"]), params)


def _rows(response) -> dict[int, dict]:
    return {r["choice"].cw_company_id: r for r in response.context["rows"]}


def test_no_chosen_company_sends_the_admin_to_customers(client, admin_a, tenant_a):
    client.force_login(admin_a)
    html = _page(client, tenant_a).content.decode()
    assert "No customer is chosen yet" in html
    assert reverse("step", args=[tenant_a.slug, "customers"]) in html


def test_automatic_choice_is_shown_when_exactly_one_agreement_fits(client, admin_a, tenant_a, chosen):
    CompanyChoice.objects.filter(cw_company_id=3).update(motion=CompanyChoice.Motion.ANNUAL)
    client.force_login(admin_a)
    response = _page(client, tenant_a)
    rows = _rows(response)
    assert rows[1]["auto"]["id"] == 10
    assert rows[2]["auto"] is None and len(rows[2]["candidates"]) == 2
    assert rows[3]["auto"]["id"] == 31  # annual: the one-time agreement
    html = response.content.decode()
    assert "Automatically: <strong>Contoso O365</strong>" in html
    assert "2 agreements fit: choose one." in html
    assert "Choose automatically" in html


def test_admin_saves_motion_and_target_agreement(client, admin_a, tenant_a, chosen):
    client.force_login(admin_a)
    response = client.post(
        reverse("agreements_save", args=[tenant_a.slug]),
        {
            "action": "save",
            "row": ["1", "2"],
            "motion-1": "azure",
            "agreement-1": "",
            "motion-2": "monthly",
            "agreement-2": "21",
        },
    )
    assert response.status_code == 302
    c1, c2 = CompanyChoice.objects.get(cw_company_id=1), CompanyChoice.objects.get(cw_company_id=2)
    assert (c1.motion, c1.agreement_id) == ("azure", None)
    assert (c2.motion, c2.agreement_id) == ("monthly", 21)
    assert AuditEvent.objects.filter(tenant=tenant_a, kind=AuditEvent.Kind.CUSTOMERS_CHANGED).count() == 1
    html = _page(client, tenant_a).content.decode()
    assert '<option value="21" selected>' in html


def test_an_agreement_of_another_company_is_refused(client, admin_a, tenant_a, chosen):
    client.force_login(admin_a)
    response = client.post(
        reverse("agreements_save", args=[tenant_a.slug]),
        {"action": "save", "row": ["1"], "motion-1": "monthly", "agreement-1": "20"},
        follow=True,
    )
    assert "does not belong to this company" in response.content.decode()
    assert CompanyChoice.objects.get(cw_company_id=1).agreement_id is None


def test_an_unknown_motion_is_refused(client, admin_a, tenant_a, chosen):
    client.force_login(admin_a)
    client.post(
        reverse("agreements_save", args=[tenant_a.slug]),
        {"action": "save", "row": ["1"], "motion-1": "weekly", "agreement-1": ""},
    )
    assert CompanyChoice.objects.get(cw_company_id=1).motion == "monthly"


def test_bulk_sets_the_motion_of_the_selected_companies(client, admin_a, tenant_a, chosen):
    client.force_login(admin_a)
    response = client.post(
        reverse("agreements_save", args=[tenant_a.slug]),
        {
            "action": "bulk",
            "company": ["1", "3"],
            "bulk_motion": "annual",
            "motion-2": "azure",
            "row": ["1", "2", "3"],
        },
    )
    assert response.status_code == 302
    motions = dict(CompanyChoice.objects.values_list("cw_company_id", "motion"))
    assert motions == {
        1: "annual",
        2: "monthly",
        3: "annual",
    }  # the row fields are not saved by a bulk action
    assert AuditEvent.objects.filter(tenant=tenant_a, kind=AuditEvent.Kind.CUSTOMERS_CHANGED).count() == 1


def test_bulk_without_a_selection_changes_nothing(client, admin_a, tenant_a, chosen):
    client.force_login(admin_a)
    client.post(reverse("agreements_save", args=[tenant_a.slug]), {"action": "bulk", "bulk_motion": "annual"})
    assert set(CompanyChoice.objects.values_list("motion", flat=True)) == {"monthly"}


def test_saving_is_403_for_a_member_and_404_for_an_outsider(client, member_a, outsider_b, tenant_a, chosen):
    url = reverse("agreements_save", args=[tenant_a.slug])
    data = {"action": "bulk", "company": ["1"], "bulk_motion": "annual"}
    client.force_login(member_a)
    assert client.post(url, data).status_code == 403
    html = _page(client, tenant_a).content.decode()
    assert "Save mapping" not in html and "<select" not in html
    client.force_login(outsider_b)
    assert client.post(url, data).status_code == 404
    assert CompanyChoice.objects.get(cw_company_id=1).motion == "monthly"


def test_rules_show_pass_and_fail_from_the_latest_result(client, member_a, tenant_a, chosen):
    stored_result(
        tenant_a,
        "agreements",
        "fail",
        [
            finding(
                codes.AGREEMENTS_PRORATE_OFF,
                record={"path": "finance/agreements", "id": 10},
                data={"company_id": 1, "agreement_id": 10, "motion": "monthly"},
                repairable=True,
            ),
            finding(
                codes.AGREEMENTS_AMBIGUOUS,
                record={"path": "company/companies", "id": 2},
                data={"company_id": 2},
            ),
            # type_not_allowed carries only the agreement id: matched to its company through the directory
            finding(
                codes.AGREEMENTS_TYPE_NOT_ALLOWED,
                record={"path": "finance/agreements", "id": 30},
                data={"agreement_id": 30},
            ),
        ],
    )
    client.force_login(member_a)
    rows = _rows(_page(client, tenant_a))
    contoso = {r["key"]: r["state"] for r in rows[1]["rules"]}
    assert contoso["prorate"] == "fail"
    assert contoso["monthly"] == "pass" and contoso["active"] == "pass" and contoso["target"] == "pass"
    assert "one_time" not in contoso  # a monthly customer has no one-time rule
    fabrikam = {r["key"]: r["state"] for r in rows[2]["rules"]}
    assert fabrikam["target"] == "fail" and fabrikam["prorate"] == "na"
    tailspin = {r["key"]: r["state"] for r in rows[3]["rules"]}
    assert tailspin["type"] == "fail" and tailspin["prorate"] == "pass"


def test_rules_are_not_checked_before_the_first_check(client, member_a, tenant_a, chosen):
    client.force_login(member_a)
    rows = _rows(_page(client, tenant_a))
    assert {r["state"] for r in rows[1]["rules"]} == {"none"}
    assert "Not checked yet" in _page(client, tenant_a).content.decode()


def test_agreements_page_is_404_for_an_outsider(client, outsider_b, tenant_a, chosen):
    client.force_login(outsider_b)
    assert _page(client, tenant_a).status_code == 404
