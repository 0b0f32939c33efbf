"""The production smoke test (`make smoke`; also part of `make test` and CI): the shipped deployment, started the
way docker-compose.yml starts it, serves the product over HTTPS through Caddy to a real browser.

- PostgreSQL: a database of its own (``smoke_<random>``, created and dropped here) on the server of
  ``SMOKE_DATABASE_URL`` or ``DATABASE_URL`` (else ``postgres://postgres@127.0.0.1:5432``);
- Redis: a database number of its own, empty when claimed, flushed at the end;
- ``migrate``, then ``web`` (gunicorn), ``worker`` and ``beat`` with the compose commands and a deploy.env written
  from deploy.env.example (tests/e2e/production_stack.py), their compose health checks waited for;
- Caddy from Debian's package with the shipped Caddyfile, ``tls internal``, on free ports;
- the README's first-deployment steps: ``support_user add`` (the set-password link read from the file e-mail
  backend), the support person signs in; a partner signs up, connects to an approved on-premise host (the
  sandbox, served over HTTPS by the same Caddy) and the real worker checks it;
- HTTPS properties: secure cookies, HSTS, CSP, plain HTTP redirected to HTTPS; the worker's health check fails
  once the broker is gone; every process stops cleanly on SIGTERM.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import re
import secrets
import shutil
import socket
import ssl
import string
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path
from urllib.parse import urlparse

import pytest
from cryptography import x509
from cryptography.fernet import Fernet
from cryptography.hazmat.primitives import serialization

from tests.e2e import production_stack as ps
from tests.e2e.conftest import CHROMIUM, CHROMIUM_ARGS, SCENARIOS
from tests.e2e.helpers import wait_for_run

HEALTHY = json.loads((SCENARIOS / "healthy.json").read_text())
MEMBER = HEALTHY["apiMembers"][0]
CLIENT_ID = "6d1f7c1e-3f1a-4b8e-9f57-3c1d2a9b8e01"
SUPPORT_EMAIL = "first.support@smoke.example"
SUPPORT_PASSWORD = "smoke-support-pass-2026"
PARTNER_EMAIL = "pat@partner.smoke.example"
PARTNER_PASSWORD = "smoke-partner-pass-2026"
REQUIRED = os.environ.get("CI") == "true" or os.environ.get("SMOKE_REQUIRED") == "true"  # CI and `make smoke`


def unavailable(reason: str):
    """Under CI and `make smoke` the smoke test must run; elsewhere (`make test` on a laptop) it is skipped,
    saying what is missing."""
    if REQUIRED:
        pytest.fail(f"the production smoke test must run (CI, make smoke): {reason}")
    pytest.skip(reason)


# PostgreSQL and Redis of their own --------------------------------------------------------------------------


@pytest.fixture
def smoke_database():
    import psycopg

    server = os.environ.get("SMOKE_DATABASE_URL") or os.environ.get("DATABASE_URL") or ""
    if not server.startswith(("postgres://", "postgresql://")):
        server = "postgres://postgres@127.0.0.1:5432/postgres"
    parts = urlparse(server)
    admin_url = parts._replace(path="/postgres").geturl()
    name = f"smoke_{secrets.token_hex(4)}"
    try:
        admin = psycopg.connect(admin_url, autocommit=True, connect_timeout=5)
    except psycopg.Error as exc:
        unavailable(f"PostgreSQL is not reachable at {parts.hostname}:{parts.port} ({type(exc).__name__})")
    with admin:
        admin.execute(f'CREATE DATABASE "{name}"')
        try:
            yield parts._replace(path=f"/{name}").geturl()
        finally:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture
def smoke_redis():
    import redis

    base = os.environ.get("SMOKE_REDIS_URL") or os.environ.get("REDIS_URL") or "redis://127.0.0.1:6379/0"
    parts = urlparse(base)
    taken = parts.path.strip("/") or "0"  # the test run's own database (its worker consumes from it)
    for db in range(15, -1, -1):
        if str(db) == taken:
            continue
        url = parts._replace(path=f"/{db}").geturl()
        try:
            client = redis.Redis.from_url(url, socket_connect_timeout=3)
            claimed = client.dbsize() == 0 and client.set("smoke:claimed", "1", nx=True, ex=3600)
        except redis.RedisError as exc:
            unavailable(f"Redis is not reachable at {parts.hostname}:{parts.port} ({type(exc).__name__})")
        if claimed:
            break
    else:
        unavailable("no empty Redis database to claim")
    try:
        yield url
    finally:
        client.flushdb()


def deploy_env(
    ports: dict[str, int], database: str, redis_url: str, tmp_path: Path, ca_file: Path
) -> tuple[dict[str, str], dict[str, str]]:
    """The smoke test's deploy.env and caddy.env: a value for every variable of deploy.env.example and
    caddy.env.example, and the SMOKE_ONLY extras
    (tests/onboarding/test_compose.py checks both sets against the example and the compose file)."""
    origin = f"https://localhost:{ports['https']}"
    alphabet = string.ascii_letters + string.digits
    values = {
        "ONBOARDING_PROFILE": "production",
        "DOMAIN": f"localhost:{ports['https']}",
        "CADDY_TLS": "internal",
        "SECRET_KEY": "".join(secrets.choice(alphabet) for _ in range(60)),
        "FIELD_ENCRYPTION_KEYS": Fernet.generate_key().decode(),
        "ALLOWED_HOSTS": "localhost",
        "CSRF_TRUSTED_ORIGINS": origin,
        "TRUSTED_PROXY_HOPS": "1",
        "DATABASE_URL": database,
        "POSTGRES_PASSWORD": urlparse(database).password or "",
        "REDIS_URL": redis_url,
        "CONNECTWISE_CLIENT_ID": CLIENT_ID,
        "EMAIL_URL": f"filemail:///{tmp_path / 'mail'}",  # django-environ: filemail:////absolute/path
        "DEFAULT_FROM_EMAIL": "Billing sync readiness <noreply@smoke.example>",
        "SUPPORT_EMAIL": "support@smoke.example",
        "SITE_URL": origin,
    }
    extra = {
        "CADDY_HTTP_PORT": str(ports["http"]),
        "CADDY_ADMIN": f"127.0.0.1:{ports['admin']}",
        "CADDY_UPSTREAM": f"127.0.0.1:{ports['web']}",
        "ONBOARDING_VAR_DIR": str(tmp_path / "var"),
        "XDG_DATA_HOME": str(tmp_path / "caddy-data"),
        "XDG_CONFIG_HOME": str(tmp_path / "caddy-config"),
        "CONNECTWISE_ONPREM_NETWORKS": "127.0.0.0/8",
        "CONNECTWISE_CA_FILE": str(ca_file),
    }
    return values, extra


# The deployment ----------------------------------------------------------------------------------------------


@pytest.fixture
def deployment(tmp_path, smoke_database, smoke_redis):
    caddy = shutil.which("caddy")
    if not caddy:
        unavailable("caddy is not installed (`apt-get install caddy`, or run `make smoke` as root)")
    if not os.path.exists(CHROMIUM):
        unavailable(f"Chromium is not installed at {CHROMIUM}")

    ports = {name: ps.free_port() for name in ("web", "https", "http", "admin", "sandbox", "sandbox_https")}
    origin = f"https://localhost:{ports['https']}"
    var, mail, logs, home = (tmp_path / d for d in ("var", "mail", "logs", "home"))
    for d in (var, mail, logs, home):
        d.mkdir()
    caddy_data = tmp_path / "caddy-data"
    ca_file = caddy_data / "caddy" / "pki" / "authorities" / "local" / "root.crt"
    values, extra = deploy_env(ports, smoke_database, smoke_redis, tmp_path, ca_file)
    app_extra = {k: v for k, v in extra.items() if k not in ps.CADDY_SMOKE_ONLY}
    caddy_extra = {k: v for k, v in extra.items() if k in ps.CADDY_SMOKE_ONLY}
    env_file = ps.write_env_file(tmp_path / "deploy.env", values, app_extra)
    # Caddy's process gets caddy.env only, as its compose service does: none of the app's secrets.
    caddy_env = ps.write_env_file(tmp_path / "caddy.env", values, caddy_extra, example=ps.CADDY_ENV_EXAMPLE)
    stack = ps.Stack(env={**ps.base_env(home), **env_file}, logs=logs)
    sandbox_site = f"127.0.0.1:{ports['sandbox_https']}"
    caddyfile = tmp_path / "Caddyfile"
    caddyfile.write_text(
        f"# The shipped Caddyfile, unchanged, and the partner's on-premise ConnectWise (the sandbox) over HTTPS.\n"
        f"import {ps.CADDYFILE}\n\n{sandbox_site} {{\n\ttls internal\n"
        f"\treverse_proxy 127.0.0.1:{ports['sandbox']}\n}}\n"
    )
    try:
        # Caddy first: its internal CA (CONNECTWISE_CA_FILE) must exist before the app reads its settings.
        proc = stack.start(
            "caddy",
            ps.service_command("caddy", **{"/etc/caddy/Caddyfile": caddyfile}),
            env={**ps.base_env(home), **caddy_env},
        )
        ps.wait_for_port(ports["https"], proc, stack.log("caddy"))
        _wait_for_file(ca_file, proc, stack)

        # docker compose up: migrate to completion, then web, worker and beat (static files as the image build).
        stack.run("collectstatic", ["python", "manage.py", "collectstatic", "--noinput"])
        stack.run("migrate", ps.service_command("migrate"))
        stack.start("web", ps.service_command("web", **{"0.0.0.0:8000": f"127.0.0.1:{ports['web']}"}))
        stack.start("worker", ps.service_command("worker"))
        stack.start("beat", ps.service_command("beat", **{"/app/var/celerybeat-schedule": var / "beat"}))
        stack.wait_healthy(
            "web", ps.healthcheck_command("web", **{"127.0.0.1:8000": f"127.0.0.1:{ports['web']}"})
        )
        stack.wait_healthy("worker", ps.healthcheck_command("worker"))

        # The partner's ConnectWise: the sandbox with its own (development) settings, not part of the deployment.
        sandbox_env = {**ps.base_env(home), "ONBOARDING_VAR_DIR": str(tmp_path / "sandbox-var")}
        proc = stack.start(
            "sandbox",
            ["python", "manage.py", "cw_sandbox", "--port", str(ports["sandbox"]), "--client-id", CLIENT_ID]
            + ["--scenario", str(SCENARIOS / "healthy.json")],
            env=sandbox_env,
        )
        ps.wait_for_port(ports["sandbox"], proc, stack.log("sandbox"))
        yield {"stack": stack, "ports": ports, "origin": origin, "mail": mail, "ca_file": ca_file,
               "sandbox_site": sandbox_site}  # fmt: skip
    finally:
        stack.stop_all()


def _wait_for_file(path: Path, proc, stack, seconds: float = 30) -> None:
    import time

    deadline = time.monotonic() + seconds
    while not path.exists():
        assert proc.poll() is None and time.monotonic() < deadline, ps.tail(stack.log("caddy"))
        time.sleep(0.2)


# Helpers -----------------------------------------------------------------------------------------------------


def leaf_spki_sha256(port: int, ca_file: Path) -> str:
    """The base64 SHA-256 of the public key of the certificate Caddy serves for localhost, after verifying it
    against Caddy's internal root: Chromium is told to accept exactly that key (not every certificate error)."""
    context = ssl.create_default_context(cafile=str(ca_file))
    with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
        with context.wrap_socket(sock, server_hostname="localhost") as tls:
            der = tls.getpeercert(binary_form=True)
    spki = (
        x509.load_der_x509_certificate(der)
        .public_key()
        .public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    )
    return base64.b64encode(hashlib.sha256(spki).digest()).decode()


def set_password_link(mail_dir: Path, email: str) -> str:
    messages = [p.read_text() for p in sorted(mail_dir.iterdir())]
    to_support = [m for m in messages if f"To: {email}" in m]
    assert len(to_support) == 1, messages
    links = re.findall(r"https://\S+/accounts/reset/\S+/", to_support[0])
    assert links, to_support[0]
    return links[0]


def signup_confirm_link(mail_dir: Path, email: str, seconds: float = 60) -> str:
    """The confirmation link of the sign-up e-mail, which the worker sends after commit (so wait for it)."""
    deadline = time.monotonic() + seconds
    while True:
        for path in sorted(mail_dir.iterdir()):
            text = path.read_text()
            links = re.findall(r"https://\S+/accounts/signup/confirm/\S+/", text)
            if f"To: {email}" in text and links:
                return links[0]
        assert time.monotonic() < deadline, "no sign-up confirmation e-mail"
        time.sleep(0.5)


class NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args, **kwargs):
        return None


def plain_http(url: str) -> tuple[int, dict]:
    opener = urllib.request.build_opener(NoRedirect)
    try:
        with opener.open(url, timeout=10) as resp:
            return resp.status, dict(resp.headers)
    except urllib.error.HTTPError as exc:
        return exc.code, dict(exc.headers)


# The test ----------------------------------------------------------------------------------------------------


def test_the_shipped_deployment_signs_in_over_https_and_checks_a_partner(
    deployment, shot, playwright_session
):
    stack, ports, origin = deployment["stack"], deployment["ports"], deployment["origin"]

    # Plain HTTP is redirected to HTTPS by Caddy, keeping the path.
    status, headers = plain_http(f"http://localhost:{ports['http']}/accounts/login/?next=/")
    assert status in (301, 308), status
    assert headers["Location"] == f"{origin}/accounts/login/?next=/"

    # Caddy passes its own X-Forwarded-Proto, never the client's (else this would loop to HTTPS); a request
    # that bypassed Caddy (no X-Forwarded-For) is refused; the container's health check still answers.
    tls = ssl.create_default_context(cafile=str(deployment["ca_file"]))
    spoofed = urllib.request.Request(f"{origin}/accounts/login/", headers={"X-Forwarded-Proto": "http"})
    with urllib.request.urlopen(spoofed, context=tls, timeout=10) as resp:
        assert resp.status == 200 and resp.url == f"{origin}/accounts/login/"
    status, _ = plain_http(f"http://127.0.0.1:{ports['web']}/accounts/login/")
    assert status == 400
    status, _ = plain_http(f"http://127.0.0.1:{ports['web']}/healthz")
    assert status == 200

    # README "Deployment", step 4: the first support user.
    out = stack.run("support_user", ["python", "manage.py", "support_user", "add", SUPPORT_EMAIL])
    assert "A link to choose a password has been e-mailed" in out
    link = set_password_link(deployment["mail"], SUPPORT_EMAIL)
    assert link.startswith(f"{origin}/accounts/reset/")

    # Support approves the partner's on-premise host (the sign-in form refuses loopback addresses, so the
    # operator's shell; the partner's connection still goes through the host rules).
    site = deployment["sandbox_site"]
    stack.run(
        "approve_host",
        ["python", "manage.py", "shell", "-c",
         f"from onboarding.models import ApprovedHost; ApprovedHost.objects.create(hostname={site!r}, "
         "note='smoke test: the sandbox as an on-premise ConnectWise')"],
    )  # fmt: skip

    spki = leaf_spki_sha256(ports["https"], deployment["ca_file"])
    # One Playwright driver per test session (conftest.playwright_session); this browser trusts Caddy's key.
    browser = playwright_session.chromium.launch(
        executable_path=CHROMIUM,
        args=[*CHROMIUM_ARGS, f"--ignore-certificate-errors-spki-list={spki}"],
        headless=True,
    )
    try:
        support = browser.new_context(viewport={"width": 1280, "height": 900})
        support.set_default_timeout(30_000)
        page = support.new_page()
        response = page.goto(link)
        assert response.status == 200 and page.url.startswith(origin)
        page.fill("input[name=new_password1]", SUPPORT_PASSWORD)
        page.fill("input[name=new_password2]", SUPPORT_PASSWORD)
        shot(page, "support-sets-password")
        page.get_by_role("button", name="Save the new password").click()
        page.wait_for_load_state()
        page.goto(f"{origin}/accounts/login/")
        page.fill("input[name=username]", SUPPORT_EMAIL)
        page.fill("input[name=password]", SUPPORT_PASSWORD)
        page.get_by_role("button", name="Sign in").click()
        page.wait_for_load_state()
        response = page.goto(f"{origin}/")
        assert page.url.startswith(f"{origin}/support/"), page.url
        shot(page, "support-dashboard-over-https")
        headers = response.headers
        assert headers["strict-transport-security"] == "max-age=31536000; includeSubDomains; preload"
        assert "default-src 'self'" in headers["content-security-policy"]
        assert "script-src 'self'" in headers["content-security-policy"]
        assert "server" not in headers or "caddy" not in headers["server"].lower()
        cookies = {c["name"]: c for c in support.cookies()}
        assert cookies["sessionid"]["secure"] and cookies["sessionid"]["httpOnly"]
        assert cookies["csrftoken"]["secure"]
        # Static files come through Caddy from WhiteNoise: hashed names, cached for a year, compressed.
        css = page.locator("link[rel=stylesheet]").first.get_attribute("href")
        assert re.search(r"\.[0-9a-f]{12}\.css$", css), css
        request = urllib.request.Request(f"{origin}{css}", headers={"Accept-Encoding": "gzip"})
        tls = ssl.create_default_context(cafile=str(deployment["ca_file"]))
        with urllib.request.urlopen(request, context=tls, timeout=10) as static:
            assert static.status == 200
            assert "max-age=315360000" in static.headers["Cache-Control"]
            assert static.headers["Content-Encoding"] == "gzip"

        # README "Deployment", step 5: the first tenant; a partner signs up and connects.
        partner = browser.new_context(viewport={"width": 1280, "height": 900})
        partner.set_default_timeout(30_000)
        page = partner.new_page()
        errors: list[str] = []
        page.on("pageerror", lambda e: errors.append(str(e)))
        page.goto(f"{origin}/accounts/signup/")
        page.fill("input[name=organisation]", "Smoke Partner MSP")
        page.fill("input[name=name]", "Pat Partner")
        page.fill("input[name=email]", PARTNER_EMAIL)
        page.fill("input[name=password1]", PARTNER_PASSWORD)
        page.fill("input[name=password2]", PARTNER_PASSWORD)
        page.get_by_role("button", name="Create account").click()
        page.wait_for_url("**/accounts/signup/sent/")
        page.goto(signup_confirm_link(deployment["mail"], PARTNER_EMAIL))
        page.get_by_role("button", name="Confirm and start").click()
        page.wait_for_url("**/steps/connection/")
        page.select_option("select[name=region]", "onprem")
        page.fill("input[name=onprem_host]", site)
        page.fill("input[name=company_id]", HEALTHY["company"]["id"])
        page.fill("input[name=public_key]", MEMBER["publicKey"])
        page.fill("input[name=private_key]", MEMBER["privateKey"])
        page.get_by_role("button", name="Save and check connection").click()
        page.wait_for_load_state()
        wait_for_run(page, 90_000)
        shot(page, "partner-onprem-connection-checked")
        result = page.locator("#result").inner_text()
        assert "Nothing to fix here" in result, result
        badge = page.locator("h1 + .status").first.get_attribute("class") or ""
        assert badge.endswith("status-pass"), badge
        assert MEMBER["privateKey"] not in page.content()
        assert not errors, errors  # no script blocked by the CSP, no JavaScript error

        # Support sees the partner's tenant on the dashboard, from the stored run.
        page = support.pages[0]
        page.goto(f"{origin}/support/")
        assert "Smoke Partner MSP" in page.locator("main").inner_text()
        shot(page, "support-sees-the-partner")
    finally:
        browser.close()

    # The worker really ran the check against the sandbox over HTTPS, through Caddy.
    assert "onboarding.run_checks" in stack.log("worker").read_text()
    with urllib.request.urlopen(f"http://127.0.0.1:{ports['sandbox']}/_sandbox/requests", timeout=10) as resp:
        served = resp.read().decode()
    assert "system/info" in served and "login/companyinfo/acme" in served, served
    for name in ("web", "worker", "beat", "caddy"):
        assert MEMBER["privateKey"] not in stack.log(name).read_text(), name
    assert "beat: Starting" in stack.log("beat").read_text()

    # The worker's health check means something: with the broker gone it fails.
    gone = {**stack.env, "REDIS_URL": f"redis://127.0.0.1:{ps.free_port()}/0"}
    import subprocess

    check = subprocess.run(
        ps.healthcheck_command("worker"), cwd=ps.ROOT, env=gone, capture_output=True, text=True, timeout=120
    )
    assert check.returncode != 0, check.stdout + check.stderr

    # Everything stops cleanly on SIGTERM (docker compose stop), in the reverse order of starting.
    codes = stack.stop_all()
    assert codes == {name: 0 for name in codes}, {
        n: (c, ps.tail(stack.log(n), 800)) for n, c in codes.items()
    }


if __name__ == "__main__":  # pragma: no cover
    sys.exit(pytest.main([__file__, "-v"]))
