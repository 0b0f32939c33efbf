"""The wizard: overview, step pages, the connection form and its replace-key flow, checks, and the summary."""

from __future__ import annotations

from unittest import mock

import pytest
from django.urls import reverse

from connectwise.checks.registry import READINESS_KEYS, STEP_KEYS
from onboarding.models import ApprovedHost, AuditEvent, CheckRun, Connection
from tests.onboarding.wizard_helpers import (  # noqa: F401 (fixtures)
    PRIVATE_KEY,
    clean_cache_fixture,
    connection_a_fixture,
    finding,
    stored_result,
)

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _no_worker():
    """Views enqueue after commit; make sure nothing reaches a broker from these tests."""
    with mock.patch("onboarding.tasks.run_checks.delay") as delay:
        yield delay


def _connection_data(**overrides):
    return {
        "region": "api-eu.myconnectwise.net",
        "onprem_host": "",
        "company_id": "northwind",
        "public_key": "pub-abc",
        "private_key": PRIVATE_KEY,
        **overrides,
    }


# Access ------------------------------------------------------------------------------------------------------


def test_tenant_overview_is_404_for_an_outsider(client, outsider_b, tenant_a):
    client.force_login(outsider_b)
    assert client.get(reverse("tenant_home", args=[tenant_a.slug])).status_code == 404


@pytest.mark.parametrize("key", STEP_KEYS)
def test_every_step_page_is_404_for_an_outsider(client, outsider_b, tenant_a, key):
    client.force_login(outsider_b)
    assert client.get(reverse("step", args=[tenant_a.slug, key])).status_code == 404


@pytest.mark.parametrize("key", STEP_KEYS)
def test_every_step_page_explains_the_step_to_a_member(client, member_a, tenant_a, key):
    from onboarding.steps_text import STEP_TEXT

    client.force_login(member_a)
    response = client.get(reverse("step", args=[tenant_a.slug, key]))
    assert response.status_code == 200
    html = response.content.decode()
    assert "Why this matters" in html
    assert STEP_TEXT[key]["manual"][0].split(">")[0].strip() in html  # the manual click path
    assert "Check now" not in html  # read-only


def test_unknown_step_is_404(client, admin_a, tenant_a):
    client.force_login(admin_a)
    assert client.get(reverse("step", args=[tenant_a.slug, "nope"])).status_code == 404


def test_anonymous_visitors_are_sent_to_sign_in(client, tenant_a):
    response = client.get(reverse("step", args=[tenant_a.slug, "catalog"]))
    assert response.status_code == 302 and response.url.startswith(reverse("login"))


def test_support_reads_a_step_but_sees_no_buttons(client, support, tenant_a, connection_a):
    client.force_login(support)
    html = client.get(reverse("step", args=[tenant_a.slug, "connection"])).content.decode()
    assert "Check now" not in html and "Save and check connection" not in html
    assert PRIVATE_KEY not in html


# Connection form ---------------------------------------------------------------------------------------------


def test_admin_saves_a_connection_and_a_check_starts(client, admin_a, tenant_a):
    client.force_login(admin_a)
    response = client.post(reverse("step", args=[tenant_a.slug, "connection"]), _connection_data())
    assert response.status_code == 302
    conn = Connection.objects.get(tenant=tenant_a)
    assert conn.site == "api-eu.myconnectwise.net" and conn.company_id == "northwind"
    assert conn.get_private_key() == PRIVATE_KEY
    assert PRIVATE_KEY not in conn.private_key_encrypted
    run = CheckRun.objects.get(tenant=tenant_a)
    assert run.steps == [] and run.actor == admin_a
    assert AuditEvent.objects.filter(tenant=tenant_a, kind=AuditEvent.Kind.CONNECTION_SAVED).exists()


def test_first_connection_requires_a_private_key(client, admin_a, tenant_a):
    client.force_login(admin_a)
    response = client.post(
        reverse("step", args=[tenant_a.slug, "connection"]), _connection_data(private_key="")
    )
    assert response.status_code == 400
    assert "This field is required" in response.content.decode()
    assert not Connection.objects.exists()


def test_private_key_is_never_echoed_back_on_a_form_error(client, admin_a, tenant_a):
    client.force_login(admin_a)
    response = client.post(
        reverse("step", args=[tenant_a.slug, "connection"]), _connection_data(company_id="")
    )
    assert response.status_code == 400
    assert PRIVATE_KEY not in response.content.decode()


def test_saved_connection_shows_the_key_masked_only(client, admin_a, tenant_a, connection_a):
    client.force_login(admin_a)
    html = client.get(reverse("step", args=[tenant_a.slug, "connection"])).content.decode()
    assert PRIVATE_KEY not in html
    assert "••••••••" + PRIVATE_KEY[-4:] in html
    assert "replace the private key" in html
    assert (
        'name="new_private_key"' not in html
    )  # one way to replace it: the connection form (issue 14 item 6)
    assert 'name="private_key" value' not in html  # write-only: never rendered with a value


def test_a_host_that_is_not_a_host_name_gets_a_clear_message(client, admin_a, tenant_a):
    client.force_login(admin_a)
    response = client.post(
        reverse("step", args=[tenant_a.slug, "connection"]),
        _connection_data(region="onprem", onprem_host="cw example!.com"),
    )
    assert response.status_code == 400
    assert "is not a valid host name" in response.content.decode()
    assert not Connection.objects.exists()


def test_an_unapproved_on_premise_host_is_refused_with_the_reason(client, admin_a, tenant_a):
    client.force_login(admin_a)
    response = client.post(
        reverse("step", args=[tenant_a.slug, "connection"]),
        _connection_data(region="onprem", onprem_host="cw.partner.example"),
    )
    assert response.status_code == 400
    html = response.content.decode()
    assert "cw.partner.example is not a ConnectWise cloud host" in html
    assert "approve" in html
    assert not Connection.objects.exists()


def test_an_approved_on_premise_host_is_accepted(client, admin_a, tenant_a):
    ApprovedHost.objects.create(hostname="cw.partner.example")
    client.force_login(admin_a)
    with mock.patch("onboarding.netguard.refuse_reason", return_value=None):
        response = client.post(
            reverse("step", args=[tenant_a.slug, "connection"]),
            _connection_data(region="onprem", onprem_host="cw.partner.example"),
        )
    assert response.status_code == 302
    assert Connection.objects.get(tenant=tenant_a).site == "cw.partner.example"


def test_on_premise_needs_a_host_name(client, admin_a, tenant_a):
    client.force_login(admin_a)
    response = client.post(
        reverse("step", args=[tenant_a.slug, "connection"]), _connection_data(region="onprem", onprem_host="")
    )
    assert "Enter your on-premise ConnectWise host name" in response.content.decode()


def test_host_field_is_marked_for_the_on_premise_toggle(client, admin_a, tenant_a):
    client.force_login(admin_a)
    html = client.get(reverse("step", args=[tenant_a.slug, "connection"])).content.decode()
    assert 'data-onprem-toggle="onprem"' in html
    assert "onprem-only" in html
    assert "<script>" not in html and "style=" not in html  # CSP: no inline script or style


def test_editing_the_connection_keeps_the_stored_key(client, admin_a, tenant_a, connection_a):
    client.force_login(admin_a)
    data = _connection_data(region="api-au.myconnectwise.net", company_id="acme2")
    data.pop("private_key")
    assert client.post(reverse("step", args=[tenant_a.slug, "connection"]), data).status_code == 302
    connection_a.refresh_from_db()
    assert connection_a.site == "api-au.myconnectwise.net" and connection_a.company_id == "acme2"
    assert connection_a.get_private_key() == PRIVATE_KEY


def test_a_new_key_in_the_connection_form_replaces_the_stored_one(client, admin_a, tenant_a, connection_a):
    client.force_login(admin_a)
    data = _connection_data(
        region="api-na.myconnectwise.net", company_id="acme", private_key="OTHER-KEY-1111-2222"
    )
    assert client.post(reverse("step", args=[tenant_a.slug, "connection"]), data).status_code == 302
    connection_a.refresh_from_db()
    assert connection_a.get_private_key() == "OTHER-KEY-1111-2222"
    assert AuditEvent.objects.filter(tenant=tenant_a, kind=AuditEvent.Kind.KEY_REPLACED).count() == 1


def test_member_cannot_save_a_connection(client, member_a, tenant_a):
    client.force_login(member_a)
    response = client.post(reverse("step", args=[tenant_a.slug, "connection"]), _connection_data())
    assert response.status_code == 403
    assert not Connection.objects.exists()


def test_outsider_cannot_save_a_connection(client, outsider_b, tenant_a):
    client.force_login(outsider_b)
    assert (
        client.post(reverse("step", args=[tenant_a.slug, "connection"]), _connection_data()).status_code
        == 404
    )


def test_post_to_another_step_page_is_not_allowed(client, admin_a, tenant_a):
    client.force_login(admin_a)
    assert client.post(reverse("step", args=[tenant_a.slug, "catalog"])).status_code == 405


# Replace key -------------------------------------------------------------------------------------------------


def test_admin_replaces_only_the_private_key(client, admin_a, tenant_a, connection_a):
    client.force_login(admin_a)
    response = client.post(
        reverse("replace_key", args=[tenant_a.slug]), {"new_private_key": "NEWKEY-0000-abcd-9876"}
    )
    assert response.status_code == 302
    connection_a.refresh_from_db()
    assert connection_a.get_private_key() == "NEWKEY-0000-abcd-9876"
    assert connection_a.company_id == "acme" and connection_a.site == "api-na.myconnectwise.net"
    event = AuditEvent.objects.get(tenant=tenant_a, kind=AuditEvent.Kind.KEY_REPLACED)
    assert "NEWKEY" not in event.message and "NEWKEY" not in str(event.detail)
    assert CheckRun.objects.get(tenant=tenant_a).steps == []  # every step is checked with the new key
    html = client.get(reverse("step", args=[tenant_a.slug, "connection"])).content.decode()
    assert "NEWKEY-0000-abcd-9876" not in html and "••••••••9876" in html


def test_replacing_with_an_empty_key_says_so(client, admin_a, tenant_a, connection_a):
    client.force_login(admin_a)
    response = client.post(reverse("replace_key", args=[tenant_a.slug]), {"new_private_key": ""})
    assert response.status_code == 400
    assert "This field is required" in response.content.decode()
    connection_a.refresh_from_db()
    assert connection_a.get_private_key() == PRIVATE_KEY


def test_replace_key_is_403_for_a_member_and_404_for_an_outsider(
    client, member_a, outsider_b, tenant_a, connection_a
):
    url = reverse("replace_key", args=[tenant_a.slug])
    client.force_login(member_a)
    assert client.post(url, {"new_private_key": "x" * 20}).status_code == 403
    client.force_login(outsider_b)
    assert client.post(url, {"new_private_key": "x" * 20}).status_code == 404
    connection_a.refresh_from_db()
    assert connection_a.get_private_key() == PRIVATE_KEY


# Checks and results ------------------------------------------------------------------------------------------


def test_check_now_starts_a_run_of_the_step(client, admin_a, tenant_a, connection_a):
    client.force_login(admin_a)
    url = reverse("step", args=[tenant_a.slug, "catalog"])
    response = client.post(reverse("run_check", args=[tenant_a.slug]), {"step": "catalog", "next": url})
    assert response.status_code == 302 and response.url == url
    run = CheckRun.objects.get(tenant=tenant_a)
    assert run.steps == ["catalog"]
    html = client.get(url).content.decode()
    assert reverse("run_status", args=[tenant_a.slug, run.uuid]) in html
    assert 'aria-live="polite"' in html


def test_check_now_is_403_for_a_member_and_404_for_an_outsider(client, member_a, outsider_b, tenant_a):
    client.force_login(member_a)
    assert client.post(reverse("run_check", args=[tenant_a.slug])).status_code == 403
    client.force_login(outsider_b)
    assert client.post(reverse("run_check", args=[tenant_a.slug])).status_code == 404
    assert not CheckRun.objects.exists()


def test_run_status_polls_while_running_and_refreshes_when_done(client, member_a, tenant_a):
    run = CheckRun.objects.create(
        tenant=tenant_a,
        status=CheckRun.Status.RUNNING,
        progress={"done": 1, "total": 2, "current": "catalog"},
    )
    client.force_login(member_a)
    url = reverse("run_status", args=[tenant_a.slug, run.uuid])
    response = client.get(url)
    assert response.status_code == 200 and "Product catalog" in response.content.decode()
    CheckRun.objects.filter(pk=run.pk).update(status=CheckRun.Status.DONE)
    response = client.get(url)
    assert response.status_code == 204 and response["HX-Refresh"] == "true"


def test_run_status_is_404_for_an_outsider(client, outsider_b, tenant_a):
    run = CheckRun.objects.create(tenant=tenant_a)
    client.force_login(outsider_b)
    assert client.get(reverse("run_status", args=[tenant_a.slug, run.uuid])).status_code == 404


def test_stored_findings_show_grouped_by_severity_with_when_checked(client, member_a, tenant_a):
    stored_result(
        tenant_a,
        "setup_tables",
        "fail",
        [
            finding("tables.uom_missing", "error", subject='Unit of measure "Each"'),
            finding("tables.category_inactive", "warning", subject='Category "Miscellaneous"'),
        ],
        summary="2 problems",
    )
    client.force_login(member_a)
    html = client.get(reverse("step", args=[tenant_a.slug, "setup_tables"])).content.decode()
    assert "Must fix (1)" in html and "Should check (1)" in html
    assert html.index("Must fix") < html.index("Should check")
    assert "Unit of measure &quot;Each&quot;" in html
    assert "Fix for tables.uom_missing." in html
    assert "Checked " in html and " UTC" in html


# Summary -----------------------------------------------------------------------------------------------------


def test_summary_says_ready_when_every_step_passes(client, member_a, tenant_a):
    for key in STEP_KEYS:
        stored_result(tenant_a, key, "pass" if key != "security_role" else "warn")
    client.force_login(member_a)
    html = client.get(reverse("summary", args=[tenant_a.slug])).content.decode()
    assert "Ready for billing sync" in html
    assert "data-print" in html


def test_summary_lists_what_remains_with_counts(client, member_a, tenant_a):
    for key in STEP_KEYS:
        stored_result(tenant_a, key, "pass")
    stored_result(
        tenant_a,
        "catalog",
        "fail",
        [finding("catalog.misc_inactive"), finding("catalog.misc_inactive"), finding("x.y", "warning")],
    )
    client.force_login(member_a)
    response = client.get(reverse("summary", args=[tenant_a.slug]))
    html = response.content.decode()
    assert "Not ready yet: 1 step to finish" in html
    row = next(r for r in response.context["rows"] if r["key"] == "catalog")
    assert row["counts"] == {"error": 2, "warning": 1, "info": 0}
    assert "catalog.misc_inactive" in html


def test_summary_of_an_unchecked_tenant_lists_every_step(client, admin_a, tenant_a):
    client.force_login(admin_a)
    response = client.get(reverse("summary", args=[tenant_a.slug]))
    assert len(response.context["remaining"]) == len(READINESS_KEYS)  # the advisory step is never "to do"
    assert "Not checked" in response.content.decode()


def test_summary_is_404_for_an_outsider(client, outsider_b, tenant_a):
    client.force_login(outsider_b)
    assert client.get(reverse("summary", args=[tenant_a.slug])).status_code == 404


def _connection_card(html: str) -> str:
    start = html.index('aria-labelledby="conn-heading"')
    return html[start : html.index("</section>", start)]


def test_one_way_to_replace_the_key_and_its_result_shown_where_the_partner_acted(
    client, admin_a, tenant_a, connection_a
):
    # issue 14 item 6: a "Replace the private key" card below the connection form did the same as the form's
    # private key field, and the result appeared at the top of the page, away from either.
    client.force_login(admin_a)
    url = reverse("step", args=[tenant_a.slug, "connection"])
    html = client.get(url).content.decode()
    assert html.count('type="password"') == 1 and "new_private_key" not in html
    card = _connection_card(html)
    assert 'name="private_key"' in card and "paste the new key" in card.lower()
    data = _connection_data(
        region="api-na.myconnectwise.net", company_id="acme", private_key="ROTATED-1111-2222"
    )
    response = client.post(url, data)
    assert response.status_code == 302 and response.url.endswith("#connection")
    html = client.get(response.url.split("#")[0]).content.decode()
    card = _connection_card(html)
    assert "Private key replaced" in card and "Checking every step" in card
    assert html.count("Private key replaced") == 1  # not at the top of the page as well
    connection_a.refresh_from_db()
    assert connection_a.get_private_key() == "ROTATED-1111-2222"


def test_the_overview_says_what_a_blocked_step_waits_for(client, member_a, tenant_a, connection_a):
    from tests.onboarding.dashboard_factories import make_run

    run = make_run(tenant_a, {"connection": "pass", "agreements": "blocked", "existing_billing": "blocked"})
    run.results.filter(key="existing_billing").update(summary="Waiting for customers: choose at least one.")
    client.force_login(member_a)
    html = client.get(reverse("tenant_home", args=[tenant_a.slug])).content.decode()
    assert "Waiting for customers: choose at least one." in html


def test_a_read_only_member_is_not_told_to_choose_customers(
    client, member_a, admin_a, tenant_a, connection_a
):
    url = reverse("step", args=[tenant_a.slug, "customers"])
    client.force_login(member_a)
    html = client.get(url).content.decode()
    assert "No company is chosen yet" in html and "Select companies above" not in html
    agreements = reverse("step", args=[tenant_a.slug, "agreements"])
    assert "No customer is chosen yet" in (page := client.get(agreements).content.decode())
    assert ">Choose customers</a>" not in page and "admins choose the customers" in page
    client.force_login(admin_a)
    assert "Select companies above" in client.get(url).content.decode()
    assert ">Choose customers</a>" in client.get(agreements).content.decode()
