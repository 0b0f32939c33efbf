"""End-to-end fixtures: the real parts.

- the sandbox ConnectWise served on a free port by `manage.py cw_sandbox` (its own process),
- a real Celery worker process on the configured broker (Redis under CI, the filesystem transport otherwise),
  using the same test database as the test process,
- Django's live server (pytest-django) for the web, and Debian's Chromium driven by Playwright.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

# The one worker launcher (also `benchmark fleet`'s); re-exported for the tests that import it from here.
from onboarding.bench.workers import Worker, stop, worker_env

__all__ = ["Worker", "stop", "worker_env"]

ROOT = Path(__file__).resolve().parents[2]
SCENARIOS = ROOT / "connectwise" / "sandbox" / "scenarios"
SCREENSHOTS = ROOT / "tests" / "e2e" / "screenshots"
CHROMIUM = os.environ.get("CHROMIUM_PATH", "/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-quic",
]

# Playwright's sync API runs an event loop in this thread; the ORM calls made by tests are still synchronous.
os.environ.setdefault("DJANGO_ALLOW_ASYNC_UNSAFE", "true")


def pytest_collection_modifyitems(config, items):
    here = Path(__file__).parent
    for item in items:
        if Path(str(item.fspath)).is_relative_to(here):
            item.add_marker(pytest.mark.e2e)
            item.add_marker(pytest.mark.slow)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for(url: str, seconds: float = 30, proc: subprocess.Popen | None = None) -> None:
    deadline = time.monotonic() + seconds
    last = None
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"process for {url} exited with {proc.returncode}")
        try:
            with urllib.request.urlopen(url, timeout=2):
                return
        except Exception as exc:  # noqa: BLE001
            last = exc
            time.sleep(0.2)
    raise RuntimeError(f"{url} did not answer in {seconds} s: {last}")


@pytest.fixture(scope="session")
def sandbox_url(tmp_path_factory):
    port = free_port()
    log = open(tmp_path_factory.mktemp("logs") / "sandbox.log", "w")  # noqa: SIM115
    cmd = [sys.executable, "manage.py", "cw_sandbox", "--port", str(port)]
    for name in ("healthy.json", "broken.json", "bare.json", "billing.json"):
        cmd += ["--scenario", str(SCENARIOS / name)]
    proc = subprocess.Popen(cmd, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    url = f"http://127.0.0.1:{port}"
    try:
        wait_for(f"{url}/_sandbox/", 30, proc)
        yield url
    finally:
        stop(proc)
        log.close()


@pytest.fixture(scope="session")
def celery_worker_proc(django_db_setup, django_db_blocker, sandbox_url, tmp_path_factory):
    from onboarding.celery import app

    with django_db_blocker.unblock():
        env = worker_env(sandbox_url)
    app.control.purge()  # leftovers of an earlier run must not reach this database
    worker = Worker(env, tmp_path_factory.mktemp("logs") / "worker.log")
    worker.start()
    yield worker
    worker.stop()


@pytest.fixture
def live_stack(transactional_db, live_server, celery_worker_proc, sandbox_url, settings):
    """Web (live server), worker and sandbox, with this process's settings pointing at the sandbox too."""
    settings.CONNECTWISE_SANDBOX_URL = sandbox_url
    urllib.request.urlopen(urllib.request.Request(f"{sandbox_url}/_sandbox/reset", method="POST"), timeout=5)
    return {"web": live_server.url, "sandbox": sandbox_url, "worker": celery_worker_proc}


@pytest.fixture(scope="session")
def playwright_session():
    """The one Playwright driver of the test session: its sync API cannot be started twice in one process, so a
    test that needs a browser with its own launch flags launches it from here."""
    if not os.path.exists(CHROMIUM):
        if os.environ.get("CI") == "true":
            pytest.fail(f"Chromium is required under CI ({CHROMIUM} is missing)")
        pytest.skip(f"Chromium not installed at {CHROMIUM}")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        yield pw


@pytest.fixture(scope="session")
def browser(playwright_session):
    b = playwright_session.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
    yield b
    b.close()


@pytest.fixture
def page(browser, request):
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    context.set_default_timeout(20_000)
    pg = context.new_page()
    errors: list[str] = []
    pg.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    pg.on("pageerror", lambda e: errors.append(str(e)))
    pg.console_errors = errors
    yield pg
    context.close()


@pytest.fixture
def shot(request):
    """shot(page, "name") saves a full-page screenshot under tests/e2e/screenshots/<test>/."""
    folder = SCREENSHOTS / request.node.name
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True, exist_ok=True)
    counter = {"n": 0}

    def take(pg, name: str) -> Path:
        counter["n"] += 1
        path = folder / f"{counter['n']:02d}-{name}.png"
        pg.screenshot(path=str(path), full_page=True)
        return path

    return take


def login(page, base_url: str, email: str, password: str) -> None:
    page.goto(f"{base_url}/accounts/login/")
    page.fill("input[name=username]", email)
    page.fill("input[name=password]", password)
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_load_state()
