"""/api/v1/: tenants, mapping, runs; tokens, scopes and isolation; problem details; ETags; paging; filters."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from onboarding.models import AuditEvent, CheckRun, Connection, StepResult, Tenant
from tests.onboarding.wizard_helpers import PRIVATE_KEY, agreement, directory_row

ALL_PASS = {
    k: "pass" for k in ("connection", "security_role", "catalog", "setup_tables", "customers", "agreements")
}


def make_tenant(slug, *, ready=False, connected=True, **fields):
    tenant = Tenant.objects.create(slug=slug, name=slug.title(), ready=ready, **fields)
    if connected:
        conn = Connection(
            tenant=tenant, site="api-na.myconnectwise.net", company_id=f"{slug}co", public_key="pub1"
        )
        conn.set_private_key(PRIVATE_KEY)
        conn.save()
    return tenant


def store_run(tenant, results: dict[str, tuple[str, list[dict]]], *, when=None):
    when = when or timezone.now()
    run = CheckRun.objects.create(
        tenant=tenant,
        status=CheckRun.Status.DONE,
        ready=False,
        started_at=when,
        finished_at=when,
        created_at=when,
    )
    for key, (status, findings) in results.items():
        StepResult.objects.create(
            run=run, tenant=tenant, key=key, status=status, findings=findings, created_at=when
        )
    return run


def finding(code, severity="error", **data):
    return {
        "code": code,
        "severity": severity,
        "subject": "s",
        "explanation": "e",
        "fix": "f",
        "repairable": False,
        "record": None,
        "data": data,
    }


# Authentication, scope, isolation ------------------------------------------------------------------------------


@pytest.mark.django_db
def test_it_refuses_calls_without_a_token_as_a_problem(api):
    response = api(None).get("/api/v1/tenants/")
    assert response.status_code == 401
    assert response["Content-Type"] == "application/problem+json"
    body = response.json()
    assert body["type"] == "/api/v1/problems/unauthenticated" and body["status"] == 401
    assert response["WWW-Authenticate"].startswith("Bearer")


@pytest.mark.django_db
@pytest.mark.parametrize("header", ["Bearer nope", "Token abc", "Bearer ", "Basic Zm9vOmJhcg=="])
def test_it_refuses_unknown_or_malformed_tokens(client, header):
    response = client.get("/api/v1/tenants/", headers={"Authorization": header})
    assert response.status_code == 401
    assert response.json()["type"] == "/api/v1/problems/unauthenticated"


@pytest.mark.django_db
def test_revoked_and_expired_tokens_stop_working(api):
    from onboarding.api import tokens
    from onboarding.models import ApiToken

    token, secret = tokens.create("short", "read", expires_days=1, by="test")
    assert api(secret).get("/api/v1/tenants/").status_code == 200
    ApiToken.objects.filter(pk=token.pk).update(expires_at=timezone.now() - timedelta(seconds=1))
    assert api(secret).get("/api/v1/tenants/").status_code == 401
    token2, secret2 = tokens.create("other", "read", by="test")
    assert tokens.revoke(token2, by="test")
    assert api(secret2).get("/api/v1/tenants/").status_code == 401


@pytest.mark.django_db
def test_a_partner_session_does_not_reach_the_api(client, admin_a, tenant_b):
    """The API is token-only: a signed-in partner admin must not list every tenant through it."""
    client.force_login(admin_a)
    response = client.get("/api/v1/tenants/")
    assert response.status_code == 401
    assert "tenant-b" not in response.content.decode()


@pytest.mark.django_db
def test_a_token_does_not_sign_in_to_pages(client, read_token, tenant_a):
    response = client.get("/support/", headers={"Authorization": f"Bearer {read_token}"})
    assert response.status_code in (302, 404)
    assert "tenant-a" not in response.content.decode()


@pytest.mark.django_db
def test_a_read_token_cannot_start_a_verification(api, read_token):
    make_tenant("acme")
    response = api(read_token).post("/api/v1/tenants/acme/runs/")
    assert response.status_code == 403
    assert response.json()["type"] == "/api/v1/problems/forbidden"
    assert not CheckRun.objects.exists()


@pytest.mark.django_db
def test_every_use_updates_last_used(api, read_token):
    from onboarding.models import ApiToken

    assert ApiToken.objects.get().last_used_at is None
    api(read_token).get("/api/v1/tenants/")
    assert ApiToken.objects.get().last_used_at is not None


@pytest.mark.django_db
def test_the_secret_is_stored_only_as_a_hash(read_token):
    from onboarding.models import ApiToken

    token = ApiToken.objects.get()
    assert read_token not in str(ApiToken.objects.filter(pk=token.pk).values().first())
    assert token.secret_hash != read_token and len(token.secret_hash) == 64


@pytest.mark.django_db
def test_no_answer_ever_contains_a_key(api, read_token):
    tenant = make_tenant("acme")
    store_run(tenant, {"connection": ("pass", [])})
    for path in ("/api/v1/tenants/", "/api/v1/tenants/acme/", "/api/v1/tenants/acme/mapping/"):
        body = api(read_token).get(path).content.decode()
        assert PRIVATE_KEY not in body and "pub1" not in body and "private" not in body.lower(), path
    detail = api(read_token).get("/api/v1/tenants/acme/").json()
    assert detail["connection"] == {"site": "api-na.myconnectwise.net", "company_id": "acmeco"}


@pytest.mark.django_db
def test_it_rate_limits_per_token(api, read_token, verify_token, monkeypatch):
    from onboarding.api.auth import PerTokenThrottle

    monkeypatch.setattr(PerTokenThrottle, "THROTTLE_RATES", {"token": "3/min"})
    for _ in range(3):
        assert api(read_token).get("/api/v1/tenants/").status_code == 200
    limited = api(read_token).get("/api/v1/tenants/")
    assert limited.status_code == 429
    assert limited.json()["type"] == "/api/v1/problems/rate-limited"
    assert int(limited["Retry-After"]) > 0
    assert api(verify_token).get("/api/v1/tenants/").status_code == 200  # another token has its own allowance


# Tenants --------------------------------------------------------------------------------------------------------


@pytest.mark.django_db
def test_it_lists_tenants_with_filters_like_the_dashboard(api, read_token):
    now = timezone.now()
    make_tenant("ready-one", ready=True, step_statuses=ALL_PASS, last_checked_at=now)
    make_tenant(
        "blocked-cat",
        first_open_step="catalog",
        last_checked_at=now,
        drift_since=now,
        drift_steps=["catalog"],
    )
    make_tenant("old", first_open_step="connection", last_checked_at=now - timedelta(days=5))

    def slugs(query):
        response = api(read_token).get(f"/api/v1/tenants/{query}")
        assert response.status_code == 200, response.content
        return [t["slug"] for t in response.json()["results"]]

    assert slugs("") == ["blocked-cat", "old", "ready-one"]
    assert slugs("?ready=true") == ["ready-one"]
    assert slugs("?ready=false") == ["blocked-cat", "old"]
    assert slugs("?blocked_at=catalog") == ["blocked-cat"]
    assert slugs("?stale=true") == ["old"]
    assert slugs("?drift=true") == ["blocked-cat"]
    first = api(read_token).get("/api/v1/tenants/?ready=true").json()["results"][0]
    assert first["steps"]["catalog"] == "pass" and first["url"].endswith("/api/v1/tenants/ready-one/")


@pytest.mark.django_db
@pytest.mark.parametrize(
    "query", ["?ready=maybe", "?blocked_at=nope", "?updated_since=yesterday", "?stale=2", "?drift=x"]
)
def test_bad_filters_are_a_400_problem_naming_the_parameter(api, read_token, query):
    response = api(read_token).get(f"/api/v1/tenants/{query}")
    assert response.status_code == 400
    body = response.json()
    assert body["type"] == "/api/v1/problems/invalid-request"
    assert query[1:].split("=")[0] in body["errors"]


@pytest.mark.django_db
def test_updated_since_returns_tenants_changed_after_it(api, read_token):
    old = make_tenant("old")
    Tenant.objects.filter(pk=old.pk).update(updated_at=timezone.now() - timedelta(days=2))
    make_tenant("fresh")
    since = (timezone.now() - timedelta(days=1)).isoformat()
    response = api(read_token).get(f"/api/v1/tenants/?updated_since={since.replace('+', '%2B')}")
    assert [t["slug"] for t in response.json()["results"]] == ["fresh"]


@pytest.mark.django_db
def test_cursor_paging_visits_every_tenant_once(api, read_token):
    for i in range(7):
        make_tenant(f"t{i}", connected=False)
    seen, url = [], "/api/v1/tenants/?page_size=3"
    while url:
        body = api(read_token).get(url).json()
        seen += [t["slug"] for t in body["results"]]
        url = body["next"]
    assert seen == [f"t{i}" for i in range(7)]
    assert api(read_token).get("/api/v1/tenants/?cursor=garbage").status_code == 404


@pytest.mark.django_db
def test_tenant_detail_has_each_steps_status_and_finding_codes(api, read_token):
    tenant = make_tenant("acme", step_statuses={"connection": "pass", "catalog": "fail"})
    store_run(tenant, {"connection": ("pass", []), "catalog": ("fail", [finding("catalog.misc_inactive")])})
    body = api(read_token).get("/api/v1/tenants/acme/").json()
    steps = {s["key"]: s for s in body["step_details"]}
    assert steps["catalog"]["status"] == "fail"
    assert [f["code"] for f in steps["catalog"]["findings"]] == ["catalog.misc_inactive"]
    assert steps["agreements"]["status"] is None
    assert body["latest_run_url"].startswith("http://testserver/api/v1/runs/")


@pytest.mark.django_db
def test_unknown_tenant_and_unknown_paths_are_404_problems(api, read_token):
    for path in ("/api/v1/tenants/nope/", "/api/v1/tenants/nope/mapping/", "/api/v1/nothing/here"):
        response = api(read_token).get(path)
        assert response.status_code == 404, path
        assert response["Content-Type"] == "application/problem+json"


# ETag -----------------------------------------------------------------------------------------------------------


@pytest.mark.django_db
def test_reads_carry_an_etag_and_answer_304_when_unchanged(api, read_token):
    tenant = make_tenant("acme")
    first = api(read_token).get("/api/v1/tenants/acme/")
    etag = first["ETag"]
    assert etag.startswith('"')
    again = api(read_token).get("/api/v1/tenants/acme/", **{"If-None-Match": etag})
    assert again.status_code == 304 and again.content == b""
    assert (
        api(read_token).get("/api/v1/tenants/acme/", **{"If-None-Match": f'W/{etag}, "x"'}).status_code == 304
    )
    Tenant.objects.filter(pk=tenant.pk).update(name="Acme renamed")
    changed = api(read_token).get("/api/v1/tenants/acme/", **{"If-None-Match": etag})
    assert changed.status_code == 200 and changed["ETag"] != etag


# Mapping --------------------------------------------------------------------------------------------------------


@pytest.mark.django_db
def test_mapping_lists_each_chosen_customer_with_its_target_agreement(api, read_token):
    from onboarding.models import BillingCustomer, CompanyChoice

    tenant = make_tenant("acme")
    directory_row(tenant, 2, "Contoso Ltd", identifier="Contoso", agreements=[agreement(10, "O365 Contoso")])
    directory_row(
        tenant, 3, "Fabrikam", agreements=[agreement(20, "A"), agreement(21, "B")]
    )  # two candidates: nothing automatic
    directory_row(tenant, 4, "Tailspin", agreements=[agreement(30, "Seats")])
    earlier = timezone.now() - timedelta(hours=1)
    CompanyChoice.objects.create(
        tenant=tenant, cw_company_id=2, identifier="Contoso", name="Contoso Ltd", chosen_at=earlier
    )
    CompanyChoice.objects.create(
        tenant=tenant, cw_company_id=3, identifier="Fabrikam", name="Fabrikam", chosen_at=earlier
    )
    CompanyChoice.objects.create(
        tenant=tenant,
        cw_company_id=4,
        identifier="Tailspin",
        name="Tailspin",
        motion="azure",
        agreement_id=30,
        chosen_at=earlier,
    )
    BillingCustomer.objects.create(
        tenant=tenant, name="CONTOSO LIMITED", normalized="contoso", cw_company_id=2
    )
    store_run(
        tenant,
        {
            "customers": ("pass", []),
            "agreements": ("fail", [finding("agreements.prorate_off", agreement_id=30)]),
        },
    )
    rows = {
        r["company_id"]: r for r in api(read_token).get("/api/v1/tenants/acme/mapping/").json()["results"]
    }
    assert rows[2] | {} == {
        "company_id": 2,
        "company_identifier": "Contoso",
        "company_name": "Contoso Ltd",
        "billing_customer": "CONTOSO LIMITED",
        "motion": "monthly",
        "motion_label": "Seat Based Monthly",
        "agreement_id": 10,
        "agreement_name": "O365 Contoso",
        "agreement_chosen": "automatic",
        "ready": True,
        "finding_codes": [],
    }
    assert (
        rows[3]["agreement_id"] is None
        and rows[3]["agreement_chosen"] == "none"
        and rows[3]["ready"] is False
    )
    assert rows[4]["agreement_chosen"] == "explicit" and rows[4]["motion"] == "azure"
    assert rows[4]["ready"] is False and rows[4]["finding_codes"] == ["agreements.prorate_off"]


@pytest.mark.django_db
def test_a_mapping_row_chosen_after_the_last_check_is_not_ready(api, read_token):
    from onboarding.models import CompanyChoice

    tenant = make_tenant("acme")
    directory_row(tenant, 2, "Contoso", agreements=[agreement(10, "O365")])
    store_run(
        tenant,
        {"customers": ("pass", []), "agreements": ("pass", [])},
        when=timezone.now() - timedelta(hours=1),
    )
    CompanyChoice.objects.create(tenant=tenant, cw_company_id=2, name="Contoso")
    row = api(read_token).get("/api/v1/tenants/acme/mapping/").json()["results"][0]
    assert row["agreement_id"] == 10 and row["ready"] is False


# Runs -----------------------------------------------------------------------------------------------------------


@pytest.mark.django_db
def test_starting_a_run_answers_202_with_its_url_and_the_same_key_gives_the_same_run(
    api, verify_token, django_capture_on_commit_callbacks
):
    make_tenant("acme")
    with django_capture_on_commit_callbacks(execute=False):
        first = api(verify_token).post(
            "/api/v1/tenants/acme/runs/", {"steps": ["catalog"]}, **{"Idempotency-Key": "k-1"}
        )
    assert first.status_code == 202
    body = first.json()
    assert first["Location"] == body["url"] and body["url"].endswith(f"/api/v1/runs/{body['uuid']}/")
    assert body["status"] == "queued" and body["trigger"] == "api" and body["requested_steps"] == ["catalog"]
    with django_capture_on_commit_callbacks(execute=False):
        second = api(verify_token).post(
            "/api/v1/tenants/acme/runs/", {"steps": ["catalog"]}, **{"Idempotency-Key": "k-1"}
        )
    assert second.status_code == 202 and second.json()["uuid"] == body["uuid"]
    assert CheckRun.objects.count() == 1
    assert AuditEvent.objects.filter(kind="run.started").count() == 1
    polled = api(verify_token).get(f"/api/v1/runs/{body['uuid']}/")
    assert polled.status_code == 200 and polled.json()["status"] == "queued"


@pytest.mark.django_db
def test_an_idempotency_key_reused_for_another_tenant_is_refused(
    api, verify_token, django_capture_on_commit_callbacks
):
    make_tenant("acme")
    make_tenant("other")
    with django_capture_on_commit_callbacks(execute=False):
        assert (
            api(verify_token).post("/api/v1/tenants/acme/runs/", **{"Idempotency-Key": "same"}).status_code
            == 202
        )
        response = api(verify_token).post("/api/v1/tenants/other/runs/", **{"Idempotency-Key": "same"})
    assert response.status_code == 422
    assert response.json()["type"] == "/api/v1/problems/idempotency-key-reused"
    assert not CheckRun.objects.filter(tenant__slug="other").exists()


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("body", "headers", "status"),
    [
        ({"steps": ["nope"]}, {}, 400),
        ({"steps": "catalog"}, {}, 400),
        ({}, {"Idempotency-Key": "x" * 256}, 400),
    ],
)
def test_bad_run_requests_are_refused_and_start_nothing(api, verify_token, body, headers, status):
    make_tenant("acme")
    response = api(verify_token).post("/api/v1/tenants/acme/runs/", body, **headers)
    assert response.status_code == status
    assert response["Content-Type"] == "application/problem+json"
    assert not CheckRun.objects.exists()


@pytest.mark.django_db
def test_a_run_for_an_unconnected_tenant_is_a_conflict(api, verify_token):
    make_tenant("bare", connected=False)
    response = api(verify_token).post("/api/v1/tenants/bare/runs/")
    assert response.status_code == 409 and not CheckRun.objects.exists()


@pytest.mark.django_db
def test_a_body_that_is_not_json_is_a_problem(client, verify_token):
    make_tenant("acme")
    response = client.post(
        "/api/v1/tenants/acme/runs/",
        data="{not json",
        content_type="application/json",
        headers={"Authorization": f"Bearer {verify_token}"},
    )
    assert response.status_code == 400 and response["Content-Type"] == "application/problem+json"
    response = client.post(
        "/api/v1/tenants/acme/runs/",
        data="a=b",
        content_type="text/plain",
        headers={"Authorization": f"Bearer {verify_token}"},
    )
    assert response.status_code == 415
    assert not CheckRun.objects.exists()


@pytest.mark.django_db
def test_run_detail_shows_findings_once_done(api, read_token):
    tenant = make_tenant("acme")
    run = store_run(tenant, {"catalog": ("fail", [finding("catalog.misc_missing")])})
    body = api(read_token).get(f"/api/v1/runs/{run.uuid}/").json()
    assert body["status"] == "done"
    assert body["steps"][0]["findings"][0]["code"] == "catalog.misc_missing"
    assert api(read_token).get("/api/v1/runs/00000000-0000-4000-8000-000000000000/").status_code == 404


@pytest.mark.django_db
def test_mapping_picks_the_target_by_the_checks_rule_for_o365_and_azure_plan(api, read_token):
    """Like connectwise.checks.agreement_targets.candidates_for (whose answer the customers step stores as each
    agreement's ``fits``): an O365 and an Azure Plan agreement are not ambiguous."""
    from onboarding.models import CompanyChoice

    tenant = make_tenant("acme")
    both = [
        agreement(1, "Contoso - O365", fits=["monthly"]),
        agreement(13, "Contoso - Azure Plan", type_="Azure Plan", fits=["azure"]),
    ]
    directory_row(tenant, 1, "Contoso", agreements=both)
    directory_row(tenant, 2, "Fabrikam", agreements=[*both, agreement(99, "Annual", cycle="One Time")])
    CompanyChoice.objects.create(tenant=tenant, cw_company_id=1, motion="monthly")
    CompanyChoice.objects.create(tenant=tenant, cw_company_id=2, motion="azure")
    rows = {
        r["company_id"]: r for r in api(read_token).get("/api/v1/tenants/acme/mapping/").json()["results"]
    }
    assert (rows[1]["agreement_id"], rows[1]["agreement_chosen"]) == (1, "automatic")
    assert rows[1]["company_name"] == "Contoso"  # from the directory when the choice has no name stored
    assert rows[2]["agreement_id"] == 13
    CompanyChoice.objects.filter(cw_company_id=2).update(motion="annual")
    assert api(read_token).get("/api/v1/tenants/acme/mapping/").json()["results"][1]["agreement_id"] == 99


@pytest.mark.django_db
def test_mapping_follows_the_checks_stored_classification_not_the_cycle_name(api, read_token):
    """Issue 13 item 1 (one candidate rule): the API's target is what the check counted a candidate (the stored
    ``fits``), never a guess from the billing cycle's name. A cycle named "One Time" that recurs (its
    billingOptions are not NotRecurring) fits monthly; an agreement the check did not count fits nothing."""
    from onboarding.models import CompanyChoice

    tenant = make_tenant("acme")
    directory_row(
        tenant, 1, "Contoso", agreements=[agreement(5, "Seats", cycle="One Time", fits=["monthly"])]
    )
    directory_row(tenant, 2, "Fabrikam", agreements=[agreement(6, "Seats", fits=[])])
    CompanyChoice.objects.create(tenant=tenant, cw_company_id=1, motion="monthly")
    CompanyChoice.objects.create(tenant=tenant, cw_company_id=2, motion="monthly")
    rows = {
        r["company_id"]: r for r in api(read_token).get("/api/v1/tenants/acme/mapping/").json()["results"]
    }
    assert (rows[1]["agreement_id"], rows[1]["agreement_chosen"]) == (5, "automatic")
    assert (rows[2]["agreement_id"], rows[2]["agreement_chosen"]) == (None, "none")


@pytest.mark.django_db
@pytest.mark.parametrize("query", ["?ready=", "?blocked_at=", "?updated_since=", "?stale=", "?drift="])
def test_an_empty_filter_value_is_refused_not_dropped(api, read_token, query):
    """Found by the schema test: DRF reads an empty form value as absent; the API says it is not valid."""
    response = api(read_token).get(f"/api/v1/tenants/{query}")
    assert response.status_code == 400
    assert query[1:-1] in response.json()["errors"]


@pytest.mark.django_db
@pytest.mark.parametrize(
    "path",
    [
        "/api/v1/tenants/?updated_since=%00",
        "/api/v1/tenants/?x%00=1",
        "/api/v1/tenants/acme/mapping/?cursor=%00",
    ],
)
def test_a_nul_character_under_the_api_is_a_400_problem_not_the_html_page(api, read_token, path):
    """Found by the schema test in a full run: the NUL guard that runs before any view (``inputs.BadInputMiddleware``)
    answered the API with the site's HTML 400 page; under /api/ every error is a problem."""
    make_tenant("acme")
    response = api(read_token).get(path)
    assert response.status_code == 400
    assert response["Content-Type"] == "application/problem+json"
    body = response.json()
    assert body["type"] == "/api/v1/problems/invalid-request" and body["status"] == 400
    assert "NUL" in body["detail"] and body["errors"]


def test_djangos_own_400_and_500_handlers_answer_the_api_with_problems(rf):
    from onboarding.views import errors

    request = rf.get("/api/v1/tenants/")
    for response, code in ((errors.bad_request(request), 400), (errors.server_error(request), 500)):
        assert response.status_code == code
        assert response["Content-Type"] == "application/problem+json"
    assert errors.bad_request(rf.get("/dashboard/"))["Content-Type"].startswith("text/html")
