"""Reading one setting from the environment, strictly: every parser here returns the value or raises
``ImproperlyConfigured`` naming the variable and what it must look like. Used by ``onboarding/settings.py`` (which
says what each setting means); this module knows nothing of the product and imports none of it.

An unset variable and an empty one both mean "use the default" unless said otherwise.
"""

from __future__ import annotations

import ipaddress
import os
import re
from collections.abc import Callable
from pathlib import Path

from cryptography.fernet import Fernet
from django.core.exceptions import ImproperlyConfigured


def strict_bool(name: str, default: bool) -> bool:
    """``1/true/yes/on`` or ``0/false/no/off`` (any case); ``default`` when unset or empty."""
    raw = os.environ.get(name)
    if raw is None or raw == "":
        return default
    lowered = raw.strip().lower()
    if lowered in {"1", "true", "yes", "on"}:
        return True
    if lowered in {"0", "false", "no", "off"}:
        return False
    raise ImproperlyConfigured(f"{name} must be true or false, not {raw!r}")


def strict_int(name: str, default: int, minimum: int = 0) -> int:
    """A whole number of at least ``minimum``; ``default`` when unset or empty."""
    raw = os.environ.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = int(raw)
    except ValueError:
        raise ImproperlyConfigured(f"{name} must be a whole number, not {raw!r}") from None
    if value < minimum:
        raise ImproperlyConfigured(f"{name} must be at least {minimum}, not {value}")
    return value


def strict_rate(name: str, default: str) -> str:
    """A rate limit such as ``5/h`` (count / period with s, m, h or d; ``5/15m`` too), as django-ratelimit reads
    it."""
    raw = (os.environ.get(name) or default).strip()
    if not re.fullmatch(r"[1-9][0-9]*/[1-9]?[0-9]*[smhd]", raw):
        raise ImproperlyConfigured(f"{name} must be a rate like 5/h or 20/d, not {raw!r}")
    return raw


def secret(name: str) -> str | None:
    """A secret from ``NAME`` or from the file named by ``NAME_FILE`` (stripped); None when neither is set."""
    value = os.environ.get(name)
    path = os.environ.get(f"{name}_FILE")
    if value and path:
        raise ImproperlyConfigured(f"Set {name} or {name}_FILE, not both")
    if path:
        try:
            return Path(path).read_text().strip()
        except OSError as exc:
            raise ImproperlyConfigured(f"{name}_FILE: cannot read {path}: {exc.strerror}") from None
    return value or None


def generated(var_dir: Path, filename: str, make: Callable[[], str]) -> str:
    """A development-only secret kept in ``var_dir/filename`` (mode 600, made by ``make()`` the first time) so that
    restarts keep sessions and encrypted keys readable."""
    var_dir.mkdir(parents=True, exist_ok=True)
    path = var_dir / filename
    if not path.exists():
        path.write_text(make())
        path.chmod(0o600)
    return path.read_text().strip()


def csv_list(raw: str) -> list[str]:
    """The non-empty, stripped items of a comma-separated value."""
    return [item.strip() for item in raw.split(",") if item.strip()]


def fernet_keys(name: str, raw: str) -> list[str]:
    """The comma-separated Fernet keys of ``raw`` (the value of ``name``), each checked."""
    keys = csv_list(raw)
    for i, key in enumerate(keys):
        try:
            Fernet(key)
        except (ValueError, TypeError):
            raise ImproperlyConfigured(
                f"{name}: key #{i + 1} is not a Fernet key (32 url-safe base64-encoded bytes)"
            ) from None
    return keys


def networks(name: str) -> list[ipaddress.IPv4Network | ipaddress.IPv6Network]:
    """Comma-separated networks (CIDRs, host bits allowed) of ``name``; empty when unset."""
    found = []
    for net in csv_list(os.environ.get(name, "")):
        try:
            found.append(ipaddress.ip_network(net, strict=False))
        except ValueError:
            raise ImproperlyConfigured(f"{name}: {net!r} is not a network such as 10.20.0.0/16") from None
    return found


def pem_file(name: str) -> str | None:
    """The path in ``name`` of a readable file that holds a PEM certificate, or None when unset."""
    path = os.environ.get(name, "") or None
    if path:
        try:
            pem = Path(path).read_text()
        except (OSError, UnicodeError) as exc:
            raise ImproperlyConfigured(
                f"{name}: cannot read {path}: {getattr(exc, 'strerror', None) or exc}"
            ) from None
        if "-----BEGIN CERTIFICATE-----" not in pem:
            raise ImproperlyConfigured(f"{name}: {path} holds no PEM certificate")
    return path
