"""Demo mode: what the product offers only while the ConnectWise sandbox is enabled (``CONNECTWISE_SANDBOX_URL``,
never in production), so that a newcomer can finish the demo with the product's pages alone:

- the connection page lists the sandbox's companies and connects to one with its API member's keys (read here
  from the shipped scenario files, never put into the HTML);
- a finding that can only be fixed inside ConnectWise (a security role level, an Access Allowed item) offers
  "Make this change in the sandbox": the sandbox's role control (``POST /_sandbox/security``) makes the change
  the click path describes.

Nothing here exists outside demo mode: ``enabled()`` is False, the views answer 404 and the pages offer nothing.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import httpx
from django.conf import settings

from connectwise.checks import codes

from .hosts import decide

SCENARIOS = Path(settings.BASE_DIR) / "connectwise" / "sandbox" / "scenarios"
TRANSPORT_FACTORY = None  # tests: a callable returning an httpx transport to the in-process sandbox
TIMEOUT = httpx.Timeout(5.0)
LEVEL_FIELDS = {"add": "addLevel", "edit": "editLevel", "delete": "deleteLevel", "inquire": "inquireLevel"}


class SandboxChangeFailed(Exception):
    """The sandbox did not make the change; the message is for the person who asked for it."""


def enabled() -> bool:
    """Demo mode: the sandbox is configured and this is not a production deployment."""
    return bool(settings.CONNECTWISE_SANDBOX_URL) and not getattr(settings, "PRODUCTION", False)


def on_sandbox(connection) -> bool:
    """Demo mode and this tenant's connection is to the sandbox (its changes can be made there)."""
    return enabled() and connection is not None and decide(connection.site).kind == "sandbox"


@dataclass(frozen=True)
class SandboxCompany:
    """A company the sandbox serves, with one active API member whose keys connect to it."""

    company_id: str
    name: str
    member: str
    public_key: str
    private_key: str
    scenario: str

    @property
    def label(self) -> str:
        return f"{self.name} (company ID {self.company_id}, API member {self.member})"


def sandbox_companies() -> list[SandboxCompany]:
    """The shipped scenarios' companies (what ``make demo`` serves) with their first active API member; empty
    outside demo mode."""
    if not enabled():
        return []
    out = []
    for path in sorted(SCENARIOS.glob("*.json")):
        scenario = json.loads(path.read_text())
        member = next((m for m in scenario.get("apiMembers", []) if not m.get("inactiveFlag")), None)
        if member is None:
            continue
        company = scenario["company"]
        out.append(
            SandboxCompany(
                company_id=company["id"],
                name=company.get("name") or company["id"],
                member=member["identifier"],
                public_key=member["publicKey"],
                private_key=member["privateKey"],
                scenario=path.stem,
            )
        )
    return out


def sandbox_change_for(finding: dict) -> dict | None:
    """The sandbox role change that makes what a finding's click path describes (``POST /_sandbox/security``
    body without company and member), or None when the finding is not fixed in the role. Sources: the codes'
    fix texts in connectwise/checks/security_role.py, agreement_findings.py and agreement_mapping.py."""
    data = finding.get("data") or {}
    code = finding.get("code")
    if code == codes.ROLE_INSUFFICIENT_LEVEL and not data.get("probed"):
        field = LEVEL_FIELDS.get(str(data.get("level", "")).lower())
        if field and data.get("module") and data.get("function") and data.get("required"):
            return {
                "setting": {
                    "moduleName": data["module"],
                    "moduleFunctionName": data["function"],
                    field: data["required"],
                }
            }
    if code == codes.ROLE_MISSING_CUSTOMIZE_ITEM and data.get("customize") and data.get("item"):
        return {"customizeItem": {"customizeIdentifier": data["customize"], "itemIdentifier": data["item"]}}
    if code == codes.AGREEMENTS_TYPE_NOT_ALLOWED and data.get("type"):
        return {"customizeItem": {"customizeIdentifier": "Agreements", "itemIdentifier": data["type"]}}
    return None


def apply_in_sandbox(connection, change: dict) -> dict:
    """Make ``change`` (from ``sandbox_change_for``) in the role of the tenant's API member. Raises
    SandboxChangeFailed with the sandbox's message; never sends or returns a private key."""
    if not on_sandbox(connection):
        raise SandboxChangeFailed("Demo mode is off or this connection is not to the sandbox.")
    body = {"company": connection.company_id, "publicKey": connection.public_key, **change}
    transport = TRANSPORT_FACTORY() if TRANSPORT_FACTORY else None
    try:
        with httpx.Client(
            base_url=settings.CONNECTWISE_SANDBOX_URL, timeout=TIMEOUT, transport=transport
        ) as http:
            response = http.post("/_sandbox/security", json=body)
    except httpx.HTTPError as exc:
        raise SandboxChangeFailed(f"The sandbox did not answer ({type(exc).__name__}).") from None
    if response.status_code != 200:
        try:
            message = response.json().get("message") or response.text
        except ValueError:
            message = response.text
        raise SandboxChangeFailed(f"The sandbox refused the change: {message[:300]}")
    return response.json()
