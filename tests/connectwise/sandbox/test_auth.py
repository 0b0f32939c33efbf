"""Discovery, Basic auth and the clientId check (docs/connectwise/REFERENCE.md §1, §6)."""

from __future__ import annotations

import pytest

from connectwise.sandbox import SandboxApp

from .conftest import CLIENT_ID, make_client


def test_companyinfo_answers_pascal_case_without_auth(control):
    response = control.get("/login/companyinfo/acme")
    assert response.status_code == 200
    assert response.json() == {
        "CompanyName": "Acme MSP",
        "Codebase": "v4_6_release/",
        "VersionCode": "v2025.8",
        "VersionNumber": "v2025.8.0.1",
        "CompanyID": "acme",
        "IsCloud": True,
        "SiteUrl": "sandbox.test",
    }


def test_companyinfo_of_an_unknown_company_is_200_null(control):
    response = control.get("/login/companyinfo/nosuchco")
    assert response.status_code == 200
    assert response.text == "null"


def test_a_valid_call_gets_the_connectwise_headers(acme):
    response = acme.get("system/info")
    assert response.status_code == 200
    assert {"x-cw-request-id", "api-current-version", "x-server-name"} <= set(response.headers)
    assert response.json()["isCloud"] is True


@pytest.mark.parametrize(
    ("company", "public", "private"),
    [
        ("acme", "acmepub", "wrong"),
        ("acme", "nosuchpub", "acmepriv-0123456789"),
        ("nosuchco", "acmepub", "acmepriv-0123456789"),
        ("brokenco", "acmepub", "acmepriv-0123456789"),  # keys of another company
        ("acme", "acmeoldpub", "acmeoldpriv-0123456789"),  # inactive API member
    ],
)
def test_bad_credentials_are_401(app, company, public, private):
    with make_client(app, company, public, private) as client:
        response = client.get("system/info")
    assert response.status_code == 401
    assert response.json() == {"code": "ConnectWiseApi", "message": "UserNotAuthenticated"}


def test_missing_basic_auth_is_401_unauthorized(control):
    response = control.get("/v4_6_release/apis/3.0/system/info", headers={"clientId": CLIENT_ID})
    assert response.status_code == 401
    assert response.json()["code"] == "Unauthorized"


def test_a_user_name_without_plus_is_401(app):
    with make_client(app, "acme") as client:
        response = client.get("system/info", auth=("acme", "acmepriv-0123456789"))
    assert response.status_code == 401
    assert "company+publicKey" in response.json()["message"]


def test_missing_client_id_is_401_with_a_clear_message(app):
    with make_client(app, "acme", client_id=None) as client:
        response = client.get("system/info")
    assert response.status_code == 401
    assert response.json()["code"] == "Unauthorized"
    assert "clientId" in response.json()["message"]


def test_a_client_id_that_is_not_a_guid_is_refused(app):
    with make_client(app, "acme", client_id="my-integration") as client:
        assert client.get("system/info").status_code == 401


def test_configured_client_ids_are_the_only_ones_accepted(scenarios):
    app = SandboxApp([scenarios["healthy"]], client_ids=[CLIENT_ID.upper()])
    with make_client(app, "acme") as client:
        assert client.get("system/info").status_code == 200
    with make_client(app, "acme", client_id="11111111-2222-3333-4444-555555555555") as client:
        response = client.get("system/info")
    assert response.status_code == 401
    assert "clientId" in response.json()["message"]


def test_a_wrong_codebase_is_404(app):
    with make_client(app, "acme") as client:
        response = client.get("http://sandbox.test/v2019_3/apis/3.0/system/info")
    assert response.status_code == 404


def test_several_scenarios_are_served_at_once(acme, broken):
    assert acme.get("company/companies/count").json() == {"count": 12}
    assert broken.get("company/companies/count").json() == {"count": 16}
