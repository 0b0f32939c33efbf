"""/healthz: answers for the container's own check (plain HTTP, any Host) and fails when the database or the
broker is gone, naming the part but never the error text."""

from __future__ import annotations

import socket

import pytest
from django.db import connection

from onboarding import health


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def production_like(settings):
    """The production profile's host and HTTPS rules, which the container's check must get past."""
    settings.ALLOWED_HOSTS = ["readiness.example.com"]
    settings.SECURE_SSL_REDIRECT = True
    settings.SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
    return settings


def test_it_answers_over_plain_http_for_any_host_when_everything_is_up(db, client, production_like):
    response = client.get("/healthz", HTTP_HOST="127.0.0.1:8000")
    assert response.status_code == 200
    assert response.json() == {"ok": True, "database": "ok", "broker": "ok"}
    assert response["Cache-Control"] == "no-store"
    assert response["Content-Security-Policy"].startswith("default-src 'self'")
    assert response["X-Content-Type-Options"] == "nosniff"


def test_other_paths_still_get_the_host_check_and_the_https_redirect(db, client, production_like):
    assert client.get("/accounts/login/", HTTP_HOST="127.0.0.1:8000").status_code == 400
    response = client.get("/accounts/login/", HTTP_HOST="readiness.example.com")
    assert response.status_code == 301 and response["Location"].startswith("https://readiness.example.com/")


def test_it_fails_when_the_broker_is_gone(db, client, settings):
    from onboarding.celery import app

    url = f"redis://127.0.0.1:{closed_port()}/0"
    old = app.conf.broker_url
    app.conf.broker_url = url
    try:
        response = client.get("/healthz")
    finally:
        app.conf.broker_url = old
    assert response.status_code == 503
    assert response.json() == {"ok": False, "database": "ok", "broker": "unavailable"}
    assert str(url) not in response.content.decode()


def test_it_fails_when_the_database_is_gone(db, client, monkeypatch):
    class Gone:
        def cursor(self):
            raise connection.Database.OperationalError("password authentication failed for user secret-user")

    monkeypatch.setattr(health, "connection", Gone())
    response = client.get("/healthz")
    assert response.status_code == 503
    assert response.json()["database"] == "unavailable"
    assert "secret-user" not in response.content.decode()


def test_it_refuses_writes(db, client):
    response = client.post("/healthz")
    assert response.status_code == 405


def test_the_broker_check_gives_up_quickly(settings):
    import time

    from onboarding.celery import app

    old = app.conf.broker_url
    app.conf.broker_url = f"redis://127.0.0.1:{closed_port()}/0"
    try:
        started = time.monotonic()
        assert health.check_broker(timeout=1.0) is False
        assert time.monotonic() - started < 10
    finally:
        app.conf.broker_url = old
