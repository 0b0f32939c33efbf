"""Injected faults: latency, 429/500/503 with Retry-After, resets, slow bodies; deterministic under a seed."""

from __future__ import annotations

import httpx
import pytest

from connectwise.sandbox import SandboxApp

from .conftest import make_client


def _statuses(client, n=40):
    out = []
    for _ in range(n):
        try:
            out.append(client.get("system/info").status_code)
        except httpx.ReadError:
            out.append("reset")
    return out


def test_the_same_seed_gives_the_same_faults(app, control):
    faults = {"seed": 7, "rates": {"429": 0.2, "500": 0.1, "503": 0.1, "reset": 0.1}, "company": "acme"}
    control.post("/_sandbox/faults", json=faults)
    with make_client(app, "acme") as client:
        first = _statuses(client)
    control.post("/_sandbox/faults", json=faults)  # setting faults again re-seeds
    with make_client(app, "acme") as client:
        second = _statuses(client)
    assert first == second
    assert {429, 500, 503, "reset", 200} == set(first)
    control.post("/_sandbox/faults", json={**faults, "seed": 8})
    with make_client(app, "acme") as client:
        assert _statuses(client) != first


def test_429_and_503_carry_retry_after(app, control):
    control.post(
        "/_sandbox/faults", json={"company": "acme", "queue": ["429", "503", "500"], "retryAfterSeconds": 3}
    )
    with make_client(app, "acme") as client:
        first, second, third, fourth = (client.get("system/info") for _ in range(4))
    assert (first.status_code, first.headers["Retry-After"]) == (429, "3")
    assert (second.status_code, second.headers["Retry-After"]) == (503, "3")
    assert third.status_code == 500 and "Retry-After" not in third.headers
    assert third.json()["code"]
    assert fourth.status_code == 200


def test_a_reset_becomes_httpx_read_error_in_process(app, control):
    control.post("/_sandbox/faults", json={"company": "acme", "queue": ["reset"]})
    with make_client(app, "acme") as client:
        with pytest.raises(httpx.ReadError):
            client.get("system/info")
        assert client.get("system/info").status_code == 200


def test_reset_after_applies_the_write_and_loses_the_answer(app, control):
    control.post("/_sandbox/faults", json={"company": "acme", "queue": ["resetAfter"]})
    with make_client(app, "acme") as client:
        with pytest.raises(httpx.ReadError):
            client.post("procurement/categories", json={"name": "Services"})
        again = client.post("procurement/categories", json={"name": "Services"})
    assert again.status_code == 400 and again.json()["errors"][0]["code"] == "ObjectExists"


def test_faults_can_be_limited_to_paths(app, control):
    control.post("/_sandbox/faults", json={"company": "acme", "rates": {"500": 1.0}, "paths": ["finance/"]})
    with make_client(app, "acme") as client:
        assert client.get("system/info").status_code == 200
        assert client.get("finance/agreements").status_code == 500


def test_latency_sleeps_per_request_with_an_injectable_sleep(scenarios):
    slept = []
    app = SandboxApp([scenarios["healthy"]], sleep=slept.append)
    app.set_faults({"latencyMs": 100}, "acme")
    with make_client(app, "acme") as client:
        client.get("system/info")
        client.get("company/companies")
    assert slept == [0.1, 0.1]


def test_slow_bodies_trickle(scenarios):
    slept = []
    app = SandboxApp([scenarios["healthy"]], sleep=slept.append)
    app.set_faults({"slowBodyMs": 300}, "acme")
    with make_client(app, "acme") as client:
        response = client.get("company/companies")
    assert response.status_code == 200 and len(response.json()) == 12
    assert pytest.approx(sum(slept)) == 0.3 and len(slept) == 3


def test_discovery_and_control_endpoints_are_not_faulted_unless_asked(app, control):
    control.post("/_sandbox/faults", json={"rates": {"500": 1.0}})
    assert control.get("/login/companyinfo/acme").status_code == 200
    assert control.get("/_sandbox/requests").status_code == 200
    control.post("/_sandbox/faults", json={"rates": {"500": 1.0}, "includeDiscovery": True})
    assert control.get("/login/companyinfo/acme").status_code == 500


def test_bad_faults_are_400_naming_the_problem(control):
    response = control.post("/_sandbox/faults", json={"rates": {"418": 0.5}})
    assert response.status_code == 400
    assert "$.faults.rates" in response.json()["message"]


def test_enable_faults_false_ignores_them(scenarios):
    app = SandboxApp([scenarios["healthy"]], enable_faults=False)
    app.set_faults({"rates": {"500": 1.0}}, "acme")
    with make_client(app, "acme") as client:
        assert client.get("system/info").status_code == 200


def test_faults_can_be_limited_to_some_methods(app, control):
    control.post("/_sandbox/faults", json={"company": "acme", "queue": ["500"], "methods": ["POST"]})
    with make_client(app, "acme") as client:
        assert client.get("procurement/categories").status_code == 200  # a GET does not take the queued fault
        created = client.post("procurement/categories", json={"name": "Faulted"})
        assert created.status_code == 500
        assert client.post("procurement/categories", json={"name": "Faulted"}).status_code == 201
    bad = control.post("/_sandbox/faults", json={"company": "acme", "methods": ["FETCH"]})
    assert bad.status_code == 400 and "$.faults.methods[0]" in bad.text


def test_a_500_fault_can_answer_connectwise_own_error_body_on_every_try(app, control):
    body = {"code": "ConnectWiseApi", "message": "String was not recognized as a valid Boolean."}
    control.post(
        "/_sandbox/faults",
        json={"company": "acme", "rates": {"500": 1.0}, "paths": ["company/companies"], "errorBody": body},
    )
    with make_client(app, "acme") as client:
        answers = [client.get("company/companies") for _ in range(3)]
        assert client.get("finance/agreements").status_code == 200
    assert [(r.status_code, r.json()) for r in answers] == [(500, body)] * 3
    assert all(r.headers["x-cw-request-id"] for r in answers)


@pytest.mark.parametrize(
    "error_body, where",
    [
        ({"code": "ConnectWiseApi"}, "$.faults.errorBody.message"),
        ({"code": "", "message": "x"}, "$.faults.errorBody.code"),
        ({"code": "A", "message": "x", "errors": []}, "$.faults.errorBody.errors"),
        ("a string", "$.faults.errorBody"),
    ],
)
def test_a_bad_error_body_is_400_naming_it(control, error_body, where):
    response = control.post("/_sandbox/faults", json={"errorBody": error_body})
    assert response.status_code == 400
    assert where in response.json()["message"]
