"""The one helper behind scripts/ensure_chromium.py and scripts/ensure_caddy.py: make sure a Debian package the
tests need is there. Installs it with apt-get when running as root; otherwise says how. Under CI (``CI=true``) a
missing package is an error, elsewhere a warning (the tests that need it skip).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Callable


def ensure(package: str, present: Callable[[], bool], *, missing: str, purpose: str, skipped: str) -> int:
    """Return the exit status: 0 when ``present()`` (after installing ``package`` as root if need be), else 1
    under CI and 0 with a warning elsewhere. ``missing``: what is said when it is not there ("caddy not found",
    "Chromium not found at /usr/bin/chromium"); ``purpose``: what it is installed for; ``skipped``: what runs without it."""
    if present():
        return 0
    if os.geteuid() == 0 and shutil.which("apt-get"):
        print(f"Installing Debian's {package} for {purpose}…", flush=True)
        env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
        subprocess.run(["apt-get", "update", "-qq"], check=False, env=env)
        result = subprocess.run(["apt-get", "install", "-y", "-qq", package], env=env)
        if result.returncode == 0 and present():
            return 0
    message = f"{missing}: install it with `sudo apt-get install -y {package}`."
    if os.environ.get("CI") == "true":
        print(f"ERROR: {message} {skipped} must run under CI.", file=sys.stderr)
        return 1
    print(f"WARNING: {message} {skipped} will be skipped.", file=sys.stderr)
    return 0
