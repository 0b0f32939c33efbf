"""Django system checks for misconfiguration that settings parsing alone cannot see.

The deploy checks run with ``manage.py check --deploy``; with the production profile correctly configured they
report nothing (tests/onboarding/test_security_settings.py).
"""

from __future__ import annotations

from django.conf import settings
from django.core.checks import Error, Warning, register

WEAK_HASHERS = {
    "django.contrib.auth.hashers.MD5PasswordHasher",
    "django.contrib.auth.hashers.UnsaltedMD5PasswordHasher",
    "django.contrib.auth.hashers.UnsaltedSHA1PasswordHasher",
    "django.contrib.auth.hashers.SHA1PasswordHasher",
    "django.contrib.auth.hashers.CryptPasswordHasher",
}
CSP_MIDDLEWARE = "onboarding.middleware.ContentSecurityPolicyMiddleware"


@register(deploy=True)
def check_production_settings(app_configs, **kwargs):
    problems = []
    if settings.CONNECTWISE_SANDBOX_URL:
        problems.append(
            Warning(
                "CONNECTWISE_SANDBOX_URL is set: partners can connect to the sandbox.",
                hint="Unset it in production.",
                id="onboarding.W001",
            )
        )
    keys = list(settings.FIELD_ENCRYPTION_KEYS)
    if len(keys) == 0:
        problems.append(Error("FIELD_ENCRYPTION_KEYS is empty.", id="onboarding.E001"))
    elif len(set(keys)) != len(keys):
        problems.append(
            Warning(
                "FIELD_ENCRYPTION_KEYS lists the same key twice.",
                hint="List each key once, newest first (see SECURITY.md, key rotation).",
                id="onboarding.W002",
            )
        )
    if CSP_MIDDLEWARE not in settings.MIDDLEWARE:
        problems.append(
            Error(
                "The Content-Security-Policy middleware is not installed.",
                hint=f"Add {CSP_MIDDLEWARE!r} to MIDDLEWARE.",
                id="onboarding.E002",
            )
        )
    if settings.PASSWORD_HASHERS and settings.PASSWORD_HASHERS[0] in WEAK_HASHERS:
        problems.append(
            Error(
                f"Passwords are hashed with {settings.PASSWORD_HASHERS[0].rsplit('.', 1)[-1]}.",
                hint="Use PBKDF2, Argon2 or bcrypt (ONBOARDING_FAST_HASHER is for tests only).",
                id="onboarding.E003",
            )
        )
    if not settings.AUTH_PASSWORD_VALIDATORS:
        problems.append(
            Warning(
                "No password validators are configured.",
                hint="See AUTH_PASSWORD_VALIDATORS.",
                id="onboarding.W003",
            )
        )
    backend = settings.CACHES.get("default", {}).get("BACKEND", "")
    if backend.endswith("DummyCache"):
        problems.append(
            Error(
                "The default cache is a DummyCache: sign-in throttling cannot count failures.",
                hint="Set REDIS_URL (or use the default file cache on a single host).",
                id="onboarding.E004",
            )
        )
    elif backend.endswith("LocMemCache"):
        problems.append(
            Warning(
                "The default cache is per process: each web process counts failed sign-ins on its own.",
                hint="Set REDIS_URL so that sign-in throttling is shared.",
                id="onboarding.W004",
            )
        )
    return problems
