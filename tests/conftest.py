"""The fixed cast of users (STYLE.md): an admin and a read-only member of tenant A, an outsider from tenant B,
and a support staff user; plus the in-process ConnectWise sandbox for integration tests."""

from __future__ import annotations

import pytest

PASSWORD = "correct-horse-battery-9"


@pytest.fixture(scope="session", autouse=True)
def _fresh_cache():
    """Start every test session with an empty cache: rate-limit counters (sign-up, password reset, invitations)
    left by an earlier run on this machine, in the file cache under var/ or in CI's Redis database, must not
    refuse this run's sign-ups. Runs before the e2e worker starts, so clearing the shared Redis database loses
    nothing of this session."""
    from django.core.cache import caches

    for cache in caches.all(initialized_only=False):
        cache.clear()


@pytest.fixture(autouse=True)
def _fast_hashing(settings):
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
    settings.CELERY_TASK_ALWAYS_EAGER = False
    # The dashboard's summary counts are shared for a few seconds when deployed; in tests every request counts
    # afresh so that no test sees another's tenants (tests/onboarding/test_dashboard_queries.py tests the cache).
    settings.DASHBOARD_COUNTS_SECONDS = 0


def _user(django_user_model, email, **extra):
    user = django_user_model.objects.create_user(username=email, email=email, password=PASSWORD, **extra)
    return user


@pytest.fixture
def tenant_a(db):
    from onboarding.models import Tenant

    return Tenant.objects.create(slug="tenant-a", name="Tenant A")


@pytest.fixture
def tenant_b(db):
    from onboarding.models import Tenant

    return Tenant.objects.create(slug="tenant-b", name="Tenant B")


@pytest.fixture
def admin_a(django_user_model, tenant_a):
    from onboarding.models import Membership

    user = _user(django_user_model, "admin@a.example", first_name="Alice")
    Membership.objects.create(tenant=tenant_a, user=user, role=Membership.Role.ADMIN)
    return user


@pytest.fixture
def member_a(django_user_model, tenant_a):
    from onboarding.models import Membership

    user = _user(django_user_model, "member@a.example", first_name="Mo")
    Membership.objects.create(tenant=tenant_a, user=user, role=Membership.Role.MEMBER)
    return user


@pytest.fixture
def outsider_b(django_user_model, tenant_b):
    from onboarding.models import Membership

    user = _user(django_user_model, "admin@b.example", first_name="Bob")
    Membership.objects.create(tenant=tenant_b, user=user, role=Membership.Role.ADMIN)
    return user


@pytest.fixture
def support(django_user_model, db):
    return _user(django_user_model, "support@distributor.example", first_name="Sam", is_support=True)
