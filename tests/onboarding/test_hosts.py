"""Which ConnectWise hosts a partner may use (onboarding.hosts.decide) and the address rules behind it
(onboarding.netguard): cloud hosts, staff-approved on-premise hosts that resolve only to public addresses, and the
sandbox only when settings offer it."""

from __future__ import annotations

import socket

import pytest

from onboarding import netguard
from onboarding.hosts import decide
from onboarding.models import ApprovedHost

PUBLIC_V4 = "93.184.216.34"
PUBLIC_V6 = "2606:2800:220:1:248:1893:25c8:1946"


SERVICE_PORTS = {5432, 6379, "5432", "6379"}


def fake_resolver(monkeypatch, answers: dict[str, list[str]]):
    """socket.getaddrinfo answering from a table; any other name fails like NXDOMAIN. Returns the call log."""
    calls: list[str] = []
    real = socket.getaddrinfo

    def getaddrinfo(host, port, family=0, type=0, proto=0, flags=0):
        if port in SERVICE_PORTS:  # the test run's own PostgreSQL and Redis (CI) still resolve for real
            return real(host, port, family, type, proto, flags)
        calls.append(host)
        if host not in answers:
            raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")
        out = []
        for address in answers[host]:
            fam = socket.AF_INET6 if ":" in address else socket.AF_INET
            sockaddr = (address, port, 0, 0) if fam == socket.AF_INET6 else (address, port)
            out.append((fam, socket.SOCK_STREAM, 6, "", sockaddr))
        return out

    monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)
    return calls


@pytest.fixture
def approve(db):
    def _approve(hostname: str) -> None:
        ApprovedHost.objects.create(hostname=hostname)

    return _approve


# Cloud and sandbox -------------------------------------------------------------------------------------------


def test_cloud_hosts_are_allowed_without_approval_or_lookup(db, monkeypatch):
    calls = fake_resolver(monkeypatch, {})
    d = decide("api-eu.myconnectwise.net")
    assert d.allowed and d.kind == "cloud" and d.origin == "https://api-eu.myconnectwise.net"
    assert calls == []


def test_the_browser_host_is_rewritten_to_the_api_host(db):
    d = decide("https://na.myconnectwise.net/v4_6_release/")
    assert d.allowed and d.rewritten and d.api_host == "api-na.myconnectwise.net"


def test_the_sandbox_is_offered_only_when_settings_enable_it(db, settings):
    settings.CONNECTWISE_SANDBOX_URL = None
    refused = decide("127.0.0.1:8765")
    assert not refused.allowed and "private or reserved" in refused.refused
    settings.CONNECTWISE_SANDBOX_URL = "http://127.0.0.1:8765"
    allowed = decide("127.0.0.1:8765")
    assert allowed.allowed and allowed.kind == "sandbox" and allowed.origin == "http://127.0.0.1:8765"
    # exactly that host: another port on the same machine is not the sandbox
    assert not decide("127.0.0.1:8766").allowed


# On-premise: approval ----------------------------------------------------------------------------------------


def test_an_unapproved_on_premise_host_is_refused_without_a_dns_lookup(db, monkeypatch):
    calls = fake_resolver(monkeypatch, {"cw.partner.example": [PUBLIC_V4]})
    d = decide("cw.partner.example")
    assert not d.allowed and d.kind == "onprem"
    assert "must be approved by our support team" in d.refused
    assert calls == []  # the form cannot be used to probe which internal names resolve


def test_an_approved_host_with_only_public_addresses_is_allowed(approve, monkeypatch):
    fake_resolver(monkeypatch, {"cw.partner.example": [PUBLIC_V4, PUBLIC_V6]})
    approve("cw.partner.example")
    d = decide("https://cw.partner.example/")
    assert d.allowed and d.kind == "onprem" and d.origin == "https://cw.partner.example"


def test_an_approved_host_that_does_not_resolve_is_refused_clearly(approve, monkeypatch):
    fake_resolver(monkeypatch, {})
    approve("cw.partner.example")
    d = decide("cw.partner.example")
    assert not d.allowed and "could not be found" in d.refused


# On-premise: every address must be public --------------------------------------------------------------------

PRIVATE_ANSWERS = [
    ("loopback", "127.0.0.1"),
    ("loopback elsewhere in 127/8", "127.53.0.9"),
    ("private 10/8", "10.1.2.3"),
    ("private 172.16/12", "172.20.0.5"),
    ("private 192.168/16", "192.168.1.10"),
    ("link-local / cloud metadata", "169.254.169.254"),
    ("carrier-grade NAT 100.64/10", "100.64.0.1"),
    ("unspecified", "0.0.0.0"),
    ("this network 0/8", "0.1.2.3"),
    ("multicast", "224.0.0.251"),
    ("reserved 240/4", "240.0.0.1"),
    ("broadcast", "255.255.255.255"),
    ("benchmarking 198.18/15", "198.18.0.1"),
    ("documentation", "192.0.2.10"),
    ("IPv6 loopback", "::1"),
    ("IPv6 unspecified", "::"),
    ("IPv6 unique local", "fd12:3456:789a::1"),
    ("IPv6 link-local", "fe80::1"),
    ("IPv6 multicast", "ff02::1"),
    ("IPv4-mapped loopback", "::ffff:127.0.0.1"),
    ("IPv4-mapped private", "::ffff:10.0.0.1"),
    ("NAT64 of a private address", "64:ff9b::a00:1"),
    ("6to4 of loopback", "2002:7f00:1::1"),
    ("Teredo", "2001:0:4136:e378:8000:63bf:3fff:fdd2"),
    ("IPv4-compatible", "::7f00:1"),
]


@pytest.mark.parametrize(("label", "address"), PRIVATE_ANSWERS, ids=[p[0] for p in PRIVATE_ANSWERS])
def test_an_approved_host_resolving_to_a_non_public_address_is_refused(approve, monkeypatch, label, address):
    fake_resolver(monkeypatch, {"cw.partner.example": [address]})
    approve("cw.partner.example")
    d = decide("cw.partner.example")
    assert not d.allowed, f"{label} {address} was allowed"
    assert "private or reserved address" in d.refused and "public internet" in d.refused


def test_one_private_address_among_public_ones_is_enough_to_refuse(approve, monkeypatch):
    fake_resolver(monkeypatch, {"cw.partner.example": [PUBLIC_V4, "10.0.0.7"]})
    approve("cw.partner.example")
    d = decide("cw.partner.example")
    assert not d.allowed and "10.0.0.7" in d.refused


ODD_SPELLINGS = [
    ("decimal", "2130706433"),
    ("octal", "0177.0.0.1"),
    ("hex", "0x7f.1"),
    ("hex dotted", "0x7f.0x0.0x0.0x1"),
    ("short", "127.1"),
    ("trailing dot", "127.0.0.1."),
    ("with a port", "127.0.0.1:8443"),
    ("with a scheme", "https://127.0.0.1/"),
    ("private short", "10.1"),
    ("metadata decimal", "2852039166"),
    ("IPv6 loopback", "[::1]"),
    ("IPv4-mapped IPv6", "[::ffff:127.0.0.1]"),
    ("IPv4-mapped IPv6 hex", "[::ffff:7f00:1]"),
    ("IPv6 link-local", "[fe80::1]"),
    ("IPv6 unique local", "[fd00::1]:443"),
]


@pytest.mark.parametrize(("label", "site"), ODD_SPELLINGS, ids=[p[0] for p in ODD_SPELLINGS])
def test_odd_spellings_of_private_addresses_are_refused_even_when_approved(approve, monkeypatch, label, site):
    calls = fake_resolver(monkeypatch, {})  # no DNS is needed to see through any of them
    from connectwise.sites import api_host_for

    host, _ = api_host_for(site)
    approve(host)
    d = decide(site)
    assert not d.allowed, f"{label}: {site} was allowed"
    assert "private or reserved address" in d.refused
    assert calls == []


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2130706433", "127.0.0.1"),
        ("0177.0.0.1", "127.0.0.1"),
        ("0x7f.1", "127.0.0.1"),
        ("127.1", "127.0.0.1"),
        ("127.0.0.1.", "127.0.0.1"),
        ("[::ffff:127.0.0.1]", "::ffff:7f00:1"),
        ("cw.partner.example", None),
        ("8.8.8.8", "8.8.8.8"),
    ],
)
def test_parse_address_reads_every_spelling_the_resolver_accepts(text, expected):
    parsed = netguard.parse_address(text)
    assert (str(parsed) if parsed else None) == expected


@pytest.mark.parametrize("address", ["8.8.8.8", PUBLIC_V4, PUBLIC_V6, "2a00:1450:4001:81c::200e"])
def test_public_addresses_are_public(address):
    assert netguard.is_public_address(address)


@pytest.mark.parametrize("address", [a for _, a in PRIVATE_ANSWERS])
def test_non_public_addresses_are_not_public(address):
    assert not netguard.is_public_address(address)


# On-premise on a private network the operator opened (CONNECTWISE_ONPREM_NETWORKS) ---------------------------


def test_an_opened_private_network_lets_an_approved_host_resolve_into_it(approve, monkeypatch, settings):
    import ipaddress

    fake_resolver(monkeypatch, {"cw.partner.example": ["10.20.0.5"]})
    approve("cw.partner.example")
    assert not decide("cw.partner.example").allowed  # closed by default
    settings.CONNECTWISE_ONPREM_NETWORKS = [ipaddress.ip_network("10.20.0.0/16")]
    assert decide("cw.partner.example").allowed
    # only that network: loopback and the cloud metadata address stay refused
    fake_resolver(monkeypatch, {"cw.partner.example": ["10.20.0.5", "127.0.0.1"]})
    assert "private or reserved" in decide("cw.partner.example").refused
    fake_resolver(monkeypatch, {"cw.partner.example": ["169.254.169.254"]})
    assert not decide("cw.partner.example").allowed


def test_the_transport_connects_into_an_opened_network_and_nowhere_else(monkeypatch, settings):
    import ipaddress

    fake_resolver(monkeypatch, {"cw.partner.example": ["10.20.0.5"], "evil.example": ["10.30.0.1"]})
    settings.CONNECTWISE_ONPREM_NETWORKS = [ipaddress.ip_network("10.20.0.0/16")]
    opened: list[str] = []

    class Recorder:
        def connect_tcp(self, host, port, **kwargs):
            opened.append(host)
            return object()

    backend = netguard.GuardedNetworkBackend(Recorder())
    backend.connect_tcp("cw.partner.example", 443)
    assert opened == ["10.20.0.5"]
    with pytest.raises(netguard.AddressRefused):
        backend.connect_tcp("evil.example", 443)
    assert opened == ["10.20.0.5"]


def test_a_bad_onprem_network_or_ca_file_stops_the_process(tmp_path):
    import os
    import subprocess
    import sys

    def settings_error(**extra) -> str:
        env = {**os.environ, "ONBOARDING_VAR_DIR": str(tmp_path), **extra}
        env.pop("DATABASE_URL", None)
        result = subprocess.run(
            [sys.executable, "-c", "import django; django.setup()"],
            env={**env, "DJANGO_SETTINGS_MODULE": "onboarding.settings"},
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert result.returncode != 0
        return result.stderr

    assert "CONNECTWISE_ONPREM_NETWORKS: '10.0.0.0/33'" in settings_error(
        CONNECTWISE_ONPREM_NETWORKS="10.0.0.0/33"
    )
    assert "cannot read" in settings_error(CONNECTWISE_CA_FILE=str(tmp_path / "missing.pem"))
    (tmp_path / "empty.pem").write_text("not a certificate")
    assert "holds no PEM certificate" in settings_error(CONNECTWISE_CA_FILE=str(tmp_path / "empty.pem"))


def test_partner_tls_trusts_the_operators_ca_as_well_as_the_public_ones(settings, tmp_path):
    import datetime

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "Partner Company Root CA")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now)
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    pem = tmp_path / "ca.pem"
    pem.write_bytes(cert.public_bytes(serialization.Encoding.PEM))

    def subjects(context) -> set[str]:
        return {dict(x[0] for x in ca["subject"]).get("commonName", "") for ca in context.get_ca_certs()}

    settings.CONNECTWISE_CA_FILE = None
    assert "Partner Company Root CA" not in subjects(netguard.partner_ssl_context())
    settings.CONNECTWISE_CA_FILE = str(pem)
    trusted = subjects(netguard.partner_ssl_context())
    assert "Partner Company Root CA" in trusted
    assert "ISRG Root X1" in trusted  # Let's Encrypt, from the public bundle
