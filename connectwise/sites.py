"""Where a tenant's ConnectWise is: the cloud API hosts, a partner's site address made an API host, the credentials.

``CLOUD_HOSTS`` is the host allow-list of ConnectWise's cloud (docs/connectwise/REFERENCE.md §1, DJCW
``CW_CLOUD_URLS``); ``onboarding.hosts.decide`` applies it (on-premise hosts need staff approval there).
``api_host_for`` only normalises what a partner typed; ``Credentials`` is the vetted origin with the API member's
keys, the one thing a ``ConnectWiseClient`` is built from.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from urllib.parse import urlsplit

# docs/connectwise/REFERENCE.md §1 (DJCW CW_CLOUD_URLS).
CLOUD_HOSTS: tuple[str, ...] = (
    "api-na.myconnectwise.net",
    "api-eu.myconnectwise.net",
    "api-au.myconnectwise.net",
    "api-aus.myconnectwise.net",
    "api-za.myconnectwise.net",
    "api-staging.connectwisedev.com",
)

_HOST_LABELS = re.compile(r"[a-z0-9](?:[a-z0-9-]*[a-z0-9])?(?:\.[a-z0-9](?:[a-z0-9-]*[a-z0-9])?)*")


def api_host_for(site: str) -> tuple[str, bool]:
    """Normalize what a partner typed into the API host, and say whether it was rewritten.

    Strips whitespace, scheme, path and a trailing dot and lower-cases; the browser host of a cloud region
    (``na.myconnectwise.net``) becomes its API host (``api-na.myconnectwise.net``, docs/connectwise/REFERENCE.md §1, §7). A port is
    kept (``host:port``). Empty input gives ``("", False)``; input that is not a host name raises ValueError with
    a message a partner understands. This does not decide whether the host is allowed (the SSRF guard does).
    """
    text = (site or "").strip()
    if not text:
        return "", False
    try:
        parts = urlsplit(text if "://" in text else f"//{text}")
        port = parts.port
    except ValueError:
        raise ValueError(f"{text!r} is not a valid ConnectWise site address.") from None
    if parts.username is not None or parts.password is not None:
        raise ValueError(
            "Enter only the host name of your ConnectWise site, without a user name or password."
        )
    host = (parts.hostname or "").rstrip(".").lower()
    if ":" in host:  # IPv6 literal: keep it bracketed, the guard decides about it
        return (f"[{host}]:{port}" if port is not None else f"[{host}]"), False
    try:
        host = host.encode("idna").decode("ascii")
    except UnicodeError:
        raise ValueError(f"{text!r} is not a valid host name.") from None
    if not _HOST_LABELS.fullmatch(host):
        raise ValueError(f"{text!r} is not a valid host name.")
    rewritten = False
    if f"api-{host}" in CLOUD_HOSTS:
        host, rewritten = f"api-{host}", True
    return (f"{host}:{port}" if port is not None else host), rewritten


@dataclass(frozen=True)
class Credentials:
    """Where and who: ``origin`` is ``scheme://host[:port]`` (already vetted by the host guard).

    The private key is left out of ``repr`` so it cannot leak through a log line or a traceback.
    """

    origin: str
    company_id: str
    public_key: str
    private_key: str = field(repr=False)
    client_id: str

    def __post_init__(self) -> None:
        parts = urlsplit((self.origin or "").strip())
        if parts.scheme not in ("http", "https") or not parts.netloc or parts.path not in ("", "/"):
            raise ValueError(f"origin must be scheme://host[:port], got {self.origin!r}")
        if parts.query or parts.fragment or parts.username or parts.password:
            raise ValueError(f"origin must be scheme://host[:port], got {self.origin!r}")
        object.__setattr__(self, "origin", f"{parts.scheme}://{parts.netloc.lower()}")
