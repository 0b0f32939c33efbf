"""The sandbox over a real socket: paging links name the served host, resets are real connection resets."""

from __future__ import annotations

import httpx
import pytest

from connectwise.sandbox import SandboxApp, serve_in_thread

from .conftest import API, CLIENT_ID


@pytest.fixture
def served(scenarios):
    app = SandboxApp([scenarios["healthy"]])
    with serve_in_thread(app) as url:
        yield app, url


def test_served_api_and_a_real_connection_reset(served):
    app, url = served
    auth = ("acme+acmepub", "acmepriv-0123456789")
    with httpx.Client(base_url=url + API, auth=auth, headers={"clientId": CLIENT_ID}) as client:
        response = client.get("company/companies", params={"pageSize": 5})
        assert response.status_code == 200
        assert response.links["next"]["url"].startswith(url + API)
        app.set_faults({"queue": ["reset"]}, "acme")
        with pytest.raises(httpx.ReadError):
            client.get("system/info")
        assert client.get("system/info").status_code == 200
    assert httpx.get(url + "/login/companyinfo/acme").json()["CompanyID"] == "acme"
