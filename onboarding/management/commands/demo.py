"""`make demo`: migrate, seed, then run the web server, a Celery worker (with beat) and the sandbox ConnectWise
together until Ctrl-C, which stops all three."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

from django.conf import settings
from django.core.management import call_command
from django.core.management.base import BaseCommand, CommandError

SCENARIOS = Path(settings.BASE_DIR) / "connectwise" / "sandbox" / "scenarios"


class Command(BaseCommand):
    help = "Run the product with a realistic demo: web, worker, sandbox ConnectWise, seeded logins."

    def add_arguments(self, parser):
        parser.add_argument("--web-port", type=int, default=8000)
        parser.add_argument("--sandbox-port", type=int, default=8765)
        parser.add_argument("--host", default="127.0.0.1")

    def handle(self, *args, web_port, sandbox_port, host, **options):
        expected = f"http://127.0.0.1:{sandbox_port}"
        if settings.CONNECTWISE_SANDBOX_URL != expected:
            raise CommandError(f"Run with CONNECTWISE_SANDBOX_URL={expected} (make demo sets it).")
        call_command("migrate", interactive=False, verbosity=0)
        python = sys.executable
        env = {**os.environ, "PYTHONUNBUFFERED": "1"}
        var = settings.VAR_DIR
        procs: list[tuple[str, subprocess.Popen]] = []

        def start(name, cmd):
            self.stdout.write(f"starting {name}: {' '.join(cmd[:4])} …")
            procs.append((name, subprocess.Popen(cmd, env=env, start_new_session=True)))

        def on_term(signum, frame):
            raise KeyboardInterrupt

        signal.signal(signal.SIGTERM, on_term)  # `kill` stops the demo as cleanly as Ctrl-C
        signal.signal(signal.SIGINT, on_term)  # also when started in the background, where SIGINT is ignored
        try:
            start(
                "sandbox",
                [python, "manage.py", "cw_sandbox", "--port", str(sandbox_port)]
                + [
                    arg
                    for f in ("healthy.json", "broken.json", "bare.json")
                    for arg in ("--scenario", str(SCENARIOS / f))
                ],
            )
            _wait_for(f"{expected}/_sandbox/", 20)
            call_command("seed_demo")
            start(
                "worker",
                [
                    python,
                    "-m",
                    "celery",
                    "-A",
                    "onboarding",
                    "worker",
                    "-B",
                    "--loglevel",
                    "INFO",
                    "--concurrency",
                    "2",
                    "--schedule",
                    str(var / "celerybeat-schedule"),
                ],
            )
            start(
                "web",
                [
                    python,
                    "-m",
                    "gunicorn",
                    "onboarding.wsgi",
                    "--bind",
                    f"{host}:{web_port}",
                    "--workers",
                    "2",
                    "--threads",
                    "4",
                    "--access-logfile",
                    "-",
                ],
            )
            _wait_for(f"http://{host}:{web_port}/accounts/login/", 30)
            self.stdout.write(
                self.style.SUCCESS(
                    f"\nThe demo is running: open http://{host}:{web_port}/  (Ctrl-C stops it)\n"
                )
            )
            while True:
                for name, proc in procs:
                    if proc.poll() is not None:
                        raise CommandError(f"{name} stopped unexpectedly (exit {proc.returncode})")
                time.sleep(1)
        except KeyboardInterrupt:
            self.stdout.write("\nstopping…")
        finally:
            for _name, proc in procs:
                if proc.poll() is None:
                    os.killpg(proc.pid, signal.SIGTERM)
            deadline = time.monotonic() + 15
            for _name, proc in procs:
                try:
                    proc.wait(timeout=max(0.1, deadline - time.monotonic()))
                except subprocess.TimeoutExpired:
                    os.killpg(proc.pid, signal.SIGKILL)
            self.stdout.write("stopped web, worker and sandbox.")


def _wait_for(url: str, seconds: float) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(url, timeout=2):
                return
        except Exception:
            time.sleep(0.3)
    raise CommandError(f"{url} did not answer within {seconds:.0f} s")
