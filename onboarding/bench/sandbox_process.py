"""The ConnectWise sandbox served by ``manage.py cw_sandbox`` in a child process, as ConnectWise is a remote
service: its filtering and page encoding then do not share the benchmark's GIL (``benchmark verify``'s default
``--sandbox process``)."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request

from django.conf import settings

from .measure import process_cpu_seconds


class SandboxProcess:
    """The sandbox served by ``manage.py cw_sandbox`` in its own process, controlled over its HTTP endpoints
    (the same calls as SandboxApp's methods that the benchmark uses)."""

    def __init__(
        self, scenario: dict | None = None, *, generate: list[str] | None = None, prerender: bool = False
    ):
        """``scenario``: a scenario to serve; or ``generate``: arguments of ``connectwise.sandbox.generate``, run
        in a child process so that this process never holds the generated records. ``prerender``: the sandbox
        serves each GET answer as first rendered (``cw_sandbox --prerender``)."""
        self._file = tempfile.NamedTemporaryFile("w", suffix=".json", delete=False)  # noqa: SIM115
        if scenario is not None:
            json.dump(scenario, self._file)
        self._file.close()
        if generate is not None:
            subprocess.run(
                [sys.executable, "-m", "connectwise.sandbox.generate", *generate, "-o", self._file.name],
                check=True,
                cwd=settings.BASE_DIR,
            )
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        self.url = f"http://127.0.0.1:{port}"
        manage = os.path.join(settings.BASE_DIR, "manage.py")
        self.proc = subprocess.Popen(
            [sys.executable, manage, "cw_sandbox", "--port", str(port), "--scenario", self._file.name]
            + (["--prerender"] if prerender else []),
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 60
        while True:
            try:
                self._call("GET", "/_sandbox/")
                break
            except OSError:
                if self.proc.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError("the sandbox process did not start") from None
                time.sleep(0.2)

    def _call(self, method: str, path: str, body: dict | None = None):
        data = json.dumps(body).encode() if body is not None else None
        request = urllib.request.Request(self.url + path, data=data, method=method)
        request.add_header("Content-Type", "application/json")
        with urllib.request.urlopen(request, timeout=30) as response:
            text = response.read()
        return json.loads(text) if text else None

    def set_faults(self, faults: dict, company: str | None = None) -> None:
        self._call("POST", "/_sandbox/faults", {**faults, **({"company": company} if company else {})})

    def clear_requests(self, company: str | None = None) -> None:
        self._call("DELETE", "/_sandbox/requests")

    def request_counts(self, company: str | None = None) -> dict:
        data = self._call("GET", "/_sandbox/requests")
        counts = data.get("requests", data) if isinstance(data, dict) else {}
        return {k: v for k, v in counts.items() if company is None or k.casefold() == company.casefold()}

    def record_counts(self, company: str) -> dict[str, int]:
        for c in self._call("GET", "/_sandbox/")["companies"]:
            if c["id"].casefold() == company.casefold():
                return c["records"]
        raise KeyError(company)

    def cpu_seconds(self) -> float:
        """CPU time (user + system) the sandbox process has used so far, from /proc (Linux)."""
        return process_cpu_seconds(self.proc.pid)

    def close(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
        os.unlink(self._file.name)
