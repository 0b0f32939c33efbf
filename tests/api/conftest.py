"""Fixtures for the API and webhook tests: tokens of each scope, a connected tenant with stored results."""

from __future__ import annotations

import pytest
from django.core.cache import cache


@pytest.fixture(autouse=True)
def _clean_cache():
    """Rate-limit counters live in the cache: every test starts with a fresh allowance."""
    cache.clear()
    yield
    cache.clear()


@pytest.fixture
def read_token(db):
    from onboarding.api.tokens import create

    token, secret = create("sync read", "read", by="test")
    return secret


@pytest.fixture
def verify_token(db):
    from onboarding.api.tokens import create

    token, secret = create("sync verify", "read+verify", by="test")
    return secret


@pytest.fixture
def api(client):
    """``api(token).get(path)``: the Django test client with the bearer header."""

    class Api:
        def __init__(self, secret):
            self.headers = {"Authorization": f"Bearer {secret}"} if secret else {}

        def get(self, path, **headers):
            return client.get(path, headers={**self.headers, **headers})

        def post(self, path, data=None, **headers):
            import json

            return client.post(
                path,
                data=json.dumps(data) if data is not None else "",
                content_type="application/json",
                headers={**self.headers, **headers},
            )

    return Api
