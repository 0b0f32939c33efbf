"""Production settings: `manage.py check --deploy` is silent, cookies are secure, HSTS is on; and the product's own
deploy checks catch what would weaken the protections."""

from __future__ import annotations

import json
import os
import secrets
import subprocess
import sys
from pathlib import Path

import pytest
from cryptography.fernet import Fernet

from onboarding.system_checks import check_production_settings

ROOT = Path(__file__).resolve().parents[2]


def production_env(tmp_path, **extra) -> dict[str, str]:
    env = {
        k: v
        for k, v in os.environ.items()
        if k
        not in {
            "DATABASE_URL",
            "REDIS_URL",
            "CONNECTWISE_SANDBOX_URL",
            "DEBUG",
            "ONBOARDING_FAST_HASHER",
            "DJANGO_ALLOW_ASYNC_UNSAFE",
        }
    }
    env.update(
        {
            "ONBOARDING_VAR_DIR": str(tmp_path),
            "ONBOARDING_PROFILE": "production",
            "SECRET_KEY": "".join(
                secrets.choice("abcdefghijklmnopqrstuvwxyz0123456789!@#%^*-_") for _ in range(60)
            ),
            "FIELD_ENCRYPTION_KEYS": Fernet.generate_key().decode(),
            "ALLOWED_HOSTS": "readiness.example.com",
            "CONNECTWISE_CLIENT_ID": "6d1f7c1e-3f1a-4b8e-9f57-3c1d2a9b8e01",
            "DJANGO_SETTINGS_MODULE": "onboarding.settings",
        }
    )
    env.update(extra)
    return env


def run(args, env) -> subprocess.CompletedProcess:
    return subprocess.run(args, cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)


def test_check_deploy_reports_nothing_with_production_settings(tmp_path):
    result = run(
        [sys.executable, "manage.py", "check", "--deploy", "--fail-level", "WARNING"],
        production_env(tmp_path),
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "System check identified no issues" in result.stdout, result.stdout + result.stderr


def test_check_deploy_complains_about_the_sandbox_in_production(tmp_path):
    env = production_env(
        tmp_path, CONNECTWISE_SANDBOX_URL="http://127.0.0.1:8765", CONNECTWISE_SANDBOX_IN_PRODUCTION="true"
    )
    result = run([sys.executable, "manage.py", "check", "--deploy", "--fail-level", "WARNING"], env)
    assert result.returncode != 0 and "onboarding.W001" in result.stdout + result.stderr


def test_production_cookies_are_secure_and_hsts_is_on(tmp_path):
    code = (
        "import django, json; django.setup(); from django.conf import settings as s; print(json.dumps({k: getattr(s, k)"
        " for k in ['DEBUG', 'SESSION_COOKIE_SECURE', 'CSRF_COOKIE_SECURE', 'SESSION_COOKIE_HTTPONLY',"
        " 'SECURE_SSL_REDIRECT', 'SECURE_HSTS_SECONDS', 'SECURE_HSTS_INCLUDE_SUBDOMAINS', 'SECURE_CONTENT_TYPE_NOSNIFF',"
        " 'X_FRAME_OPTIONS', 'PASSWORD_HASHERS']}))"
    )
    result = run([sys.executable, "-c", code], production_env(tmp_path, ONBOARDING_FAST_HASHER="1"))
    assert result.returncode == 0, result.stderr
    s = json.loads(result.stdout)
    assert s["DEBUG"] is False
    assert s["SESSION_COOKIE_SECURE"] and s["CSRF_COOKIE_SECURE"] and s["SESSION_COOKIE_HTTPONLY"]
    assert s["SECURE_SSL_REDIRECT"] is True
    assert s["SECURE_HSTS_SECONDS"] >= 31536000 and s["SECURE_HSTS_INCLUDE_SUBDOMAINS"]
    assert s["SECURE_CONTENT_TYPE_NOSNIFF"] and s["X_FRAME_OPTIONS"] == "DENY"
    assert "MD5" not in s["PASSWORD_HASHERS"][0]  # the fast test hasher is never used in production


def test_production_https_response_carries_hsts(tmp_path):
    # An anonymous visit to a signed-in page: a redirect, so no template or collected static file is needed.
    code = (
        "import django; django.setup(); from django.test import Client;"
        "r = Client().get('/support/', secure=True, HTTP_HOST='readiness.example.com');"
        "print(r.status_code, r.headers.get('Strict-Transport-Security'))"
    )
    result = run([sys.executable, "-c", code], production_env(tmp_path))
    assert result.returncode == 0, result.stderr
    status, hsts = result.stdout.strip().split(" ", 1)
    assert status == "302"
    assert "max-age=31536000" in hsts and "includeSubDomains" in hsts


# The product's deploy checks ------------------------------------------------------------------------------------


def ids(settings_) -> set[str]:
    return {p.id for p in check_production_settings(None)}


def test_the_deploy_checks_are_silent_by_default(settings):
    settings.CONNECTWISE_SANDBOX_URL = None
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.PBKDF2PasswordHasher"]
    assert ids(settings) == set()


@pytest.mark.parametrize(
    ("change", "problem"),
    [
        ({"CONNECTWISE_SANDBOX_URL": "http://127.0.0.1:8765"}, "onboarding.W001"),
        ({"FIELD_ENCRYPTION_KEYS": []}, "onboarding.E001"),
        ({"PASSWORD_HASHERS": ["django.contrib.auth.hashers.MD5PasswordHasher"]}, "onboarding.E003"),
        ({"AUTH_PASSWORD_VALIDATORS": []}, "onboarding.W003"),
        (
            {"CACHES": {"default": {"BACKEND": "django.core.cache.backends.dummy.DummyCache"}}},
            "onboarding.E004",
        ),
        (
            {"CACHES": {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}},
            "onboarding.W004",
        ),
    ],
)
def test_the_deploy_checks_catch_weakened_protections(settings, change, problem):
    settings.CONNECTWISE_SANDBOX_URL = None
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.PBKDF2PasswordHasher"]
    for key, value in change.items():
        setattr(settings, key, value)
    assert problem in ids(settings)


def test_the_deploy_checks_notice_a_missing_csp_middleware(settings):
    settings.CONNECTWISE_SANDBOX_URL = None
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.PBKDF2PasswordHasher"]
    settings.MIDDLEWARE = [m for m in settings.MIDDLEWARE if "ContentSecurityPolicy" not in m]
    assert "onboarding.E002" in ids(settings)


def test_a_duplicated_encryption_key_is_noticed(settings):
    settings.CONNECTWISE_SANDBOX_URL = None
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.PBKDF2PasswordHasher"]
    key = Fernet.generate_key().decode()
    settings.FIELD_ENCRYPTION_KEYS = [key, key]
    assert "onboarding.W002" in ids(settings)
