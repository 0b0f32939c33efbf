"""Make sure Debian's caddy is there for the production smoke test (tests/e2e/test_smoke_production.py): the
same proxy and Caddyfile the compose file ships. Installs it with apt-get when running as root; otherwise says
how. Under CI a missing caddy is an error.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys


def main() -> int:
    if shutil.which("caddy"):
        return 0
    if os.geteuid() == 0 and shutil.which("apt-get"):
        print("Installing Debian's caddy for the production smoke test…", flush=True)
        env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
        subprocess.run(["apt-get", "update", "-qq"], check=False, env=env)
        result = subprocess.run(["apt-get", "install", "-y", "-qq", "caddy"], env=env)
        if result.returncode == 0 and shutil.which("caddy"):
            return 0
    message = "caddy not found: install it with `sudo apt-get install -y caddy`."
    if os.environ.get("CI") == "true":
        print(f"ERROR: {message} The production smoke test must run under CI.", file=sys.stderr)
        return 1
    print(f"WARNING: {message} The production smoke test will be skipped.", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
