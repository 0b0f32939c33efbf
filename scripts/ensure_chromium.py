"""Make sure Debian's Chromium is there for the browser tests (Playwright's own browser download does not work
here). Installs it with apt-get when running as root; otherwise says how. Under CI a missing browser is an error.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys

CHROMIUM = os.environ.get("CHROMIUM_PATH", "/usr/bin/chromium")


def main() -> int:
    if os.path.exists(CHROMIUM):
        return 0
    if os.geteuid() == 0 and shutil.which("apt-get"):
        print("Installing Debian's chromium for the browser tests…", flush=True)
        env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
        subprocess.run(["apt-get", "update", "-qq"], check=False, env=env)
        result = subprocess.run(["apt-get", "install", "-y", "-qq", "chromium"], env=env)
        if result.returncode == 0 and os.path.exists(CHROMIUM):
            return 0
    message = f"Chromium not found at {CHROMIUM}: install it with `sudo apt-get install -y chromium`."
    if os.environ.get("CI") == "true":
        print(f"ERROR: {message} Browser tests must run under CI.", file=sys.stderr)
        return 1
    print(f"WARNING: {message} Browser tests will be skipped.", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
