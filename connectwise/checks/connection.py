"""Step 1, connection: the site is allowed, the company id exists there, and the API keys work.

Discovery is ``GET /login/companyinfo/{companyId}`` (no authentication), then the authenticated ``GET
/system/info``, the cheapest call that proves the keys and the clientId (docs/connectwise/REFERENCE.md §1).
"""

from __future__ import annotations

from connectwise.errors import (
    AuthFailed,
    ConnectionFailed,
    ConnectWiseError,
    HostNotAllowed,
    NotFound,
    Timeout,
    TLSFailed,
    UnexpectedResponse,
    UnknownCompany,
)

from . import codes
from .base import Finding, Severity, Status, StepOutcome
from .context import RunContext

KEY = "connection"
NEEDS: frozenset[str] = frozenset()

FIX_SITE = (
    "Enter the site you use to sign in to ConnectWise: a cloud region such as api-na.myconnectwise.net, or your "
    "own server's host name (our support team approves on-premise hosts)."
)
FIX_KEYS = (
    "In ConnectWise go to System > Members > tab API Members > open the API member (or + to create one and save) "
    "> tab API Keys > + > enter a description > Save (not Save and Close). Copy the public and private keys "
    "shown once, and enter them here together with the company id you sign in with."
)


def needs(choices) -> frozenset[str]:
    return NEEDS


def _host(site: str) -> str:
    text = (site or "").strip().lower()
    for prefix in ("https://", "http://"):
        text = text.removeprefix(prefix)
    return text.split("/", 1)[0]


def check(ctx: RunContext) -> StepOutcome:
    info = ctx.connection
    findings: list[Finding] = []
    site = info.api_host if info else ""
    if info is not None and info.host_refused_reason:
        findings.append(
            Finding(
                codes.CONNECTION_HOST_NOT_ALLOWED,
                Severity.ERROR,
                subject=f"Site {info.site_entered or '(empty)'}",
                explanation=info.host_refused_reason,
                fix=FIX_SITE,
                data={"site": info.site_entered},
            )
        )
        return StepOutcome.from_findings(KEY, findings, "The site is not one we may connect to.")
    if ctx.client is None:
        return StepOutcome(KEY, Status.ERROR, summary="No ConnectWise connection has been saved yet.")

    if info is not None:
        entered = _host(info.site_entered)
        if entered and entered != info.api_host and info.api_host == f"api-{entered}":
            findings.append(
                Finding(
                    codes.CONNECTION_BROWSER_HOST,
                    Severity.INFO,
                    subject=f"Site {info.site_entered}",
                    explanation=(
                        f"{entered} is the address of ConnectWise in your browser. Its API lives at "
                        f"{info.api_host}, so we connect there instead; nothing to do."
                    ),
                    fix=f"Nothing to change. Next time you may enter {info.api_host} directly.",
                    data={"entered": entered, "api_host": info.api_host},
                )
            )

    facts: dict = {"site": site}
    try:
        company = ctx.discover()
    except UnknownCompany as exc:
        findings.append(_unknown_company(ctx, site, exc))
        return StepOutcome.from_findings(KEY, findings, "The company id is not known on this site.", **facts)
    except HostNotAllowed as exc:
        findings.append(
            Finding(
                codes.CONNECTION_HOST_NOT_ALLOWED,
                Severity.ERROR,
                subject=f"Site {site}",
                explanation=f"We refused to connect to this host: {exc.message}",
                fix=FIX_SITE,
                data={"error": exc.detail()},
            )
        )
        return StepOutcome.from_findings(KEY, findings, "The site is not one we may connect to.", **facts)
    except (ConnectionFailed, Timeout) as exc:
        findings.append(_unreachable(site, exc))
        return StepOutcome.from_findings(KEY, findings, "ConnectWise could not be reached.", **facts)
    except (NotFound, UnexpectedResponse) as exc:  # something answered, but not ConnectWise's discovery
        findings.append(_unreachable(site, exc))
        return StepOutcome.from_findings(KEY, findings, "No ConnectWise answered at this site.", **facts)
    # Other errors (5xx, 429 after the client's retries) propagate: the runner reports step.check_failed.
    facts.update(
        company_name=getattr(company, "company_name", ""),
        version_code=getattr(company, "version_code", ""),
        codebase=getattr(company, "codebase", ""),
        is_cloud=getattr(company, "is_cloud", None),
    )

    try:
        system = ctx.system_info()
    except AuthFailed as exc:
        findings.append(
            Finding(
                codes.CONNECTION_AUTH_FAILED,
                Severity.ERROR,
                subject=f"API keys for company {_company_id(ctx)}",
                explanation=(
                    "ConnectWise refused the API keys. The public or private key is wrong, the API member is "
                    "inactive, or the keys belong to a different company id."
                ),
                fix=FIX_KEYS,
                data={"status": exc.status, "code": exc.code, "error": exc.detail()},
            )
        )
        return StepOutcome.from_findings(KEY, findings, "The API keys were refused.", **facts)
    except (ConnectionFailed, Timeout) as exc:
        findings.append(_unreachable(site, exc))
        return StepOutcome.from_findings(KEY, findings, "ConnectWise could not be reached.", **facts)
    facts.update(
        version=_attr(system, "version"),
        cloud_region=_attr(system, "cloud_region", "cloudRegion"),
    )
    name = facts.get("company_name") or _company_id(ctx)
    return StepOutcome.from_findings(
        KEY,
        findings,
        f"Connected to {name} (ConnectWise {facts.get('version') or facts.get('version_code')}).",
        **facts,
    )


def _attr(obj, *names: str):
    for name in names:
        if isinstance(obj, dict) and name in obj:
            return obj[name]
        if hasattr(obj, name):
            return getattr(obj, name)
    return None


def _company_id(ctx: RunContext) -> str:
    return ctx.connection.company_id if ctx.connection is not None else ""


def _unknown_company(ctx: RunContext, site: str, exc: ConnectWiseError) -> Finding:
    company_id = _company_id(ctx)
    return Finding(
        codes.CONNECTION_UNKNOWN_COMPANY,
        Severity.ERROR,
        subject=f"Company id {company_id or '(empty)'} on {site}",
        explanation=(
            f"{site} does not know the company id{' ' + company_id if company_id else ''}. It is the company "
            "name you type on the ConnectWise sign-in page, and it must be on the same site (region)."
        ),
        fix=(
            "Check the company id on the ConnectWise sign-in page (the Company field), and that the site is the "
            "region you sign in to; then save the connection again."
        ),
        data={"company_id": company_id, "error": exc.detail()},
    )


TLS_CODES = {
    "untrusted": codes.CONNECTION_TLS_UNTRUSTED,
    "expired": codes.CONNECTION_TLS_EXPIRED,
    "name_mismatch": codes.CONNECTION_TLS_NAME_MISMATCH,
    "failed": codes.CONNECTION_TLS_FAILED,
}
TLS_PROBLEM = {
    "untrusted": (
        "its certificate is not trusted: it is self-signed, issued by an authority that is not public, or the "
        "server does not send the intermediate certificates that chain it to a public authority"
    ),
    "expired": "its certificate has expired (or is not valid yet)",
    "name_mismatch": "its certificate was issued for another host name",
    "failed": "no secure connection could be agreed (TLS protocol or cipher)",
}
FIX_TLS = (
    "Install on the ConnectWise server a certificate from a public certificate authority, issued for {site}, "
    "valid today, with its full intermediate chain (the server must send the intermediates too: billing syncs "
    "require a fully chained certificate). Then run the check again. Cloud-hosted ConnectWise never needs this."
)


def _tls(site: str, exc: TLSFailed) -> Finding:
    """A TLS failure named for what it is, with the fix (issue 17); never passed off as a network blip."""
    return Finding(
        TLS_CODES.get(exc.kind, codes.CONNECTION_TLS_FAILED),
        Severity.ERROR,
        subject=f"Site {site}",
        explanation=(
            f"We reached {site}, but refused its secure connection: {TLS_PROBLEM.get(exc.kind, TLS_PROBLEM['failed'])} "
            f"(the certificate check said: {exc.verify_message}). We never send your API keys over a connection we cannot "
            "verify, and neither will the billing sync."
        ),
        fix=FIX_TLS.format(site=site),
        data={
            "error": exc.detail(),
            "kind": exc.kind,
            "verify_message": exc.verify_message,
            "transient": False,
        },
    )


def _unreachable(site: str, exc: ConnectWiseError) -> Finding:
    if isinstance(exc, TLSFailed):
        return _tls(site, exc)
    return Finding(
        codes.CONNECTION_UNREACHABLE,
        Severity.ERROR,
        subject=f"Site {site}",
        explanation=(
            f"We could not get an answer from {site} ({type(exc).__name__}"
            f"{', HTTP ' + str(exc.status) if exc.status else ''}"
            f"{', request id ' + exc.request_id if exc.request_id else ''})."
            f"{' The server said: ' + repr(exc.cw_message) + '.' if exc.cw_message else ''} The host name may be "
            "wrong, the server may be down or blocking us, or the network failed for a moment."
        ),
        fix=(
            "Check the site name against the address you use for ConnectWise (cloud regions are "
            "api-na/api-eu/api-au/api-aus/api-za.myconnectwise.net), then run the check again. An on-premise "
            "server must accept HTTPS connections from the internet."
        ),
        data={"error": exc.detail(), "status": exc.status, "transient": exc.transient},
    )
