"""SSRF at connect time: partner hosts go through a transport that resolves, validates every address and connects
only to a validated IP (DNS rebinding cannot reach a private address), TLS still checks the host name, redirects
are never followed, and a refused host is explained in the connection form and by `tenant_connect`."""

from __future__ import annotations

import socket
import ssl
import threading

import httpcore
import httpx
import pytest
from django.core.management import execute_from_command_line
from django.db import connections as db_connections
from django.urls import reverse

from connectwise import errors
from onboarding import cw
from onboarding.forms import ConnectionForm
from onboarding.hosts import decide
from onboarding.models import ApprovedHost, Connection, Tenant
from onboarding.netguard import AddressRefused, GuardedNetworkBackend, GuardedTransport

from .test_hosts import PUBLIC_V4, SERVICE_PORTS, fake_resolver


class RecordingBackend(httpcore.NetworkBackend):
    """Stands in for the socket layer: records where it was asked to connect and how TLS was started."""

    def __init__(self):
        self.connected: list[tuple[str, int]] = []
        self.tls: list[dict] = []

    def connect_tcp(self, host, port, timeout=None, local_address=None, socket_options=None):
        self.connected.append((host, port))
        backend = self

        class Stream(httpcore.NetworkStream):
            def start_tls(self, ssl_context, server_hostname=None, timeout=None):
                backend.tls.append(
                    {
                        "server_hostname": server_hostname,
                        "verify_mode": ssl_context.verify_mode,
                        "check_hostname": ssl_context.check_hostname,
                    }
                )
                raise httpcore.ConnectError("stop here: the handshake is not what this test is about")

            def read(self, max_bytes, timeout=None):
                return b""

            def write(self, buffer, timeout=None):
                return None

            def close(self):
                return None

        return Stream()

    def sleep(self, seconds):
        return None


# The backend ----------------------------------------------------------------------------------------------------


def test_the_backend_connects_to_the_validated_ip_not_the_name(monkeypatch):
    fake_resolver(monkeypatch, {"cw.partner.example": [PUBLIC_V4]})
    inner = RecordingBackend()
    GuardedNetworkBackend(inner).connect_tcp("cw.partner.example", 443)
    assert inner.connected == [(PUBLIC_V4, 443)]


@pytest.mark.parametrize("answer", [["127.0.0.1"], ["10.0.0.5"], ["169.254.169.254"], [PUBLIC_V4, "::1"]])
def test_the_backend_refuses_before_opening_a_socket(monkeypatch, answer):
    fake_resolver(monkeypatch, {"cw.partner.example": answer})
    inner = RecordingBackend()
    with pytest.raises(AddressRefused, match="private or reserved"):
        GuardedNetworkBackend(inner).connect_tcp("cw.partner.example", 443)
    assert inner.connected == []


@pytest.mark.parametrize("host", ["127.1", "2130706433", "0x7f.1", "::1", "::ffff:127.0.0.1"])
def test_the_backend_refuses_private_literals_in_any_spelling(monkeypatch, host):
    fake_resolver(monkeypatch, {})
    inner = RecordingBackend()
    with pytest.raises(AddressRefused):
        GuardedNetworkBackend(inner).connect_tcp(host, 443)
    assert inner.connected == []


def test_tls_still_uses_the_host_name_for_sni_and_certificate_checks(monkeypatch):
    fake_resolver(monkeypatch, {"cw.partner.example": [PUBLIC_V4]})
    inner = RecordingBackend()
    with httpx.Client(transport=GuardedTransport(backend=inner)) as client, pytest.raises(httpx.ConnectError):
        client.get("https://cw.partner.example/login/companyinfo/acme")
    assert inner.connected == [(PUBLIC_V4, 443)]
    assert inner.tls == [
        {"server_hostname": "cw.partner.example", "verify_mode": ssl.CERT_REQUIRED, "check_hostname": True}
    ]


# DNS rebinding, end to end through the product's client factory --------------------------------------------------


@pytest.fixture
def listener():
    """A TCP server on loopback standing for an internal service; counts the connections it accepts."""
    server = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    server.bind(("127.0.0.1", 0))
    server.listen(8)
    server.settimeout(0.2)
    accepted: list[tuple] = []
    stop = threading.Event()

    def serve():
        while not stop.is_set():
            try:
                conn, addr = server.accept()
            except (TimeoutError, OSError):
                continue
            accepted.append(addr)
            conn.close()

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    yield server.getsockname()[1], accepted
    stop.set()
    thread.join(2)
    server.close()


def test_dns_rebinding_between_the_check_and_the_connect_cannot_reach_a_private_address(
    tenant_a, monkeypatch, listener
):
    port, accepted = listener
    host = f"cw.rebind.example:{port}"
    answers = iter([[PUBLIC_V4]])  # the first lookup (the check) is public; every later one is loopback

    real = socket.getaddrinfo

    def getaddrinfo(name, port_, family=0, type=0, proto=0, flags=0):
        if port_ in SERVICE_PORTS:  # the test run's own PostgreSQL and Redis (CI) still resolve for real
            return real(name, port_, family, type, proto, flags)
        address = next(answers, ["127.0.0.1"])[0]
        return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", (address, port_))]

    monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)
    monkeypatch.setattr(cw, "TRANSPORT_FACTORY", None)
    ApprovedHost.objects.create(hostname=host)
    decision = decide(host)
    assert decision.allowed  # the check saw the public answer
    connection = Connection(tenant=tenant_a, site=host, company_id="acme", public_key="pub")
    connection.set_private_key("never-sent-anywhere-1234")
    client = cw.client_for(connection, decision)
    client._sleep = lambda seconds: None  # retries without waiting
    with client, pytest.raises(errors.ConnectionFailed, match="private or reserved"):
        client.discover()
    assert accepted == [], "the client reached the loopback service after the DNS answer changed"


def test_partner_hosts_get_the_guarded_transport_and_the_sandbox_does_not(tenant_a, settings, monkeypatch):
    monkeypatch.setattr(cw, "TRANSPORT_FACTORY", None)
    fake_resolver(monkeypatch, {"cw.partner.example": [PUBLIC_V4]})
    ApprovedHost.objects.create(hostname="cw.partner.example")
    settings.CONNECTWISE_SANDBOX_URL = "http://127.0.0.1:8765"
    kinds = {}
    for site in ("api-na.myconnectwise.net", "cw.partner.example", "127.0.0.1:8765"):
        connection = Connection(tenant=tenant_a, site=site, company_id="acme", public_key="pub")
        connection.set_private_key("k" * 20)
        with cw.client_for(connection) as client:
            kinds[decide(site).kind] = isinstance(client._http._transport, GuardedTransport)
    assert kinds == {"cloud": True, "onprem": True, "sandbox": False}


def test_no_client_is_built_for_a_refused_host(tenant_a):
    connection = Connection(tenant=tenant_a, site="127.1", company_id="acme", public_key="pub")
    connection.set_private_key("k" * 20)
    with pytest.raises(errors.HostNotAllowed, match="private or reserved"):
        cw.client_for(connection)


def test_redirects_are_never_followed(tenant_a, monkeypatch):
    seen: list[str] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(str(request.url))
        return httpx.Response(302, headers={"Location": "http://169.254.169.254/latest/meta-data/"})

    monkeypatch.setattr(cw, "TRANSPORT_FACTORY", lambda: httpx.MockTransport(handler))
    connection = Connection(
        tenant=tenant_a, site="api-na.myconnectwise.net", company_id="acme", public_key="pub"
    )
    connection.set_private_key("k" * 20)
    with cw.client_for(connection) as client, pytest.raises(errors.RedirectRefused):
        client.discover()
    assert seen == ["https://api-na.myconnectwise.net/login/companyinfo/acme"]


# Clear messages where the partner types the host ------------------------------------------------------------------


def _form_data(**extra):
    return {
        "region": "onprem",
        "company_id": "acme",
        "public_key": "pub",
        "private_key": "secret-123456",
        **extra,
    }


def test_the_connection_form_explains_a_private_address(db):
    form = ConnectionForm(data=_form_data(onprem_host="0x7f.1"))
    assert not form.is_valid()
    assert "private or reserved address (127.0.0.1)" in form.errors["onprem_host"][0]


def test_the_connection_form_explains_an_unapproved_host(db):
    form = ConnectionForm(data=_form_data(onprem_host="cw.partner.example"))
    assert not form.is_valid()
    assert "must be approved by our support team" in form.errors["onprem_host"][0]


def test_the_connection_page_refuses_a_private_host_and_saves_nothing(client, admin_a, tenant_a, monkeypatch):
    fake_resolver(monkeypatch, {"cw.partner.example": ["10.0.0.8"]})
    ApprovedHost.objects.create(hostname="cw.partner.example")
    client.force_login(admin_a)
    response = client.post(
        reverse("step", args=[tenant_a.slug, "connection"]), _form_data(onprem_host="cw.partner.example")
    )
    assert response.status_code == 400
    assert "resolves to a private or reserved address (10.0.0.8)" in response.content.decode()
    assert not Connection.objects.filter(tenant=tenant_a).exists()


def test_tenant_connect_exits_non_zero_with_the_reason(db, monkeypatch, capsys):
    monkeypatch.setenv("CW_PRIVATE_KEY", "secret-123456")
    # run_from_argv closes the connections on exit, which would close the test database
    monkeypatch.setattr(db_connections, "close_all", lambda: None)
    argv = [
        "manage.py",
        "tenant_connect",
        "new-tenant",
        "--site",
        "127.1",
        "--company",
        "acme",
        "--public-key",
        "pub",
    ]
    with pytest.raises(SystemExit) as exit_info:
        execute_from_command_line(argv)
    assert exit_info.value.code not in (0, None)
    assert "private or reserved address (127.0.0.1)" in capsys.readouterr().err
    assert not Tenant.objects.filter(slug="new-tenant").exists()
