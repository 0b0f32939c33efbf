"""Sessions: sign-in throttling against guessing, password rules, CSRF on every URL, sign-out by POST only."""

from __future__ import annotations

import re

import pytest
from django.contrib.auth import password_validation
from django.core.cache import cache
from django.core.exceptions import ValidationError
from django.test import Client
from django.urls import reverse

from onboarding.models import Tenant, User

from ..conftest import PASSWORD
from .test_isolation import ACCESS, ROUTES, fill, fingerprint, world  # noqa: F401 (world is a fixture)

LOCKED = re.compile(r"Too many failed sign-ins; try again in (\d+) minutes?")


@pytest.fixture(autouse=True)
def _own_cache(settings):
    settings.CACHES = {
        "default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache", "LOCATION": "sess"}
    }
    settings.LOGIN_FAILURE_LIMIT = 5
    settings.LOGIN_FAILURE_WINDOW = 900
    cache.clear()


def sign_in(client, email, password, ip="192.0.2.10"):
    return client.post(reverse("login"), {"username": email, "password": password}, REMOTE_ADDR=ip)


def signed_in(client) -> bool:
    return "_auth_user_id" in client.session


# Throttling ---------------------------------------------------------------------------------------------------


def test_after_the_limit_even_the_right_password_is_refused_with_a_wait(client, admin_a):
    for _ in range(5):
        response = sign_in(client, admin_a.email, "wrong-password")
        assert response.status_code == 200 and not signed_in(client)
    response = sign_in(client, admin_a.email, PASSWORD)
    assert response.status_code == 429
    match = LOCKED.search(response.content.decode())
    assert match and match.group(1) == "15"
    assert not signed_in(client)


def test_the_account_counter_holds_across_addresses(client, admin_a):
    for i in range(5):
        sign_in(client, admin_a.email, "wrong-password", ip=f"198.51.100.{i}")
    response = sign_in(client, admin_a.email, PASSWORD, ip="203.0.113.99")
    assert LOCKED.search(response.content.decode()) and not signed_in(client)


def test_the_address_counter_holds_across_accounts(client, admin_a, member_a):
    for i in range(5):
        sign_in(client, f"nobody{i}@example.com", "wrong-password", ip="192.0.2.50")
    response = sign_in(client, member_a.email, PASSWORD, ip="192.0.2.50")
    assert LOCKED.search(response.content.decode()) and not signed_in(client)
    # another address and an untouched account are not affected
    assert sign_in(Client(), admin_a.email, PASSWORD, ip="192.0.2.51").status_code == 302


def test_a_success_resets_the_account_counter(client, admin_a):
    for _ in range(4):
        sign_in(client, admin_a.email, "wrong-password", ip="192.0.2.1")
    assert sign_in(client, admin_a.email, PASSWORD, ip="192.0.2.1").status_code == 302
    other = Client()
    for _ in range(4):
        sign_in(other, admin_a.email, "wrong-password", ip="192.0.2.2")
    response = sign_in(other, admin_a.email, PASSWORD, ip="192.0.2.3")
    assert response.status_code == 302 and signed_in(other)


def test_the_wait_is_counted_from_the_first_failure(client, admin_a, monkeypatch):
    import time

    from onboarding import throttle

    start = time.time()
    monkeypatch.setattr(throttle.time, "time", lambda: start)
    for _ in range(5):
        sign_in(client, admin_a.email, "wrong-password")
    monkeypatch.setattr(throttle.time, "time", lambda: start + 10 * 60 + 1)
    response = sign_in(client, admin_a.email, PASSWORD)
    assert LOCKED.search(response.content.decode()).group(1) == "5"


def test_failures_below_the_limit_do_not_lock(client, admin_a):
    for _ in range(4):
        sign_in(client, admin_a.email, "wrong-password")
    assert sign_in(client, admin_a.email, PASSWORD).status_code == 302


# Passwords ----------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("weak", ["short1!", "password123", "12345678901234", "signup@example.com"])
def test_a_weak_password_is_refused_at_sign_up(client, db, weak):
    response = client.post(
        reverse("signup"),
        {
            "organisation": "Weak Co",
            "name": "Wendy Weak",
            "email": "signup@example.com",
            "password1": weak,
            "password2": weak,
        },
    )
    assert response.status_code == 200
    assert not User.objects.filter(email="signup@example.com").exists()
    assert not Tenant.objects.filter(name="Weak Co").exists()


def test_a_strong_password_is_accepted_at_sign_up(client, db):
    response = client.post(
        reverse("signup"),
        {
            "organisation": "Strong Co",
            "name": "Sam Strong",
            "email": "strong@example.com",
            "password1": "plum-orbit-kettle-42",
            "password2": "plum-orbit-kettle-42",
        },
    )
    assert response.status_code == 302
    assert User.objects.filter(email="strong@example.com").exists()


def test_the_password_validators_are_configured():
    for weak in ("short", "password1234", "98765432109"):
        with pytest.raises(ValidationError):
            password_validation.validate_password(weak)
    password_validation.validate_password("plum-orbit-kettle-42")


# CSRF ---------------------------------------------------------------------------------------------------------


def _csrf_user(route, world):  # noqa: F811
    spec = ACCESS.get(route.name)
    if spec is None or spec.scope == "public":
        return None
    return world.users["support" if spec.scope == "support" else "admin"]


@pytest.mark.parametrize("route", ROUTES, ids=lambda r: r.name or r.route)
def test_every_post_without_a_csrf_token_is_refused(world, route):  # noqa: F811
    csrf_client = Client(enforce_csrf_checks=True)
    user = _csrf_user(route, world)
    if user is not None:
        csrf_client.force_login(user)
    before = fingerprint()
    response = csrf_client.post(fill(route, world), {"username": "admin@a.example", "password": PASSWORD})
    if (route.name or "").startswith("api:"):
        # The API takes bearer tokens only, never the session cookie, so there is no ambient credential for a
        # forged cross-site request to ride on (DRF exempts it from CSRF): a session POST is refused anyway.
        assert response.status_code in (401, 404, 405), f"POST {route.route}: {response.status_code}"
        assert fingerprint() == before
        return
    assert response.status_code == 403, f"POST {route.route}: {response.status_code}"
    assert "CSRF" in response.content.decode()
    assert fingerprint() == before


def test_a_post_with_the_token_gets_through(world):  # noqa: F811
    """The control for the test above: the same client with a token is not refused."""
    csrf_client = Client(enforce_csrf_checks=True)
    csrf_client.force_login(world.users["admin"])
    page = csrf_client.get(reverse("team", args=[world.a.tenant.slug]))
    token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page.content.decode()).group(1)
    response = csrf_client.post(
        reverse("team", args=[world.a.tenant.slug]),
        {"csrfmiddlewaretoken": token, "email": "x@a.example", "role": "member"},
    )
    assert response.status_code == 302


# Sessions -----------------------------------------------------------------------------------------------------


def test_sign_out_needs_a_post(client, admin_a):
    client.force_login(admin_a)
    assert client.get(reverse("logout")).status_code == 405
    assert signed_in(client)
    client.post(reverse("logout"))
    assert not signed_in(client)


def test_signing_in_gives_a_new_session_id(client, admin_a):
    client.get(reverse("login"))
    client.session.save()
    before = client.session.session_key
    sign_in(client, admin_a.email, PASSWORD)
    assert client.session.session_key != before


def test_session_and_csrf_cookies_are_not_readable_by_scripts_or_sent_cross_site(client, admin_a, settings):
    assert settings.SESSION_COOKIE_HTTPONLY is True
    assert settings.SESSION_COOKIE_SAMESITE == "Lax" and settings.CSRF_COOKIE_SAMESITE == "Lax"
    response = sign_in(client, admin_a.email, PASSWORD)
    cookie = response.cookies[settings.SESSION_COOKIE_NAME]
    assert cookie["httponly"] and cookie["samesite"] == "Lax"
