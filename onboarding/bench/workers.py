"""Real Celery worker processes of this product, started from Python: the one launcher behind ``benchmark fleet``
and the tests that need a real worker (tests/e2e, tests/reliability, tests/api import it; never the reverse).

A worker is ``python -m celery -A onboarding worker`` in its own process group (so that stopping or killing it takes
its prefork children too), on the database this process uses and the encryption keys of its ``VAR_DIR``.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from django.conf import settings
from django.db import connection


def worker_env(sandbox_url: str, **overrides: str) -> dict[str, str]:
    """The environment of a worker that uses this process's database (``DATABASE_URL`` rebuilt from the live
    connection: under pytest, the test database) and ``VAR_DIR`` (the same encryption keys), with
    ``CONNECTWISE_SANDBOX_URL`` = ``sandbox_url``; ``overrides`` (e.g. ``REDIS_URL``, ``CONNECTWISE_MAX_PER_HOST``)
    are set last."""
    db = connection.settings_dict
    env = {**os.environ, "CONNECTWISE_SANDBOX_URL": sandbox_url, "PYTHONUNBUFFERED": "1"}
    if db["ENGINE"].endswith("sqlite3"):
        env["DATABASE_URL"] = f"sqlite:///{db['NAME']}"
    else:
        user = db.get("USER") or ""
        password = f":{db['PASSWORD']}" if db.get("PASSWORD") else ""
        auth = f"{user}{password}@" if user else ""
        env["DATABASE_URL"] = (
            f"postgres://{auth}{db.get('HOST') or '127.0.0.1'}:{db.get('PORT') or 5432}/{db['NAME']}"
        )
    env["ONBOARDING_VAR_DIR"] = str(settings.VAR_DIR)
    env.update(overrides)
    return env


def stop(proc: subprocess.Popen, timeout: float = 20) -> None:
    """SIGTERM to the process group (a warm shutdown for a worker), SIGKILL after ``timeout`` seconds."""
    if proc.poll() is None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=10)


class Worker:
    """One real Celery worker process. ``queue``: consume only this queue, else the default one; ``concurrency``:
    prefork children; ``name``: its node name (``-n``). ``start()`` launches it and waits for its "ready." line;
    ``launch()`` + ``wait_ready()`` do the same in two steps (start several, then wait for all); ``kill()`` sends
    SIGKILL (crash tests), ``stop()`` a warm shutdown. The log is appended to across restarts."""

    def __init__(
        self,
        env: dict,
        log_path: Path,
        queue: str | None = None,
        *,
        concurrency: int = 2,
        name: str | None = None,
    ):
        self.env, self.log_path, self.queue = env, Path(log_path), queue
        self.concurrency, self.name = concurrency, name
        self.proc: subprocess.Popen | None = None
        self.starts = 0

    def command(self) -> list[str]:
        cmd = [sys.executable, "-m", "celery", "-A", "onboarding", "worker", "--loglevel", "INFO"]
        cmd += ["--concurrency", str(self.concurrency), "--pool", "prefork"]
        # No gossip, mingle or heartbeat: nothing here watches the cluster, and they only add broker traffic.
        cmd += ["--without-gossip", "--without-mingle", "--without-heartbeat"]
        if self.queue:
            cmd += ["-Q", self.queue]
        if self.name:
            cmd += ["-n", self.name]
        return cmd

    def launch(self) -> None:
        with open(self.log_path, "a") as log:
            self.proc = subprocess.Popen(
                self.command(),
                cwd=settings.BASE_DIR,
                env=self.env,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )

    def ready(self) -> bool:
        """True once this start's "ready." line is in the log; RuntimeError when the process has exited."""
        if self.proc is None or self.proc.poll() is not None:
            raise RuntimeError(f"worker exited: {self.log()[-2000:]}")
        if self.log().count("ready.") > self.starts:
            self.starts += 1
            return True
        return False

    def wait_ready(self, seconds: float = 60) -> None:
        deadline = time.monotonic() + seconds
        while not self.ready():
            if time.monotonic() > deadline:
                raise RuntimeError(f"worker did not get ready: {self.log()[-2000:]}")
            time.sleep(0.3)

    def start(self, seconds: float = 60) -> None:
        self.launch()
        self.wait_ready(seconds)

    def kill(self) -> None:
        if self.proc and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(timeout=10)

    def stop(self) -> None:
        if self.proc:
            stop(self.proc)

    def log(self) -> str:
        return self.log_path.read_text() if self.log_path.exists() else ""
