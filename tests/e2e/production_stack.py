"""The shipped deployment (docker-compose.yml, Caddyfile, deploy.env.example), started on this machine without
Docker: the production smoke test runs it, and tests/onboarding/test_compose.py checks that it cannot drift.

Every process runs the compose service's own ``command`` (and its health checks run the compose ``healthcheck``),
with only the changes listed in ``LOCALIZED``: a container has its own network and file system, this machine has
neither. The environment is a ``deploy.env`` written from ``deploy.env.example`` line by line (a value for every
variable the example lists, or the test fails), read back the way compose reads an ``env_file`` (python-dotenv),
plus the variables in ``SMOKE_ONLY``, each there because this is not a compose network.
"""

from __future__ import annotations

import io
import os
import re
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import yaml
from dotenv import dotenv_values

ROOT = Path(__file__).resolve().parents[2]
COMPOSE_FILE = ROOT / "docker-compose.yml"
CADDYFILE = ROOT / "Caddyfile"
ENV_EXAMPLE = ROOT / "deploy.env.example"
# The proxy's own env_file (DOMAIN, CADDY_TLS): Caddy never reads deploy.env.
CADDY_ENV_EXAMPLE = ROOT / "caddy.env.example"
VENV_BIN = Path(sys.executable).parent

# Started in this order, like `docker compose up` does through depends_on (migrate runs to completion first).
APP_SERVICES = ("migrate", "web", "worker", "beat")
ALL_SERVICES = (*APP_SERVICES, "caddy")

# The only arguments of a compose command the smoke test replaces, per service: (compose value, why).
LOCALIZED = {
    "web": {"0.0.0.0:8000": "gunicorn binds a free loopback port: there is no compose network to hide it in"},
    "beat": {"/app/var/celerybeat-schedule": "the image's /app/var is a temporary directory here"},
    "caddy": {
        "/etc/caddy/Caddyfile": "a file that imports the shipped Caddyfile and adds the sandbox's site"
    },
}
# The web health check's URL names the port gunicorn binds in the container.
HEALTHCHECK_LOCALIZED = {"web": {"127.0.0.1:8000": "gunicorn's free port"}}

# Variables the smoke test adds to deploy.env, and why (a deployment sets none of them).
SMOKE_ONLY = {
    "CADDY_HTTP_PORT": "ports 80 and 443 are not free here (the Caddyfile's defaults are the compose ports)",
    "CADDY_HTTPS_PORT": "see CADDY_HTTP_PORT",
    "CADDY_ADMIN": "Caddy's admin API on a free port instead of localhost:2019",
    "CADDY_UPSTREAM": "gunicorn's loopback port instead of the compose name web:8000",
    "ONBOARDING_VAR_DIR": "the image's /app/var",
    "XDG_DATA_HOME": "the caddy_data volume (Caddy's certificates and internal CA)",
    "XDG_CONFIG_HOME": "the caddy_config volume",
    "CONNECTWISE_ONPREM_NETWORKS": "the partner's on-premise ConnectWise (the sandbox) is on loopback here",
    "CONNECTWISE_CA_FILE": "the sandbox's certificate comes from Caddy's internal CA",
}

# Of those, the ones that go to Caddy's caddy.env (Caddy's ports, admin, upstream and volumes); the rest to deploy.env.
CADDY_SMOKE_ONLY = frozenset(
    {
        "CADDY_HTTP_PORT",
        "CADDY_HTTPS_PORT",
        "CADDY_ADMIN",
        "CADDY_UPSTREAM",
        "XDG_DATA_HOME",
        "XDG_CONFIG_HOME",
    }
)


def compose() -> dict:
    return yaml.safe_load(COMPOSE_FILE.read_text())


def example_variables(example: Path = ENV_EXAMPLE) -> list[str]:
    """The variable names deploy.env.example (or ``example``, e.g. CADDY_ENV_EXAMPLE) lists, in order."""
    return list(dotenv_values(stream=io.StringIO(example.read_text())))


def write_env_file(
    path: Path, values: dict[str, str], extra: dict[str, str], example: Path = ENV_EXAMPLE
) -> dict[str, str]:
    """deploy.env from deploy.env.example (or caddy.env from ``example``): every variable the example lists gets
    its value from ``values`` (a KeyError names one the smoke test does not set; values it does not list are left
    out), comments stay; ``extra`` (keys of SMOKE_ONLY only) follows. Returns the file as compose reads it."""
    unknown = set(extra) - set(SMOKE_ONLY)
    assert not unknown, f"not declared in SMOKE_ONLY: {unknown}"
    lines = []
    for line in example.read_text().splitlines():
        match = re.match(r"^([A-Z][A-Z0-9_]*)=", line)
        if match:
            name = match.group(1)
            if name not in values:
                raise KeyError(f"{example.name} lists {name}, which the smoke test does not set")
            line = f"{name}={values[name]}"
        lines.append(line)
    lines.append(
        "# Only for the smoke test on a machine without Docker (tests/e2e/production_stack.py SMOKE_ONLY)"
    )
    lines += [f"{name}={value}" for name, value in extra.items()]
    path.write_text("\n".join(lines) + "\n")
    path.chmod(0o600)
    return {k: v or "" for k, v in dotenv_values(path).items()}


def localize(argv: list[str], replacements: dict[str, object]) -> list[str]:
    return [str(replacements.get(arg, arg)) for arg in argv]


def service_command(service: str, **values: object) -> list[str]:
    """The compose service's command with the LOCALIZED arguments replaced by ``values`` (keyed like LOCALIZED's
    compose values); every replacement must be given."""
    argv = compose()["services"][service]["command"]
    wanted = LOCALIZED.get(service, {})
    assert set(values) == set(wanted), f"{service}: replace exactly {sorted(wanted)}"
    return localize(argv, values)


def healthcheck_command(service: str, **values: object) -> list[str]:
    """The compose health check as argv: ``CMD`` arguments, or ``CMD-SHELL`` through /bin/sh like Docker."""
    test = compose()["services"][service]["healthcheck"]["test"]
    kind, rest = test[0], test[1:]
    if kind == "CMD-SHELL":
        # Compose writes $$ for a literal $ (the shell then expands $HOSTNAME)
        return ["/bin/sh", "-c", rest[0].replace("$$", "$")]
    assert kind == "CMD", test
    out = []
    for arg in rest:
        for old, new in values.items():
            arg = arg.replace(old, str(new))
        out.append(arg)
    return out


def base_env(home: Path) -> dict[str, str]:
    """What a container has besides its env_file: a PATH that finds python, gunicorn, celery and caddy (the
    virtualenv plays the image's site-packages), HOME, HOSTNAME (the worker's node name), a UTF-8 locale."""
    return {
        "PATH": f"{VENV_BIN}:/usr/local/bin:/usr/bin:/bin",
        "HOME": str(home),
        "HOSTNAME": socket.gethostname(),
        "LANG": "C.UTF-8",
        "PYTHONUNBUFFERED": "1",
        "PYTHONDONTWRITEBYTECODE": "1",
    }


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for_port(port: int, proc: subprocess.Popen, log: Path, seconds: float = 60) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise AssertionError(f"exited with {proc.returncode} before listening on {port}:\n{tail(log)}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1):
                return
        except OSError:
            time.sleep(0.2)
    raise AssertionError(f"nothing listens on {port} after {seconds} s:\n{tail(log)}")


def tail(path: Path, chars: int = 3000) -> str:
    try:
        return path.read_text(errors="replace")[-chars:]
    except OSError:
        return "(no log)"


@dataclass
class Stack:
    """Processes started like compose services: each in its own process group, output to logs/<name>.log."""

    env: dict[str, str]
    logs: Path
    procs: dict[str, subprocess.Popen] = field(default_factory=dict)

    def log(self, name: str) -> Path:
        return self.logs / f"{name}.log"

    def start(self, name: str, argv: list[str], env: dict[str, str] | None = None) -> subprocess.Popen:
        out = open(self.log(name), "ab")  # noqa: SIM115 (kept open for the life of the process)
        proc = subprocess.Popen(
            argv, cwd=ROOT, env=env or self.env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True
        )
        out.close()
        self.procs[name] = proc
        return proc

    def run(self, name: str, argv: list[str], timeout: float = 300, env: dict | None = None) -> str:
        """A one-off like `docker compose run`: must exit 0; returns its output."""
        result = subprocess.run(
            argv, cwd=ROOT, env=env or self.env, capture_output=True, text=True, timeout=timeout
        )
        self.log(name).write_text(result.stdout + result.stderr)
        assert result.returncode == 0, f"{' '.join(argv)} exited {result.returncode}:\n{tail(self.log(name))}"
        return result.stdout

    def wait_healthy(self, name: str, check: list[str], seconds: float = 90) -> None:
        """Run the compose health check until it passes (like `condition: service_healthy`)."""
        deadline = time.monotonic() + seconds
        last = ""
        while time.monotonic() < deadline:
            proc = self.procs[name]
            if proc.poll() is not None:
                raise AssertionError(f"{name} exited with {proc.returncode}:\n{tail(self.log(name))}")
            result = subprocess.run(check, cwd=ROOT, env=self.env, capture_output=True, text=True, timeout=60)
            if result.returncode == 0:
                return
            last = result.stdout + result.stderr
            time.sleep(1)
        raise AssertionError(f"{name} not healthy after {seconds} s: {last[-1500:]}\n{tail(self.log(name))}")

    def stop(self, name: str, timeout: float = 30) -> int | None:
        """SIGTERM the process group (what `docker compose stop` sends), SIGKILL after ``timeout``; returns the
        exit code, or None when it had to be killed."""
        proc = self.procs.get(name)
        if proc is None:
            return 0
        if proc.poll() is None:
            try:
                os.killpg(proc.pid, signal.SIGTERM)
            except ProcessLookupError:
                pass
            try:
                proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait(timeout=10)
                return None
        return proc.returncode

    def stop_all(self) -> dict[str, int | None]:
        return {name: self.stop(name) for name in reversed(list(self.procs))}
