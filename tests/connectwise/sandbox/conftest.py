"""In-process sandbox fixtures: plain httpx clients over the WSGI app (no dependency on connectwise.client)."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest

from connectwise.sandbox import SandboxApp, load_scenario, sandbox_transport

SCENARIOS = Path(__file__).resolve().parents[3] / "connectwise" / "sandbox" / "scenarios"
CLIENT_ID = "0f0f0f0f-0000-1111-2222-333344445555"
API = "/v4_6_release/apis/3.0/"
KEYS = {
    "acme": ("acmepub", "acmepriv-0123456789"),
    "brokenco": ("brokenpub", "brokenpriv-0123456789"),
    "bareco": ("barepub", "barepriv-0123456789"),
}


@pytest.fixture(scope="session")
def scenarios():
    return {name: load_scenario(SCENARIOS / f"{name}.json") for name in ("healthy", "broken", "bare")}


@pytest.fixture
def app(scenarios):
    return SandboxApp(list(scenarios.values()))


def make_client(
    app, company="acme", public=None, private=None, client_id=CLIENT_ID, **kwargs
) -> httpx.Client:
    default_public, default_private = KEYS.get(company, ("", ""))
    headers = {"clientId": client_id} if client_id else {}
    return httpx.Client(
        transport=sandbox_transport(app),
        base_url="http://sandbox.test" + API,
        auth=(f"{company}+{public or default_public}", private or default_private),
        headers=headers,
        **kwargs,
    )


@pytest.fixture
def acme(app):
    with make_client(app, "acme") as client:
        yield client


@pytest.fixture
def broken(app):
    with make_client(app, "brokenco") as client:
        yield client


@pytest.fixture
def control(app):
    with httpx.Client(transport=sandbox_transport(app), base_url="http://sandbox.test") as client:
        yield client
