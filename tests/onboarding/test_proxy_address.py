"""Behind the shipped proxy every request comes from Caddy's address: with TRUSTED_PROXY_HOPS the client's own
address (the X-Forwarded-For hop the proxy appended, django-xff) is what sign-in throttling counts."""

from __future__ import annotations

import pytest
from django.core.cache import cache
from django.test import Client
from django.urls import reverse

from ..conftest import PASSWORD
from .test_security_sessions import LOCKED, signed_in

CADDY = "172.18.0.7"  # every request reaches gunicorn from the proxy container


@pytest.fixture(autouse=True)
def _own_cache(settings):
    settings.CACHES = {
        "default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache", "LOCATION": "xff"}
    }
    settings.LOGIN_FAILURE_LIMIT = 5
    cache.clear()


@pytest.fixture
def behind_caddy(settings):
    """What TRUSTED_PROXY_HOPS=1 (deploy.env.example) sets up in onboarding/settings.py."""
    middleware = list(settings.MIDDLEWARE)
    middleware.insert(1, "xff.middleware.XForwardedForMiddleware")
    settings.MIDDLEWARE = middleware
    settings.XFF_TRUSTED_PROXY_DEPTH = 1
    settings.XFF_ALWAYS_PROXY = True


def sign_in(client, email, password, client_ip, **extra):
    return client.post(
        reverse("login"),
        {"username": email, "password": password},
        REMOTE_ADDR=CADDY,
        HTTP_X_FORWARDED_FOR=client_ip,
        **extra,
    )


def test_one_client_guessing_does_not_lock_everybody_out(behind_caddy, admin_a):
    guesser = Client()
    for i in range(5):
        sign_in(guesser, f"nobody{i}@example.com", "wrong-password", "203.0.113.66")
    assert LOCKED.search(sign_in(guesser, admin_a.email, PASSWORD, "203.0.113.66").content.decode())
    someone_else = Client()
    assert sign_in(someone_else, admin_a.email, PASSWORD, "198.51.100.20").status_code == 302
    assert signed_in(someone_else)


def test_a_request_that_bypassed_the_proxy_is_refused_but_health_still_answers(behind_caddy, db, client):
    assert client.get(reverse("login"), REMOTE_ADDR=CADDY).status_code == 400
    assert client.get("/healthz", REMOTE_ADDR=CADDY).status_code == 200


def test_without_a_proxy_a_client_sent_header_is_ignored(db, admin_a, settings):
    assert "xff.middleware.XForwardedForMiddleware" not in settings.MIDDLEWARE  # TRUSTED_PROXY_HOPS unset
    guesser = Client()
    for i in range(5):
        guesser.post(
            reverse("login"),
            {"username": f"nobody{i}@example.com", "password": "x"},
            REMOTE_ADDR="192.0.2.50",
            HTTP_X_FORWARDED_FOR=f"198.51.100.{i}",
        )
    response = guesser.post(
        reverse("login"),
        {"username": admin_a.email, "password": PASSWORD},
        REMOTE_ADDR="192.0.2.50",
        HTTP_X_FORWARDED_FOR="198.51.100.99",
    )
    assert LOCKED.search(response.content.decode())  # spoofing the header does not escape the lock


def test_trusted_proxy_hops_must_be_a_number(tmp_path):
    import os
    import subprocess
    import sys

    env = {**os.environ, "ONBOARDING_VAR_DIR": str(tmp_path), "TRUSTED_PROXY_HOPS": "caddy"}
    env.pop("DATABASE_URL", None)
    result = subprocess.run(
        [sys.executable, "-c", "import django; django.setup()"],
        env={**env, "DJANGO_SETTINGS_MODULE": "onboarding.settings"},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode != 0 and "TRUSTED_PROXY_HOPS must be a whole number" in result.stderr
