"""TLS failures are named (issue 17): the sandbox served over HTTPS with certificates made in the test (trustme).

Each defect an on-premise ConnectWise can have gets its own finding code and the fix (a publicly trusted
certificate with its full intermediate chain), instead of ``connection.unreachable`` "the network failed for a
moment". The client trusts the test's own root where a case needs the other checks to be reached.
"""

from __future__ import annotations

import ssl
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest
import trustme

from connectwise.checks import codes
from connectwise.checks.runner import ConnectionInfo, TenantChoices, run_steps
from connectwise.client import ConnectWiseClient, Credentials
from connectwise.errors import TLSFailed
from connectwise.sandbox import SandboxApp, load_scenario, serve_in_thread

SCENARIOS = Path(__file__).resolve().parents[2] / "connectwise" / "sandbox" / "scenarios"


@pytest.fixture(scope="module")
def app():
    return SandboxApp([load_scenario(SCENARIOS / "healthy.json")], enable_faults=False)


@pytest.fixture(scope="module")
def root():
    return trustme.CA()


def _server_context(pems: list[bytes], key_pem: bytes, tmp_path: Path) -> ssl.SSLContext:
    chain, key = tmp_path / "chain.pem", tmp_path / "key.pem"
    chain.write_bytes(b"".join(pems))
    key.write_bytes(key_pem)
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(chain, key)
    return context


def _connect(app, url: str, trust: trustme.CA | None):
    creds = Credentials(
        origin=url,
        company_id="acme",
        public_key="acmepub",
        private_key="acmepriv-0123456789",
        client_id=str(uuid.uuid4()),
    )
    transport = None
    if trust is not None:
        context = ssl.create_default_context()
        trust.configure_trust(context)
        transport = httpx.HTTPTransport(verify=context)
    client = ConnectWiseClient(creds, transport=transport, sleep=lambda s: None)
    with client:
        outcome = run_steps(
            client, TenantChoices(), steps=["connection"], connection=ConnectionInfo(url, url)
        )[0]
    return outcome, client.stats.calls


def _serve(app, context):
    return serve_in_thread(app, ssl_context=context)


def test_a_self_signed_certificate_is_named_with_its_fix(app, root, tmp_path):
    # The root itself is a self-signed certificate: served as the site's certificate, as an on-premise server
    # with a home-made certificate does. The client trusts only the public authorities.
    context = _server_context([root.cert_pem.bytes()], root.private_key_pem.bytes(), tmp_path)
    with _serve(app, context) as url:
        outcome, calls = _connect(app, url, trust=None)
    assert [f.code for f in outcome.findings] == [codes.CONNECTION_TLS_UNTRUSTED]
    finding = outcome.findings[0]
    assert "self-signed" in finding.data["verify_message"] or "self signed" in finding.data["verify_message"]
    assert "full intermediate chain" in finding.fix and "public certificate authority" in finding.fix
    assert "network failed for a moment" not in finding.explanation
    assert calls == 1  # a certificate is not retried


def test_an_incomplete_chain_is_untrusted_and_the_full_chain_passes(app, root, tmp_path):
    intermediate = root.create_child_ca()
    leaf = intermediate.issue_cert("127.0.0.1")
    key = leaf.private_key_pem.bytes()
    only_leaf = _server_context([leaf.cert_chain_pems[0].bytes()], key, tmp_path)
    with _serve(app, only_leaf) as url:
        outcome, _ = _connect(app, url, trust=root)
    assert [f.code for f in outcome.findings] == [codes.CONNECTION_TLS_UNTRUSTED]
    assert "issuer" in outcome.findings[0].data["verify_message"]
    full = _server_context([p.bytes() for p in leaf.cert_chain_pems], key, tmp_path)
    with _serve(app, full) as url:
        outcome, _ = _connect(app, url, trust=root)
    assert outcome.findings == [] and str(outcome.status) == "pass"


def test_an_expired_certificate_has_its_own_code(app, root, tmp_path):
    now = datetime.now(UTC)
    leaf = root.issue_cert(
        "127.0.0.1", not_before=now - timedelta(days=400), not_after=now - timedelta(days=1)
    )
    context = _server_context(
        [p.bytes() for p in leaf.cert_chain_pems], leaf.private_key_pem.bytes(), tmp_path
    )
    with _serve(app, context) as url:
        outcome, _ = _connect(app, url, trust=root)
    assert [f.code for f in outcome.findings] == [codes.CONNECTION_TLS_EXPIRED]
    assert "expired" in outcome.findings[0].explanation


def test_a_certificate_for_another_host_name_has_its_own_code(app, root, tmp_path):
    leaf = root.issue_cert("connectwise.example.test")
    context = _server_context(
        [p.bytes() for p in leaf.cert_chain_pems], leaf.private_key_pem.bytes(), tmp_path
    )
    with _serve(app, context) as url:
        outcome, _ = _connect(app, url, trust=root)
    assert [f.code for f in outcome.findings] == [codes.CONNECTION_TLS_NAME_MISMATCH]
    assert "another host name" in outcome.findings[0].explanation


def test_the_client_raises_a_permanent_tls_error_without_secrets(app, root, tmp_path):
    context = _server_context([root.cert_pem.bytes()], root.private_key_pem.bytes(), tmp_path)
    with _serve(app, context) as url:
        creds = Credentials(url, "acme", "acmepub", "acmepriv-0123456789", str(uuid.uuid4()))
        with ConnectWiseClient(creds, sleep=lambda s: None) as client, pytest.raises(TLSFailed) as caught:
            client.system_info()
    assert caught.value.kind == "untrusted" and caught.value.transient is False
    detail = caught.value.detail()
    assert detail["kind"] == "TLSFailed" and detail["tls"] == "untrusted" and detail["message"]
    assert "acmepriv" not in str(caught.value) and "acmepriv" not in repr(caught.value)
