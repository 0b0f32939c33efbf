"""The support tenant page: connection without secrets, run history, findings, what changed between runs, audit
trail, re-checks (one tenant and bulk) and the approval of on-premise hosts."""

from __future__ import annotations

import re

import pytest
from django.urls import reverse

from connectwise.checks import codes
from onboarding.models import ApprovedHost, AuditEvent, CheckRun, Connection

from .dashboard_factories import ALL_PASS, PRIVATE_KEY, finding, make_run, make_tenant, statuses

pytestmark = pytest.mark.django_db


@pytest.fixture
def acme(db):
    tenant = make_tenant("acme", name="Acme MSP", step_statuses=statuses(catalog="fail", setup_tables="warn"))
    old = make_run(
        tenant,
        {
            "connection": "pass",
            "catalog": ("pass", []),
            "setup_tables": ("fail", [finding(codes.TABLES_UOM_MISSING, 'Unit of measure "Each"')]),
        },
        hours_ago=30,
        trigger=CheckRun.Trigger.SCHEDULE,
        api_calls=17,
        duration_ms=2345,
    )
    new = make_run(
        tenant,
        {
            "connection": "pass",
            "catalog": ("fail", [finding(codes.CATALOG_MISC_INACTIVE, 'Product "misc-seat" (id 12)')]),
            "setup_tables": (
                "warn",
                [finding(codes.TABLES_CATEGORY_INACTIVE, 'Category "Miscellaneous"', severity="warning")],
            ),
        },
        hours_ago=1,
        trigger=CheckRun.Trigger.MANUAL,
        api_calls=21,
        duration_ms=4321,
    )
    AuditEvent.record(
        AuditEvent.Kind.CONNECTION_SAVED, tenant=tenant, actor="admin@acme.example", message="Saved it"
    )
    return tenant, old, new


def test_it_shows_the_connection_but_never_the_private_key(client, support, acme):
    tenant, _, _ = acme
    client.force_login(support)
    html = client.get(reverse("support_tenant", args=[tenant.slug])).content.decode()
    assert "api-na.myconnectwise.net" in html
    assert "acme-co" in html
    assert "pub-acme" in html
    encrypted = Connection.objects.get(tenant=tenant).private_key_encrypted
    assert PRIVATE_KEY not in html
    assert PRIVATE_KEY[-4:] not in html  # not even the masked hint
    assert encrypted not in html
    assert "never shown to support" in html


def test_it_lists_the_run_history(client, support, acme):
    tenant, old, new = acme
    make_run(tenant, {}, status=CheckRun.Status.QUEUED, trigger=CheckRun.Trigger.SUPPORT, actor=support)
    client.force_login(support)
    html = client.get(reverse("support_tenant", args=[tenant.slug])).content.decode()
    history = re.search(r'id="runs-title".*?</table>', html, re.S).group(0)
    rows = re.findall(r"<tr.*?</tr>", history.split("<tbody>")[1], re.S)
    assert len(rows) == 3
    assert "Started by support" in rows[0] and "Sam" in rows[0] and "Queued" in rows[0]
    assert "Started by a person" in rows[1] and "21" in rows[1] and "4,321 ms" in rows[1]
    assert "Scheduled re-check" in rows[2] and "17" in rows[2] and "2,345 ms" in rows[2]
    # A run still going disables the re-check button.
    assert "Check running…" in html


def test_it_compares_the_latest_run_with_the_previous_one_by_default(client, support, acme):
    tenant, _, _ = acme
    client.force_login(support)
    response = client.get(reverse("support_tenant", args=[tenant.slug]))
    changes = {c["key"]: c for c in response.context["changes"]}
    assert changes["catalog"]["before"] == "pass" and changes["catalog"]["after"] == "fail"
    assert [f["code"] for f in changes["catalog"]["added"]] == [codes.CATALOG_MISC_INACTIVE]
    assert changes["setup_tables"]["status_changed"]
    assert [f["code"] for f in changes["setup_tables"]["removed"]] == [codes.TABLES_UOM_MISSING]
    assert [f["code"] for f in changes["setup_tables"]["added"]] == [codes.TABLES_CATEGORY_INACTIVE]
    assert not changes["connection"]["changed"]
    assert "customers" not in changes  # not checked in the newer run: nothing to compare
    html = response.content.decode()
    assert "2 steps changed." in html
    assert "Product &quot;misc-seat&quot; (id 12)" in html


def test_it_compares_two_chosen_runs(client, support, acme):
    tenant, old, new = acme
    client.force_login(support)
    # The other way round: from the new run to the old one, the catalog recovers.
    response = client.get(
        reverse("support_tenant", args=[tenant.slug]), {"run": old.uuid, "against": new.uuid}
    )
    changes = {c["key"]: c for c in response.context["changes"]}
    assert (changes["catalog"]["before"], changes["catalog"]["after"]) == ("fail", "pass")
    assert [f["code"] for f in changes["catalog"]["removed"]] == [codes.CATALOG_MISC_INACTIVE]
    # The findings shown are the chosen run's.
    html = response.content.decode()
    findings = re.search(r'id="findings-title".*?</section>', html, re.S).group(0)
    assert codes.TABLES_UOM_MISSING in findings
    assert codes.CATALOG_MISC_INACTIVE not in findings


def test_it_copes_with_bad_or_foreign_run_ids(client, support, acme):
    tenant, _, _ = acme
    other = make_tenant("other")
    foreign = make_run(other, {"connection": "pass"})
    client.force_login(support)
    for params in ({"run": "not-a-uuid"}, {"run": foreign.uuid}, {"against": "zzz"}):
        response = client.get(reverse("support_tenant", args=[tenant.slug]), params)
        assert response.status_code == 200
        assert response.context["run"] is None or response.context["run"].tenant_id == tenant.pk


def test_it_says_so_when_there_is_nothing_to_compare(client, support):
    tenant = make_tenant("fresh", checked_hours_ago=None)
    client.force_login(support)
    html = client.get(reverse("support_tenant", args=[tenant.slug])).content.decode()
    assert "No finished runs yet." in html
    assert "No checks have run for this tenant yet." in html


def test_it_shows_the_audit_trail_read_only(client, support, acme):
    tenant, _, _ = acme
    client.force_login(support)
    html = client.get(reverse("support_tenant", args=[tenant.slug])).content.decode()
    audit = re.search(r'id="audit-title".*?</section>', html, re.S).group(0)
    assert "Connection saved" in audit and "admin@acme.example" in audit and "Saved it" in audit
    assert "<form" not in audit and "<button" not in audit


def test_it_offers_no_repairs_to_staff(client, support, acme):
    tenant, _, _ = acme
    client.force_login(support)
    html = client.get(reverse("support_tenant", args=[tenant.slug])).content.decode()
    actions = re.findall(r'<form[^>]*action="([^"]*)"', html)
    assert actions == [reverse("logout"), reverse("support_recheck", args=[tenant.slug])]
    assert "/fix/" not in html and "/plans/" not in html


def test_it_is_not_found_for_an_unknown_tenant(client, support):
    client.force_login(support)
    assert client.get(reverse("support_tenant", args=["nope"])).status_code == 404
    assert client.post(reverse("support_recheck", args=["nope"])).status_code == 404


def test_support_can_recheck_one_tenant(client, support, acme, django_capture_on_commit_callbacks):
    tenant, _, _ = acme
    client.force_login(support)
    with django_capture_on_commit_callbacks() as callbacks:
        response = client.post(reverse("support_recheck", args=[tenant.slug]))
    assert response.status_code == 302
    assert response["Location"] == reverse("support_tenant", args=[tenant.slug])
    run = CheckRun.objects.get(tenant=tenant, status=CheckRun.Status.QUEUED)
    assert run.trigger == CheckRun.Trigger.SUPPORT
    assert run.actor == support
    assert len(callbacks) == 1  # the task is enqueued after commit
    assert AuditEvent.objects.filter(tenant=tenant, kind=AuditEvent.Kind.RUN_STARTED, actor=support).exists()
    # A second click while it runs starts nothing new.
    client.post(reverse("support_recheck", args=[tenant.slug]))
    assert CheckRun.objects.filter(tenant=tenant, status=CheckRun.Status.QUEUED).count() == 1


def test_support_can_recheck_a_selection(client, support):
    a = make_tenant("sel-a", step_statuses=ALL_PASS)
    b = make_tenant("sel-b", step_statuses=ALL_PASS)
    c = make_tenant("not-selected", step_statuses=ALL_PASS)
    bare = make_tenant("no-connection", connected=False)
    client.force_login(support)
    back = reverse("dashboard") + "?show=ready"
    response = client.post(
        reverse("support_bulk_recheck"), {"tenant": [a.slug, b.slug, bare.slug, "ghost"], "next": back}
    )
    assert response.status_code == 302 and response["Location"] == back
    started = CheckRun.objects.filter(trigger=CheckRun.Trigger.SUPPORT, actor=support)
    assert sorted(started.values_list("tenant__slug", flat=True)) == ["sel-a", "sel-b"]
    assert not CheckRun.objects.filter(tenant__in=[c, bare]).exists()
    message = [str(m) for m in response.wsgi_request._messages]
    assert message == ["Started 2 checks. 1 skipped: no ConnectWise connection yet."]


def test_bulk_recheck_never_redirects_off_site(client, support):
    make_tenant("sel-a", step_statuses=ALL_PASS)
    client.force_login(support)
    response = client.post(
        reverse("support_bulk_recheck"), {"tenant": ["sel-a"], "next": "https://evil.example/"}
    )
    assert response["Location"] == reverse("dashboard")


def test_support_approves_an_on_premise_host(client, support, acme):
    tenant, _, _ = acme
    client.force_login(support)
    response = client.post(
        reverse("support_hosts"),
        {"hostname": "HTTPS://CW.Partner.Example/v4_6_release/", "note": "Ticket 42", "tenant": tenant.slug},
    )
    assert response.status_code == 302
    assert response["Location"] == reverse("support_tenant", args=[tenant.slug])
    host = ApprovedHost.objects.get()
    assert (host.hostname, host.approved_by, host.note) == ("cw.partner.example", support, "Ticket 42")
    event = AuditEvent.objects.get(kind=AuditEvent.Kind.HOST_APPROVED)
    assert event.tenant == tenant and event.actor == support
    assert event.detail == {"hostname": "cw.partner.example", "note": "Ticket 42"}
    html = client.get(reverse("support_hosts")).content.decode()
    assert "cw.partner.example" in html and "Ticket 42" in html
    assert " style=" not in html  # CSP allows no inline styles


@pytest.mark.parametrize(
    ("hostname", "error"),
    [
        ("api-na.myconnectwise.net", "cloud host"),
        ("10.0.0.5", "Enter a host name"),
        ("not a host", "Enter a host name"),
        ("localhost", "Enter a host name"),
    ],
)
def test_it_refuses_hosts_that_need_no_or_cannot_have_approval(client, support, hostname, error):
    client.force_login(support)
    response = client.post(reverse("support_hosts"), {"hostname": hostname})
    assert response.status_code == 200
    assert error in response.content.decode()
    assert not ApprovedHost.objects.exists()
    assert not AuditEvent.objects.filter(kind=AuditEvent.Kind.HOST_APPROVED).exists()


def test_it_refuses_a_host_approved_twice(client, support):
    ApprovedHost.objects.create(hostname="cw.partner.example")
    client.force_login(support)
    response = client.post(reverse("support_hosts"), {"hostname": "cw.partner.example"})
    assert "already approved" in response.content.decode()
    assert ApprovedHost.objects.count() == 1


def test_the_tenant_page_links_a_refused_host_to_its_approval(client, support):
    tenant = make_tenant("onprem", site="cw.onprem.example", step_statuses=statuses(connection="fail"))
    make_run(
        tenant, {"connection": ("fail", [finding(codes.CONNECTION_HOST_NOT_ALLOWED, "cw.onprem.example")])}
    )
    client.force_login(support)
    html = client.get(reverse("support_tenant", args=[tenant.slug])).content.decode()
    assert f"{reverse('support_hosts')}?hostname=cw.onprem.example&amp;tenant=onprem" in html
    assert " style=" not in html


# Run names and the default comparison (issue 14 items 2 and 3) ----------------------------------------------------


def test_a_one_step_run_is_compared_with_the_latest_full_run_not_shown_as_not_in_this_run(
    client, support, acme
):
    tenant, old, new = acme
    full = make_run(tenant, {"connection": "pass", "agreements": "pass"}, hours_ago=0.5)
    one = make_run(
        tenant, {"agreements": ("fail", [finding("agreements.not_mapped", "Contoso")])}, hours_ago=0.2
    )
    CheckRun.objects.filter(pk=one.pk).update(steps=["agreements"])
    client.force_login(support)
    response = client.get(reverse("support_tenant", args=[tenant.slug]))
    assert response.context["run"].pk == one.pk and response.context["against"].pk == full.pk
    assert [c["key"] for c in response.context["changes"]] == [
        "agreements"
    ]  # only the steps this run checked
    html = response.content.decode()
    section = re.search(r'id="changes-title".*?</section>', html, re.S).group(0)
    assert "not in this run" not in section
    assert re.search(
        r"Comparing <strong>Agreements only, [^<]+</strong> with <strong>Full check, [^<]+</strong>", section
    )


def test_a_one_step_run_is_compared_with_the_previous_run_of_the_same_steps(client, support, acme):
    tenant, old, new = acme
    first = make_run(tenant, {"agreements": "fail"}, hours_ago=0.5)
    second = make_run(tenant, {"agreements": "pass"}, hours_ago=0.2)
    CheckRun.objects.filter(pk__in=[first.pk, second.pk]).update(steps=["agreements"])
    client.force_login(support)
    response = client.get(reverse("support_tenant", args=[tenant.slug]))
    assert response.context["run"].pk == second.pk and response.context["against"].pk == first.pk
    (change,) = response.context["changes"]
    assert (change["before"], change["after"]) == ("fail", "pass")


def test_runs_are_named_by_the_steps_they_ran_in_the_history_and_the_selects(client, support, acme):
    tenant, old, new = acme
    one = make_run(tenant, {"catalog": "pass"}, hours_ago=0.2)
    CheckRun.objects.filter(pk=one.pk).update(steps=["catalog"])
    client.force_login(support)
    html = client.get(reverse("support_tenant", args=[tenant.slug])).content.decode()
    history = re.search(r'id="runs-title".*?</table>', html, re.S).group(0)
    assert (
        len(re.findall(r"Full check, \d", history)) == 2
        and len(re.findall(r"Product catalog only, \d", history)) == 1
    )
    for select in ("id_against", "id_run"):
        options = re.search(rf'id="{select}".*?</select>', html, re.S).group(0)
        assert "Product catalog only, " in options and "Full check, " in options


def test_the_tenant_pages_audit_trail_shows_check_results(client, support, acme):
    tenant, old, new = acme
    AuditEvent.record(
        AuditEvent.Kind.RUN_STARTED, tenant=tenant, actor="schedule", message="x", run=str(new.uuid)
    )
    client.force_login(support)
    html = client.get(reverse("support_tenant", args=[tenant.slug])).content.decode()
    audit = html[html.index("audit-table") :]
    assert re.search(r"Full check, \d", audit) and "status-fail" in audit and "1 finding" in audit


# Bulk re-check: live feedback (issue 14 item 1) ---------------------------------------------------------------------


def test_a_bulk_recheck_shows_live_progress_until_every_check_has_finished(client, support):
    a = make_tenant("live-a", step_statuses=ALL_PASS)
    b = make_tenant("live-b", step_statuses=ALL_PASS)
    client.force_login(support)
    response = client.post(reverse("support_bulk_recheck"), {"tenant": [a.slug, b.slug]}, follow=True)
    html = response.content.decode()
    progress_url = reverse("support_recheck_progress")
    assert f'hx-get="{progress_url}"' in html and "0 of 2 checked" in html
    assert 'aria-live="polite"' in html

    first = CheckRun.objects.get(tenant=a)
    CheckRun.objects.filter(pk=first.pk).update(status=CheckRun.Status.DONE, ready=True)
    fragment = client.get(progress_url, HTTP_HX_REQUEST="true")
    assert fragment.status_code == 200
    text = fragment.content.decode()
    assert "1 of 2 checked" in text and "hx-trigger" in text  # still polling
    assert "Live A" in text and "Live B" in text

    CheckRun.objects.filter(tenant=b).update(status=CheckRun.Status.ERROR, error="boom")
    done = client.get(progress_url, HTTP_HX_REQUEST="true")
    assert done.status_code == 204 and done["HX-Refresh"] == "true"  # the rows show the new results
    page = client.get(reverse("dashboard")).content.decode()
    assert "Re-check finished: 2 of 2 checked" in page and "1 ready" in page and "1 could not run" in page
    assert progress_url not in page  # nothing left to follow
    assert client.get(progress_url).status_code == 204  # and the fragment says nothing more


def test_the_recheck_progress_is_for_support_only(client, admin_a):
    client.force_login(admin_a)
    assert client.get(reverse("support_recheck_progress")).status_code in (403, 404)


def test_a_blocked_step_says_what_it_waits_for_on_the_tenant_page(client, support):
    tenant = make_tenant("blocked-co")
    run = make_run(tenant, {"connection": "pass", "existing_billing": "blocked"})
    run.results.filter(key="existing_billing").update(summary="Waiting for customers: choose at least one.")
    client.force_login(support)
    html = client.get(reverse("support_tenant", args=[tenant.slug])).content.decode()
    step = re.search(
        r'<details class="dash-step mb-2" open>\s*<summary[^>]*>\s*<span[^>]*>7\. Seats billed today.*?</details>',
        html,
        re.S,
    )
    assert step, "the blocked step is open"
    assert "Waiting for customers: choose at least one." in step.group(
        0
    ) and "No findings." not in step.group(0)
