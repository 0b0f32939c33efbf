from __future__ import annotations

from connectwise.checks import codes
from connectwise.checks.base import Status
from connectwise.checks.runner import ConnectionInfo
from connectwise.errors import AuthFailed, ConnectionFailed, ServerError, Timeout, UnknownCompany

from .fakes import codes_of, healthy_client, run_check

CLOUD = ConnectionInfo(
    site_entered="api-na.myconnectwise.net", api_host="api-na.myconnectwise.net", company_id="acme"
)


def test_it_passes_and_reports_version_region_and_company():
    client = healthy_client()
    outcome = run_check("connection", client, connection=CLOUD)
    assert outcome.status == Status.PASS
    assert outcome.findings == []
    assert outcome.facts["version"] == "v2025.8"
    assert outcome.facts["cloud_region"] == "NA"
    assert outcome.facts["company_name"] == "Acme MSP"
    assert client.calls == [("GET", "login/companyinfo"), ("GET", "system/info")]


def test_it_refuses_a_host_without_any_call():
    client = healthy_client()
    info = ConnectionInfo(
        "evil.example.com", "evil.example.com", host_refused_reason="Not a ConnectWise host."
    )
    outcome = run_check("connection", client, connection=info)
    assert outcome.status == Status.FAIL
    assert codes_of(outcome) == [codes.CONNECTION_HOST_NOT_ALLOWED]
    assert outcome.findings[0].explanation == "Not a ConnectWise host."
    assert client.calls == []


def test_it_notes_a_browser_host_rewritten_to_the_api_host_and_still_passes():
    info = ConnectionInfo("https://na.myconnectwise.net/", "api-na.myconnectwise.net")
    outcome = run_check("connection", healthy_client(), connection=info)
    assert outcome.status == Status.PASS
    assert codes_of(outcome) == [codes.CONNECTION_BROWSER_HOST]
    assert outcome.findings[0].severity == "info"


def test_it_flags_an_unknown_company():
    client = healthy_client(discover_error=UnknownCompany("null body", status=200))
    outcome = run_check("connection", client, connection=CLOUD)
    assert outcome.status == Status.FAIL
    assert codes_of(outcome) == [codes.CONNECTION_UNKNOWN_COMPANY]
    assert "acme" in outcome.findings[0].subject
    assert ("GET", "system/info") not in client.calls


def test_it_flags_an_unreachable_site_on_connection_failure_or_timeout():
    for error in (ConnectionFailed("reset"), Timeout("slow")):
        outcome = run_check("connection", healthy_client(discover_error=error), connection=CLOUD)
        assert outcome.status == Status.FAIL
        assert codes_of(outcome) == [codes.CONNECTION_UNREACHABLE]


def test_it_flags_refused_keys():
    client = healthy_client(system_info_error=AuthFailed("401", status=401, code="Unauthorized"))
    outcome = run_check("connection", client, connection=CLOUD)
    assert outcome.status == Status.FAIL
    assert codes_of(outcome) == [codes.CONNECTION_AUTH_FAILED]
    assert "System > Members > tab API Members" in outcome.findings[0].fix


def test_it_reports_a_server_error_as_could_not_check():
    client = healthy_client(system_info_error=ServerError("503", status=503, path="system/info"))
    outcome = run_check("connection", client, connection=CLOUD)
    assert outcome.status == Status.ERROR
    assert codes_of(outcome) == [codes.STEP_CHECK_FAILED]
