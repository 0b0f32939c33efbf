"""Capture a partner's ConnectWise into a sandbox scenario, read-only (``python manage.py cw_capture``).

``capture(client)`` reads every resource the checks read (``connectwise.checks.context.RESOURCES``, the same
paths and conditions) with the same client and paging (``context._fetch``: one full page, or ``/count`` then the
pages), but without ``fields=``, so each record is written as the API returns it. Only GETs are sent. The result
is a scenario in the format of PRODUCT.md "The ConnectWise sandbox" (``connectwise.sandbox.scenario``):

- ``company`` from ``/login/companyinfo/{companyId}`` (name, codebase, versionCode, isCloud);
- one security role from ``system/mySecurity`` and ``system/mySecurity/customizeItems`` (the caller's effective
  security, REFERENCE §2), and one placeholder API member with fresh keys the sandbox accepts, never the
  partner's keys;
- ``records`` keyed by API path. A read refused with 403 is left out (the captured role refuses it too, so the
  checks find the same ``step.read_forbidden``); any other failed read stops the capture with the error.

``anonymize(scenario)`` replaces company, contact and agreement names and identifiers consistently (the same
record gets the same replacement wherever it is referenced; company names that were "the same customer" by
``names.normalize_company_name`` stay so), plus the address and contact fields of companies (replaced with
neutral text), so that a partner's
setup can be handed to support and reproduced offline.
"""

from __future__ import annotations

import copy
import re
import secrets
from collections.abc import Callable
from dataclasses import replace
from typing import Any

from .checks.context import RESOURCES, fetch_resource
from .checks.names import LEGAL_SUFFIXES, normalize_company_name
from .errors import ConnectWiseError, Forbidden
from .query import split_in

CAPTURED_BY = "cw_capture"
ROLE_NAME = "Captured role"
MEMBER_IDENTIFIER = "capture"
# The scenario paths read (the checks' resources other than the caller's own security, captured as the role).
RECORD_RESOURCES = tuple(k for k in RESOURCES if k not in ("my_security", "customize_items"))
# Fields the server computes about a row of the caller's security rather than data of the role.
_SERVER_FIELDS = ("_info",)
# Company fields that identify or locate a partner's customer: replaced by --anonymize with neutral text of the
# same type (kept rather than dropped, so a record keeps the shape the API returns).
COMPANY_PRIVATE_FIELDS = {
    "addressLine1": "1 Example Street",
    "addressLine2": "",
    "city": "Example City",
    "zip": "00000",
    "phoneNumber": "",
    "faxNumber": "",
    "website": "",
    "accountNumber": "",
    "invoiceToEmailAddress": "billing@example.invalid",
    "invoiceCCEmailAddress": "",
}
# Agreement fields that may carry free text about the customer: replaced by --anonymize.
AGREEMENT_PRIVATE_FIELDS = {"customerPO": "", "internalNotes": "", "description": ""}


class CaptureError(Exception):
    """A read the capture needs failed (other than 403). The message names the path and ConnectWise's answer."""


def capture(
    client: Any, company_id: str, *, on_read: Callable[[str, int], None] | None = None
) -> dict[str, Any]:
    """Read the tenant behind ``client`` (a ``ConnectWiseClient`` for ``company_id``, the id the partner signs in
    with) into a scenario dict; GET requests only.

    ``on_read(path, n)`` is called after each collection is read (``n`` records; -1 when refused with 403).
    Raises CaptureError when discovery or a read fails other than with 403.
    """
    try:
        info = client.discover()
    except ConnectWiseError as exc:
        raise CaptureError(f"Could not read the company info: {exc}") from None
    records: dict[str, list[dict]] = {}
    refused: list[str] = []
    for key in RECORD_RESOURCES:
        resource = RESOURCES[key]
        try:
            rows = fetch_resource(client, replace(resource, fields=None))
        except Forbidden:
            refused.append(resource.path)
            if on_read:
                on_read(resource.path, -1)
            continue
        except ConnectWiseError as exc:
            raise CaptureError(f"Could not read {resource.path}: {exc}") from None
        # As returned, ``_info`` included: its ``enteredBy`` is what an Inquire level "My" filters on
        # (docs/connectwise/REFERENCE.md, the "My" ownership rule).
        rows = [dict(r) for r in rows if isinstance(r, dict)]
        if on_read:
            on_read(resource.path, len(rows))
        # An empty collection is left out: the sandbox serves it empty all the same, and records that refer into
        # it (an agreement's type hidden by an Inquire level "My") stay loadable.
        if rows:
            records[resource.path] = rows
    if records.get("finance/agreements"):
        _capture_additions(client, records, refused, on_read)
    role = _capture_role(client, refused)
    public_key, private_key = placeholder_keys()
    company_id = company_id or info.company_id or "captured"
    return {
        "description": (
            f"Captured read-only by {CAPTURED_BY} from {info.company_name or company_id} "
            f"(ConnectWise {info.version_code or 'version unknown'}). The API member and its keys are "
            "placeholders, not the partner's."
            + (f" Reads refused with 403: {', '.join(refused)}." if refused else "")
        ),
        "company": {
            "id": _company_id_segment(company_id),
            "name": info.company_name or company_id,
            "codebase": info.codebase,
            "versionCode": info.version_code or "v2025.8",
            "isCloud": bool(info.is_cloud),
            **({} if role["mySecurityReadable"] else {"mySecurityReadable": False}),
        },
        "apiMembers": [
            {
                "identifier": member_identifier(role, records),
                "publicKey": public_key,
                "privateKey": private_key,
                "securityRole": role["name"],
                "inactiveFlag": False,
            }
        ],
        "securityRoles": [{k: v for k, v in role.items() if k != "mySecurityReadable"}],
        "records": records,
    }


ADDITIONS_KEY = "finance/agreements/additions"


def _capture_additions(client: Any, records: dict, refused: list[str], on_read) -> None:
    """The agreement additions the existing_billing step reads, as returned, each with its ``agreementId``, under
    the scenario key ``finance/agreements/additions``. The SPEC has no cross-agreement endpoint, so this is one
    paged read per agreement (``finance/agreements/{id}/additions``), concurrent within the client's bound."""
    ids = [a["id"] for a in records["finance/agreements"] if isinstance(a.get("id"), int)]

    def one(agreement_id: int) -> list[dict]:
        rows = client.list(f"finance/agreements/{agreement_id}/additions", order_by="id asc")
        return [
            {**r, "agreementId": r.get("agreementId") or agreement_id} for r in rows if isinstance(r, dict)
        ]

    try:
        pages = client.map_concurrent(one, ids)
    except Forbidden:
        refused.append("finance/agreements/{id}/additions")
        if on_read:
            on_read(ADDITIONS_KEY, -1)
        return
    except ConnectWiseError as exc:
        raise CaptureError(f"Could not read the agreements' additions: {exc}") from None
    rows = [r for page in pages for r in page]
    if on_read:
        on_read(ADDITIONS_KEY, len(rows))
    if not rows:
        return
    # The catalog read above is the misc products only: the other products the additions name come too, so the
    # scenario's references resolve (one batched read, ids in a few conditions).
    catalog = records.setdefault("procurement/catalog", [])
    have = {p.get("id") for p in catalog}
    missing = sorted({(r.get("product") or {}).get("id") for r in rows} - have - {None})
    if missing:
        try:
            for conditions in split_in("id", missing):
                catalog.extend(client.list("procurement/catalog", conditions=conditions, order_by="id asc"))
        except Forbidden:  # the catalog is not readable: keep the additions whose product is known
            refused.append("procurement/catalog (products of additions)")
            rows = [r for r in rows if (r.get("product") or {}).get("id") in have]
        except ConnectWiseError as exc:
            raise CaptureError(f"Could not read the products the additions name: {exc}") from None
    if not catalog:
        records.pop("procurement/catalog", None)
    if rows:
        records[ADDITIONS_KEY] = rows


def placeholder_keys() -> tuple[str, str]:
    """Fresh random keys for the placeholder API member (never the partner's)."""
    return f"capture{secrets.token_hex(6)}", secrets.token_urlsafe(18)


def member_identifier(role: dict[str, Any], records: dict[str, list[dict]]) -> str:
    """The placeholder API member's identifier. Where the role reads a collection at Inquire level "My", the
    records it saw are the ones whose ``_info.enteredBy`` is the API member (the sandbox's ownership rule): the
    placeholder takes that identifier, so the capture shows it the same records. Otherwise ``capture``."""
    my_functions = {
        (str(r.get("moduleName", "")).casefold(), str(r.get("moduleFunctionName", "")).casefold())
        for r in role.get("settings", [])
        if r.get("inquireLevel") == "My"
    }
    seen: set[str] = set()
    for key in RECORD_RESOURCES:
        resource = RESOURCES[key]
        module, function = (p.strip().casefold() for p in resource.role_function.split(">", 1))
        if (module, function) not in my_functions:
            continue
        for row in records.get(resource.path, []):
            info = row.get("_info")
            if (
                isinstance(info, dict)
                and isinstance(info.get("enteredBy"), str)
                and info["enteredBy"].strip()
            ):
                seen.add(info["enteredBy"])
    return seen.pop() if len(seen) == 1 else MEMBER_IDENTIFIER


def _company_id_segment(company_id: str) -> str:
    """The sandbox serves a company under its id as one URL segment (letters, digits, ``_ . -``)."""
    return re.sub(r"[^A-Za-z0-9_.-]+", "-", company_id).strip("-") or "captured"


def _capture_role(client: Any, refused: list[str]) -> dict[str, Any]:
    """The caller's effective security as one scenario role. When mySecurity is not readable (403), the role is
    marked so (the checks then probe, ``role.unreadable``) and given Inquire All on the module functions whose
    reads worked and None on those refused: an approximation, said in the scenario's description."""
    try:
        rows = fetch_resource(client, RESOURCES["my_security"])
        items = fetch_resource(client, RESOURCES["customize_items"])
    except Forbidden:
        return _unreadable_role(refused)
    except ConnectWiseError as exc:
        raise CaptureError(f"Could not read system/mySecurity: {exc}") from None
    name = ROLE_NAME
    for item in items:
        role = item.get("securityRole") if isinstance(item, dict) else None
        if isinstance(role, dict) and isinstance(role.get("name"), str) and role["name"].strip():
            name = role["name"]
            break
    settings = []
    seen = set()
    for row in rows:
        if not isinstance(row, dict) or not row.get("moduleName") or not row.get("moduleFunctionName"):
            continue
        key = (str(row["moduleName"]).casefold(), str(row["moduleFunctionName"]).casefold())
        if key in seen:
            continue
        seen.add(key)
        settings.append({k: v for k, v in row.items() if k not in ("id", *_SERVER_FIELDS)})
    customize = [
        {k: v for k, v in item.items() if k not in ("id", "securityRole", *_SERVER_FIELDS)}
        for item in items
        if isinstance(item, dict) and item.get("customizeIdentifier") and item.get("itemIdentifier")
    ]
    return {"name": name, "settings": settings, "customizeItems": customize, "mySecurityReadable": True}


def _unreadable_role(refused: list[str]) -> dict[str, Any]:
    functions: dict[tuple[str, str], bool] = {}
    for key in RECORD_RESOURCES:
        resource = RESOURCES[key]
        module, function = (p.strip() for p in resource.role_function.split(">", 1))
        readable = resource.path not in refused
        functions[(module, function)] = functions.get((module, function), True) and readable
    settings = [
        {
            "moduleName": module,
            "moduleFunctionName": function,
            "inquireLevel": "All" if readable else "None",
        }
        for (module, function), readable in functions.items()
    ]
    items = [
        {"customizeIdentifier": "TableSetup", "itemIdentifier": RESOURCES[k].customize_item}
        for k in RECORD_RESOURCES
        if RESOURCES[k].customize_item and RESOURCES[k].path not in refused
    ]
    return {"name": ROLE_NAME, "settings": settings, "customizeItems": items, "mySecurityReadable": False}


# -- anonymize ---------------------------------------------------------------------------------------------------


def anonymize(scenario: dict[str, Any]) -> dict[str, Any]:
    """A copy of ``scenario`` with company, contact and agreement names and identifiers replaced consistently.

    Companies become "Customer N" (companies whose names were the same customer by ``normalize_company_name``
    share N, and keep their legal-form suffix, so "Ltd" vs "Limited" duplicates stay duplicates) with identifier
    "CustomerNNNN" unique per company; contacts "Contact <id>"; agreements "Agreement <id>". Every reference to
    them (``company``, ``billToCompany``, ``defaultContact``, ``parentAgreement``, ...) gets the same values.
    Member identifiers (the API member, ``_info.enteredBy`` / ``updatedBy``) become "memberN", the same member
    the same N, so a "My" inquire level still sees the same records. The partner's own company becomes
    "Partner MSP" with id "anonymized". Ids, statuses, types, billing settings and the security role are kept:
    they are what the checks judge.
    """
    out = copy.deepcopy(scenario)
    records = out.get("records", {})
    companies = sorted(records.get("company/companies", []), key=lambda r: r["id"])
    groups: dict[str, int] = {}
    company_map: dict[int, dict[str, str]] = {}
    for n, company in enumerate(companies, start=1):
        name = str(company.get("name") or "")
        group = groups.setdefault(normalize_company_name(name) or f"#{company['id']}", len(groups) + 1)
        company_map[company["id"]] = {
            "name": f"Customer {group}{_legal_suffix(name)}",
            "identifier": f"Customer{n:04d}",
        }
    for company in companies:
        company.update(company_map[company["id"]])
        _neutralize(company, COMPANY_PRIVATE_FIELDS)
    for contact in records.get(
        "company/contacts", []
    ):  # not captured, but a hand-written scenario may hold them
        contact.update(firstName="Contact", lastName=str(contact["id"]))
        for field in ("title", "defaultPhoneNbr", "defaultPhoneExtension", "communicationItems"):
            contact.pop(field, None)
    for agreement in records.get("finance/agreements", []):
        agreement["name"] = f"Agreement {agreement['id']}"
        _neutralize(agreement, AGREEMENT_PRIVATE_FIELDS)
    for rows in records.values():
        for row in rows:
            _replace_refs(row, company_map)
    members: dict[str, str] = {}

    def member(name: str) -> str:
        return members.setdefault(name, f"member{len(members) + 1}")

    for api_member in out.get("apiMembers", []):
        api_member["identifier"] = member(api_member["identifier"])
        for field in ("firstName", "lastName"):
            api_member.pop(field, None)
    for rows in records.values():
        for row in rows:
            info = row.get("_info")
            if isinstance(info, dict):
                for field in ("enteredBy", "updatedBy"):
                    if isinstance(info.get(field), str) and info[field]:
                        info[field] = member(info[field])
    out["company"] = {**out.get("company", {}), "id": "anonymized", "name": "Partner MSP"}
    for key in ("siteUrl", "serverName"):
        out["company"].pop(key, None)
    # The description names the partner: say only what the capture is.
    out["description"] = (
        f"Captured read-only by {CAPTURED_BY} --anonymize: company, contact and agreement names and identifiers "
        "replaced. The API member and its keys are placeholders."
    )
    return out


def _neutralize(record: dict, fields: dict[str, str]) -> None:
    for field, neutral in fields.items():
        if isinstance(record.get(field), str) and record[field]:
            record[field] = neutral


def _legal_suffix(name: str) -> str:
    """The trailing legal-form words of a name as written ("Contoso Pty Ltd" -> " Pty Ltd")."""
    words = name.split()
    tail: list[str] = []
    while words and re.sub(r"[^0-9a-z]+", "", words[-1].casefold().replace(".", "")) in LEGAL_SUFFIXES:
        tail.insert(0, words.pop())
    return (" " + " ".join(tail)) if tail and words else ""


def _replace_refs(value: Any, company_map: dict[int, dict[str, str]], key: str = "") -> None:
    """Rewrite the names in reference objects (``{"id": N, "name": ...}``) under company/contact/agreement keys."""
    if isinstance(value, list):
        for item in value:
            _replace_refs(item, company_map, key)
        return
    if not isinstance(value, dict):
        return
    lowered = key.casefold()
    ref_id = value.get("id")
    if key and isinstance(ref_id, int):
        if "company" in lowered:
            known = company_map.get(ref_id) or {
                "name": f"Customer #{ref_id}",
                "identifier": f"Customer#{ref_id}",
            }
            for field in ("name", "identifier"):
                if field in value:
                    value[field] = known[field]
        elif "contact" in lowered:
            if "name" in value:
                value["name"] = f"Contact {ref_id}"
            for field in ("firstName", "lastName"):
                value.pop(field, None)
        elif "agreement" in lowered and "type" not in lowered and "name" in value:
            value["name"] = f"Agreement {ref_id}"
    for child_key, child in value.items():
        if isinstance(child, dict | list):
            _replace_refs(child, company_map, child_key)
