"""Tenant isolation, proven for EVERY URL in the URL configuration.

The walker below reads ``django.urls.get_resolver()`` recursively, fills each pattern's parameters from fixtures
(``slug`` -> tenant A, ``run_uuid``/``plan_uuid``/``token`` -> tenant A's run, plan, invitation) and checks, for
every URL and every member of the cast:

- an outsider (admin of tenant B) gets 404 on GET and POST (the slug of another tenant does not even exist for them);
- a read-only member of A gets 403 on a POST that changes data, and nothing changes;
- support staff can GET partner pages but get 403 (or 404) on a POST that changes partner data;
- tenant A's admin gets the page (the positive control that makes the 404s above mean something);
- an anonymous visitor is sent to sign in, except on the public allow-list.

A URL that is not in ``ACCESS`` fails with "new URL without isolation coverage": add it to the table.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from types import SimpleNamespace

import pytest
from django.core.cache import cache
from django.urls import URLPattern, URLResolver, get_resolver, reverse

from onboarding.models import (
    AuditEvent,
    CheckRun,
    CompanyChoice,
    Connection,
    Invitation,
    Membership,
    RepairOperation,
    RepairPlan,
    StepResult,
    SyncPreview,
    Tenant,
)

# The table ----------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Access:
    """scope: "public" (anyone), "user" (signed in, no tenant), "tenant" (a tenant's page, by slug), "support"
    (support staff only), "api" (the billing sync's API: a bearer token, never a session), "api404" (the API's
    catch-all: a problem 404 for everyone). get/post: what the URL does with that method: "read" (shows data), "change" (changes
    a tenant's data), "action" (a support-only action that does not change partner data: re-check, approve a host),
    "public" (a public form), or None (the method is not accepted: 405)."""

    scope: str
    get: str | None
    post: str | None


ACCESS: dict[str, Access] = {
    # public allow-list
    "login": Access("public", "public", "public"),
    "logout": Access("public", None, "public"),
    "signup": Access("public", "public", "public"),
    "signup_sent": Access("public", "public", None),
    "signup_confirm": Access("public", "public", "public"),
    "password_reset": Access("public", "public", "public"),
    "password_reset_done": Access("public", "public", None),
    "password_reset_confirm": Access("public", "public", "public"),
    "password_reset_complete": Access("public", "public", None),
    # public, but bound to the invited address: every signed-in member of the cast is someone else (403)
    "accept_invitation": Access("invitee", "public", "public"),
    "healthz": Access("public", "public", None),
    # signed in
    # accepts any method and only redirects to the person's start page
    "home": Access("user", "read", "read"),
    # a tenant's pages
    "team": Access("tenant", "read", "change"),
    "member_update": Access("tenant", None, "change"),
    "revoke_invitation": Access("tenant", None, "change"),
    "resend_invitation": Access("tenant", None, "change"),
    "tenant_home": Access("tenant", "read", None),
    "step": Access("tenant", "read", "change"),
    "replace_key": Access("tenant", None, "change"),
    "run_check": Access("tenant", None, "change"),
    "run_status": Access("tenant", "read", None),
    "summary": Access("tenant", "read", None),
    "audit": Access("tenant", "read", None),
    "customers_refresh": Access("tenant", None, "change"),
    "customers_select": Access("tenant", None, "change"),
    "customers_import": Access("tenant", None, "change"),
    "billing_match": Access("tenant", None, "change"),
    "agreements_save": Access("tenant", None, "change"),
    "agreement_defaults_save": Access("tenant", None, "change"),
    "plan_build": Access("tenant", None, "change"),
    "plan_build_status": Access("tenant", "read", None),
    "plan": Access("tenant", "read", None),
    "plan_status": Access("tenant", "read", None),
    "plan_approve": Access("tenant", None, "change"),
    "plan_discard": Access("tenant", None, "change"),
    "plan_retry": Access("tenant", None, "change"),
    "billing_cutover": Access("tenant", None, "change"),
    # a preview writes nothing to ConnectWise: admins, and support for them, may import (read-only members may not)
    "previews": Access("tenant", "read", "import"),
    "preview": Access("tenant", "read", None),
    "preview_export": Access("tenant", "read", None),
    # demo mode only (the sandbox enabled); 404 otherwise
    "demo_connect": Access("tenant", None, "change"),
    "demo_sandbox_change": Access("tenant", None, "change"),
    # support staff
    "dashboard": Access("support", "read", None),
    "support_export": Access("support", "read", None),
    "support_api_tenants": Access("support", "read", None),
    "support_bulk_recheck": Access("support", None, "action"),
    "support_recheck_progress": Access("support", "read", None),
    "support_hosts": Access("support", "read", "action"),
    "support_staff": Access("support", "read", "action"),
    "support_tenant": Access("support", "read", None),
    "support_recheck": Access("support", None, "action"),
    "support_audit": Access("support", "read", None),
    "support_api_tokens": Access("support", "read", "action"),
    "support_revoke_token": Access("support", None, "action"),
    "support_webhooks": Access("support", "read", "action"),
    "support_webhook": Access("support", "read", None),
    "support_webhook_toggle": Access("support", None, "action"),
    "support_webhook_redeliver": Access("support", None, "action"),
    # the billing sync's API: a bearer token only, never a session (401 for every person without one)
    "api:schema": Access("public", "public", None),
    "api:docs": Access("public", "public", None),
    "api:tenants": Access("api", "read", None),
    "api:tenant": Access("api", "read", None),
    "api:mapping": Access("api", "read", None),
    "api:runs": Access("api", None, "change"),
    "api:run": Access("api", "read", None),
    "api:not_found": Access("api404", "read", "read"),
}
# URLs that exist only in demo mode (onboarding.demo): checked with the sandbox enabled (404 otherwise).
DEMO_ONLY = {"demo_connect", "demo_sandbox_change"}
# Entries for URLs that are planned but may not exist yet: not an error when absent from the URLconf.
PLANNED = {"support_audit"}

NEW_URL = (
    "new URL without isolation coverage: {route!r} (name {name!r}). Add it to ACCESS in "
    "tests/onboarding/test_isolation.py with its scope and what GET and POST do, so that outsiders, read-only "
    "members, support staff and anonymous visitors are checked against it."
)

# The walker ---------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Route:
    route: str
    name: str | None
    params: tuple[str, ...]


def walk(
    resolver: URLResolver | None = None, prefix: str = "", params: tuple[str, ...] = (), namespace: str = ""
) -> list[Route]:
    resolver = resolver or get_resolver()
    routes = []
    for entry in resolver.url_patterns:
        pattern = entry.pattern
        names = tuple(getattr(pattern, "converters", {}).keys()) or tuple(
            getattr(pattern, "regex", None).groupindex if hasattr(pattern, "regex") else ()
        )
        if isinstance(entry, URLResolver):
            inner = f"{namespace}{entry.namespace}:" if entry.namespace else namespace
            routes += walk(entry, prefix + str(pattern), params + names, inner)
        elif isinstance(entry, URLPattern):
            name = f"{namespace}{entry.name}" if entry.name else None
            routes.append(Route(prefix + str(pattern), name, params + names))
    return routes


ROUTES = walk()


def fill(route: Route, world, *, tenant: str = "a") -> str:
    """The URL of ``route`` with every parameter taken from tenant A's objects (or B's, for ``tenant="b"``)."""
    t = world.a if tenant == "a" else world.b
    kwargs = {}
    for param in route.params:
        if route.name == "password_reset_confirm":
            kwargs = {"uidb64": "MQ", "token": "set-password"}
            break
        if route.name == "signup_confirm":
            from onboarding.views.accounts import signup_confirm_url

            return signup_confirm_url(world.users["admin"])
        if param == "slug":
            kwargs[param] = t.tenant.slug
        elif param == "key":
            kwargs[param] = "connection" if route.name == "step" else "catalog"
        elif param == "run_uuid":
            kwargs[param] = world.a.run.uuid
        elif param == "plan_uuid":
            kwargs[param] = world.a.plan.uuid
        elif param == "token":
            kwargs[param] = world.a.invitation.token
        elif param == "preview_uuid":
            kwargs[param] = world.a.preview.uuid
        elif param == "member_uuid":
            kwargs[param] = Membership.objects.filter(tenant=world.a.tenant).order_by("-pk").first().uuid
        elif param in ("token_uuid", "endpoint_uuid", "delivery_uuid"):
            kwargs[param] = _integration_objects()[param]
        elif param == "uuid":  # the API's run
            kwargs[param] = world.a.run.uuid
        elif param == "rest":  # the API's catch-all
            kwargs[param] = "no/such/thing"
        else:
            pytest.fail(f"{route.route}: no fixture for the path parameter {param!r}; teach fill() about it")
    return reverse(route.name, kwargs=kwargs)


# The world ----------------------------------------------------------------------------------------------------


def _integration_objects() -> dict:
    """An API token, a webhook endpoint and one delivery (support's integration pages)."""
    from onboarding.models import ApiToken, WebhookDelivery, WebhookEndpoint

    # Made without an audit event: callers compare the audit count before and after a request.
    token = ApiToken.objects.first() or ApiToken.issue(name="isolation", scope="read")[0]
    endpoint = WebhookEndpoint.objects.first()
    if endpoint is None:
        # subscribed to nothing: the flows that walk every page (test_canary) must not start real deliveries
        endpoint = WebhookEndpoint(url="https://hooks.example.com/x", events=[])
        endpoint.set_secret("whsec_isolation")
        endpoint.save()
    delivery = WebhookDelivery.objects.first() or WebhookDelivery.objects.create(
        endpoint=endpoint, event="run.finished", payload={}
    )
    return {"token_uuid": token.uuid, "endpoint_uuid": endpoint.uuid, "delivery_uuid": delivery.uuid}


def _tenant_objects(tenant, admin) -> SimpleNamespace:
    connection = Connection(
        tenant=tenant, site="api-na.myconnectwise.net", company_id=f"{tenant.slug}-co", public_key="pubkey"
    )
    connection.set_private_key(f"private-{tenant.slug}-0123456789")
    connection.save()
    run = CheckRun.objects.create(tenant=tenant, status=CheckRun.Status.DONE, ready=False, actor=admin)
    StepResult.objects.create(
        run=run,
        tenant=tenant,
        key="catalog",
        status="fail",
        findings=[
            {
                "code": "catalog.misc_inactive",
                "severity": "error",
                "subject": 'Product "misc-seat" (id 12)',
                "explanation": "The misc product is inactive.",
                "fix": "Procurement > Products > misc-seat > uncheck Inactive",
                "repairable": True,
                "record": {"path": "procurement/catalog", "id": 12},
                "data": {},
            }
        ],
        summary="1 problem",
    )
    plan = RepairPlan.objects.create(tenant=tenant, step="catalog", source_run=run, created_by=admin)
    RepairOperation.objects.create(
        plan=plan,
        seq=0,
        method="PATCH",
        path="procurement/catalog/12",
        body=[{"op": "replace", "path": "inactiveFlag", "value": False}],
        finding_code="catalog.misc_inactive",
        subject='Product "misc-seat" (id 12)',
        description="Activate misc-seat",
        before={"id": 12, "inactiveFlag": True},
    )
    invitation = Invitation.objects.create(
        tenant=tenant, email=f"new@{tenant.slug}.example", invited_by=admin
    )
    CompanyChoice.objects.create(tenant=tenant, cw_company_id=2, identifier="Contoso", name="Contoso Ltd")
    preview = SyncPreview.objects.create(
        tenant=tenant, status=SyncPreview.Status.DONE, source_name="subs.csv"
    )
    return SimpleNamespace(
        tenant=tenant, connection=connection, run=run, plan=plan, invitation=invitation, preview=preview
    )


@pytest.fixture
def world(tenant_a, tenant_b, admin_a, member_a, outsider_b, support, settings):
    settings.CACHES = {
        "default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache", "LOCATION": "iso"}
    }
    cache.clear()  # locmem caches are per process, not per test
    return SimpleNamespace(
        a=_tenant_objects(tenant_a, admin_a),
        b=_tenant_objects(tenant_b, outsider_b),
        users={"admin": admin_a, "member": member_a, "outsider": outsider_b, "support": support},
    )


def fingerprint() -> str:
    """Everything a forbidden request must not change."""
    state = {
        "tenants": list(Tenant.objects.order_by("pk").values_list("slug", "name")),
        "memberships": list(Membership.objects.order_by("pk").values_list("tenant_id", "user_id", "role")),
        "connections": list(
            Connection.objects.order_by("pk").values_list(
                "site", "company_id", "public_key", "private_key_encrypted"
            )
        ),
        "runs": list(CheckRun.objects.order_by("pk").values_list("uuid", "status")),
        "plans": list(RepairPlan.objects.order_by("pk").values_list("uuid", "status", "approved_by_id")),
        "invitations": list(Invitation.objects.order_by("pk").values_list("token", "accepted_at")),
        "choices": list(
            CompanyChoice.objects.order_by("pk").values_list("tenant_id", "cw_company_id", "motion")
        ),
        "audit": AuditEvent.objects.count(),
        "previews": list(SyncPreview.objects.order_by("pk").values_list("uuid", "status")),
        "cutover": list(Tenant.objects.order_by("pk").values_list("billing_cutover", flat=True)),
    }
    return hashlib.sha256(json.dumps(state, default=str).encode()).hexdigest()


# Expectations -------------------------------------------------------------------------------------------------

LOGIN_URL = "/accounts/login/"
OK = {200, 204}


def expected(spec: Access, role: str, method: str) -> tuple[set[int] | None, bool]:
    """(allowed status codes or None for "anything below 500 except 403/404/405", data must stay unchanged)."""
    does = spec.get if method == "get" else spec.post
    if spec.scope == "invitee":
        if role == "anonymous":
            return (OK | {302}, False) if method == "get" else (None, False)
        return {403}, True
    if spec.scope == "public":
        if role == "anonymous" and method == "get" and does:
            return OK | {302}, False
        return None if does else {405}, False
    if spec.scope == "api":  # token only: no person's session opens it, whatever the method
        return {401}, True
    if spec.scope == "api404":
        return {404}, True
    if role == "anonymous":
        return ({302} if does else {302, 405}), True
    if does is None:
        return {405}, True
    if spec.scope == "user":
        return OK | {302}, False
    if spec.scope == "support":
        if role != "support":
            return {404}, True
        return (OK if does == "read" else None), False
    # a tenant's page
    if role == "outsider":
        return {404}, True
    if does == "read":
        return OK, False
    if does == "import":  # support may import for the partner; a read-only member may not
        return ({403}, True) if role == "member" else (None, False)
    # does == "change"
    if role == "member":
        return {403}, True
    if role == "support":
        return {403, 404}, True
    return None, False  # the admin: anything but refused


ROLES = ["anonymous", "outsider", "member", "support", "admin"]


def _id(route: Route) -> str:
    return route.name or route.route


@pytest.mark.parametrize("method", ["get", "post"])
@pytest.mark.parametrize("role", ROLES)
@pytest.mark.parametrize("route", ROUTES, ids=_id)
def test_every_url_enforces_tenant_isolation(client, world, route, role, method, settings):
    if route.name in DEMO_ONLY:
        settings.CONNECTWISE_SANDBOX_URL = "http://sandbox.test"
    spec = ACCESS.get(route.name)
    if spec is None:
        pytest.fail(NEW_URL.format(route=route.route, name=route.name))
    url = fill(route, world)
    if role != "anonymous":
        client.force_login(world.users[role])
    before = fingerprint()
    response = getattr(client, method)(url, {})
    allowed, unchanged = expected(spec, role, method)
    status = response.status_code
    where = f"{method.upper()} {url} as {role}"
    if route.name == "plan_build_status" and allowed == OK and status == 302:
        # The step's newest plan is the world's draft: the build poll sends a reader on to it, in the same tenant.
        assert response["Location"].startswith(f"/t/{world.a.tenant.slug}/plans/"), (
            f"{where}: {response['Location']}"
        )
    elif allowed is None:
        assert status < 500 and status not in (403, 404, 405), f"{where}: got {status}"
    else:
        assert status in allowed, f"{where}: got {status}, expected one of {sorted(allowed)}"
    if role == "anonymous" and spec.scope not in ("public", "invitee") and status == 302:
        assert response["Location"].startswith(LOGIN_URL), f"{where}: redirected to {response['Location']}"
    if unchanged:
        assert fingerprint() == before, f"{where}: a refused request changed data"


@pytest.mark.parametrize(
    "route",
    [
        r
        for r in ROUTES
        if {"run_uuid", "plan_uuid", "token", "member_uuid", "preview_uuid"} & set(r.params)
        and getattr(ACCESS.get(r.name), "scope", "tenant") == "tenant"
    ],
    ids=_id,
)
def test_an_outsider_cannot_reach_tenant_a_objects_through_their_own_tenant(client, world, route):
    """B's admin, using B's own slug with A's run/plan/invitation id: still 404 (objects are looked up within
    the tenant, not by id alone)."""
    spec = ACCESS.get(route.name)
    if spec is None:
        pytest.fail(NEW_URL.format(route=route.route, name=route.name))
    client.force_login(world.users["outsider"])
    url = fill(route, world, tenant="b")
    before = fingerprint()
    for method in ("get", "post"):
        if (spec.get if method == "get" else spec.post) is None:
            continue
        response = getattr(client, method)(url, {})
        assert response.status_code == 404, f"{method.upper()} {url}: {response.status_code}"
    assert fingerprint() == before


def test_every_url_is_classified():
    missing = [NEW_URL.format(route=r.route, name=r.name) for r in ROUTES if r.name not in ACCESS]
    assert not missing, "\n".join(missing)


def test_the_table_has_no_entries_for_urls_that_are_gone():
    names = {r.name for r in ROUTES}
    stale = sorted(set(ACCESS) - names - PLANNED)
    assert not stale, f"ACCESS lists URLs that no longer exist: {stale}"


def test_the_walker_finds_nested_and_parameterised_urls():
    by_name = {r.name: r for r in ROUTES}
    assert by_name["plan_approve"].params == ("slug", "plan_uuid")
    assert by_name["dashboard"].route == "support/"
    assert len(ROUTES) >= 30


def test_static_files_are_public(client):
    response = client.get("/static/css/app.css")
    assert response.status_code == 200
