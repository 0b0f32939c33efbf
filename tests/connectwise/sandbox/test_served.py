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


def test_a_connection_is_kept_alive_for_the_next_request_as_connectwise_does(served):
    """One TCP connection (and one sandbox thread) per client connection, not per request: a client's second
    request goes over the connection of its first. A request with a body ends its connection."""
    import base64
    import http.client
    from urllib.parse import urlsplit

    app, url = served
    token = base64.b64encode(b"acme+acmepub:acmepriv-0123456789").decode()
    headers = {"Authorization": f"Basic {token}", "clientId": CLIENT_ID}
    conn = http.client.HTTPConnection(urlsplit(url).netloc, timeout=10)
    try:
        conn.request("GET", API + "system/info", headers=headers)
        first = conn.getresponse()
        assert first.status == 200 and first.read()
        sock = conn.sock
        assert sock is not None and not first.will_close  # kept open for the next request
        conn.request("GET", API + "company/companies?pageSize=5", headers=headers)
        second = conn.getresponse()
        assert second.status == 200 and len(second.read()) > 2
        assert conn.sock is sock
        conn.request("POST", API + "company/companies", body=b"{}", headers=headers)
        third = conn.getresponse()
        third.read()
        assert third.will_close
    finally:
        conn.close()


def test_answers_are_sent_without_nagle_delay_as_web_servers_do(served, monkeypatch):
    """The server's side of each connection has TCP_NODELAY set. wsgiref sends the headers and the body in two
    writes; with Nagle's algorithm on, a kept-alive connection's short body waited for the client's delayed
    acknowledgement (40 ms on Linux) on every request after the first, a delay no ConnectWise server adds
    (``benchmark verify``'s second wave was 45 ms slower than its first)."""
    import socket

    from connectwise.sandbox.server import SandboxServer

    accepted: list[socket.socket] = []
    real_finish_request = SandboxServer.finish_request

    def finish_request(self, request, client_address):
        accepted.append(request)
        return real_finish_request(self, request, client_address)

    monkeypatch.setattr(SandboxServer, "finish_request", finish_request)
    app, url = served
    auth = ("acme+acmepub", "acmepriv-0123456789")
    with httpx.Client(base_url=url + API, auth=auth, headers={"clientId": CLIENT_ID}) as client:
        for _ in range(2):
            assert client.get("system/info").status_code == 200
        assert len(accepted) == 1  # one kept-alive connection, still open
        assert accepted[0].getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY) != 0
