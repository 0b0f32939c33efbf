"""Make sure Debian's Chromium is there for the browser tests (Playwright's own browser download does not work
here). Installs it with apt-get when running as root; otherwise says how. Under CI a missing browser is an error.
"""

from __future__ import annotations

import os
import sys

from debian_package import ensure

CHROMIUM = os.environ.get("CHROMIUM_PATH", "/usr/bin/chromium")


def main() -> int:
    return ensure(
        "chromium",
        lambda: os.path.exists(CHROMIUM),
        missing=f"Chromium not found at {CHROMIUM}",
        purpose="the browser tests",
        skipped="Browser tests",
    )


if __name__ == "__main__":
    sys.exit(main())
