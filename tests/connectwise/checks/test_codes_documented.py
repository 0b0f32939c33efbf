"""The README's list of finding codes is the public contract's documentation: every code is in it."""

from __future__ import annotations

from pathlib import Path

from connectwise.checks import codes

README = Path(__file__).resolve().parents[3] / "README.md"


def test_the_readme_lists_every_finding_code():
    text = README.read_text()
    missing = sorted(code for code in codes.ALL_CODES if f"`{code}`" not in text)
    assert missing == []
