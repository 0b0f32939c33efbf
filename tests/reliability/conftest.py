"""Real parts for the reliability tests: the sandbox ConnectWise in its own process and a real Celery worker.

The worker launcher is the product's (``onboarding.bench.workers``: Worker, worker_env, stop, also behind
``benchmark fleet``), the sandbox helpers come from tests/e2e/conftest.py; the worker here consumes
its own queue (``reliability``) and talks to its own sandbox: the browser tests' session worker may still be
alive in the same pytest session (session fixtures end with the session), and two workers on one queue, each
allowed a different sandbox host, would take each other's tasks. Tests enqueue with ``enqueue(task, *args)``.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
import urllib.request

import pytest

from onboarding.bench.workers import Worker, stop, worker_env
from tests.e2e.conftest import ROOT, SCENARIOS, free_port, wait_for

QUEUE = "reliability"


def enqueue(task, *args) -> None:
    """Send a task to the reliability worker, exactly as .delay() sends it to the default queue."""
    task.apply_async(args, queue=QUEUE)


def sandbox_call(base: str, path: str, body: dict | None = None, method: str = "POST"):
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(f"{base}{path}", data=data, method=method)
    request.add_header("Content-Type", "application/json")
    with urllib.request.urlopen(request, timeout=10) as response:
        raw = response.read()
    return json.loads(raw) if raw else None


def wait_until(predicate, seconds: float = 60, every: float = 0.2, what: str = "condition"):
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(every)
    raise AssertionError(f"timed out after {seconds} s waiting for {what}")


@pytest.fixture(scope="module")
def rel_sandbox(tmp_path_factory):
    port = free_port()
    log = open(tmp_path_factory.mktemp("logs") / "sandbox.log", "w")  # noqa: SIM115
    cmd = [sys.executable, "manage.py", "cw_sandbox", "--port", str(port)]
    for name in ("healthy.json", "bare.json"):
        cmd += ["--scenario", str(SCENARIOS / name)]
    proc = subprocess.Popen(cmd, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    url = f"http://127.0.0.1:{port}"
    try:
        wait_for(f"{url}/_sandbox/", 30, proc)
        yield url
    finally:
        stop(proc)
        log.close()


@pytest.fixture(scope="module")
def rel_worker(django_db_setup, django_db_blocker, rel_sandbox, tmp_path_factory):
    from onboarding.celery import app

    with django_db_blocker.unblock():
        env = worker_env(rel_sandbox)
    with app.connection_for_write() as conn:  # leftovers of an earlier run must not reach this database
        from kombu import Queue

        Queue(QUEUE).bind(conn.default_channel).purge()
    worker = Worker(env, tmp_path_factory.mktemp("logs") / "worker.log", queue=QUEUE)
    worker.start()
    yield worker
    worker.stop()


@pytest.fixture
def rel_stack(transactional_db, rel_worker, rel_sandbox, settings):
    """Worker and sandbox, this process's settings pointing at the sandbox too, the sandbox back to its
    scenarios with an empty request log."""
    settings.CONNECTWISE_SANDBOX_URL = rel_sandbox
    sandbox_call(rel_sandbox, "/_sandbox/reset")
    sandbox_call(rel_sandbox, "/_sandbox/requests", method="DELETE")
    yield {"sandbox": rel_sandbox, "worker": rel_worker}
    if rel_worker.proc is None or rel_worker.proc.poll() is not None:  # a test killed it: leave one running
        rel_worker.start()
    sandbox_call(rel_sandbox, "/_sandbox/reset")
