"""Make sure Debian's caddy is there for the production smoke test (tests/e2e/test_smoke_production.py): the
same proxy and Caddyfile the compose file ships. Installs it with apt-get when running as root; otherwise says
how. Under CI a missing caddy is an error.
"""

from __future__ import annotations

import shutil
import sys

from debian_package import ensure


def main() -> int:
    return ensure(
        "caddy",
        lambda: bool(shutil.which("caddy")),
        missing="caddy not found",
        purpose="the production smoke test",
        skipped="The production smoke test",
    )


if __name__ == "__main__":
    sys.exit(main())
