"""Which ConnectWise hosts a partner may connect to: the cloud hosts, staff-approved on-premise hosts, and the
sandbox where settings enable it. Everything else is refused before any request is made.
"""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import urlparse

from django.conf import settings

from connectwise.sites import CLOUD_HOSTS, api_host_for

from . import netguard
from .models import ApprovedHost


@dataclass(frozen=True)
class SiteDecision:
    entered: str
    api_host: str  # host[:port] we will call
    rewritten: bool  # the browser host was typed and rewritten to the api- host
    kind: str  # "cloud", "sandbox", "onprem"
    origin: str  # scheme://host[:port]
    refused: str | None = None  # a plain-language reason, or None when allowed

    @property
    def allowed(self) -> bool:
        return self.refused is None


def sandbox_host() -> str | None:
    if not settings.CONNECTWISE_SANDBOX_URL:
        return None
    return urlparse(settings.CONNECTWISE_SANDBOX_URL).netloc.lower()


def decide(site: str) -> SiteDecision:
    """Classify what the partner typed; refuse what is not allowed, with a reason a partner understands."""
    entered = (site or "").strip()
    sandbox = sandbox_host()
    if sandbox and entered.lower().removeprefix("http://").removeprefix("https://").rstrip("/") == sandbox:
        return SiteDecision(entered, sandbox, False, "sandbox", settings.CONNECTWISE_SANDBOX_URL)
    try:
        host, rewritten = api_host_for(entered)
    except ValueError as exc:
        return SiteDecision(entered, entered, False, "onprem", "", refused=str(exc))
    if not host:
        return SiteDecision(entered, host, False, "onprem", "", refused="Enter your ConnectWise site.")
    origin = f"https://{host}"
    if host in CLOUD_HOSTS:
        return SiteDecision(entered, host, rewritten, "cloud", origin)
    # A private address however spelled (127.1, 0x7f.1, [::1]) is refused before approval is even considered;
    # names are looked up only once staff approved them, so this form cannot be used to probe our DNS.
    literal = netguard.literal_refuse_reason(host)
    if literal:
        return SiteDecision(entered, host, rewritten, "onprem", origin, refused=literal)
    if not ApprovedHost.objects.filter(hostname=host).exists():
        return SiteDecision(
            entered,
            host,
            rewritten,
            "onprem",
            origin,
            refused=(
                f"{host} is not a ConnectWise cloud host. On-premise servers must be approved by our support "
                "team first: ask them to approve this host name, then try again."
            ),
        )
    # Approved, and every address it resolves to must be public (checked again at connect time by the
    # transport in netguard, against DNS rebinding).
    reason = netguard.refuse_reason(host)
    return SiteDecision(entered, host, rewritten, "onprem", origin, refused=reason)
