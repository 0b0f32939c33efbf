"""`make demo`'s command on embedded defaults (no Redis, no PostgreSQL): it starts web, worker and sandbox, seeds
logins that work, the worker checks the seeded tenants, and a SIGTERM stops all three."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import urllib.request

from tests.e2e.conftest import ROOT, free_port, login, wait_for


def test_demo_starts_on_embedded_defaults_and_stops_cleanly(tmp_path, browser, shot):
    web, sandbox = free_port(), free_port()
    env = {
        k: v
        for k, v in os.environ.items()
        if k not in {"DATABASE_URL", "REDIS_URL", "DJANGO_ALLOW_ASYNC_UNSAFE"}
    }
    env.update(
        {
            "ONBOARDING_VAR_DIR": str(tmp_path / "var"),
            "CONNECTWISE_SANDBOX_URL": f"http://127.0.0.1:{sandbox}",
            "PYTHONUNBUFFERED": "1",
        }
    )
    log = open(tmp_path / "demo.log", "w")  # noqa: SIM115
    proc = subprocess.Popen(
        [sys.executable, "manage.py", "demo", "--web-port", str(web), "--sandbox-port", str(sandbox)],
        cwd=ROOT,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    try:
        wait_for(f"http://127.0.0.1:{web}/accounts/login/", 90, proc)
        out = (tmp_path / "demo.log").read_text()
        assert "Demo logins (password for all: demo-password-2026)" in out
        assert "admin@acme.example" in out and "support@distributor.example" in out
        assert (tmp_path / "var" / "onboarding.sqlite3").exists()  # SQLite under var/, no PostgreSQL
        assert list((tmp_path / "var" / "celery-queue").glob("*")) is not None  # the filesystem broker

        page = browser.new_page()
        base = f"http://127.0.0.1:{web}"
        login(page, base, "support@distributor.example", "demo-password-2026")
        # The worker checks the seeded tenants: wait until Acme MSP shows as ready on the dashboard.
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            page.goto(f"{base}/support/")
            if page.locator("tr", has_text="Acme MSP").locator(".status-pass").count() >= 6:
                break
            time.sleep(1)
        shot(page, "demo-dashboard")
        row = page.locator("tr", has_text="Acme MSP")
        assert row.get_by_text("Ready").count() == 1
        assert page.locator("tr", has_text="Broken MSP").locator(".status-fail").count() >= 1
        page.close()
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=30)
        finally:
            log.close()
    out = (tmp_path / "demo.log").read_text()
    assert "stopped web, worker and sandbox." in out
    for port in (web, sandbox):
        try:
            urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=2)
            raise AssertionError(f"port {port} still answers after the demo stopped")
        except OSError:
            pass
