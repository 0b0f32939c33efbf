"""The few ConnectWise response shapes the client itself reads, typed; every other field is ignored.

Resource records (companies, agreements, ...) stay plain dicts: the checks read the fields they need.
"""

from __future__ import annotations

import re

from pydantic import BaseModel, ConfigDict, Field, field_validator

# A codebase is one or more path segments with a trailing slash, e.g. "v4_6_release/" (docs/connectwise/REFERENCE.md §1). It is
# spliced into every URL, so anything else (dots-only segments, empty segments, odd characters) is refused.
_CODEBASE = re.compile(r"(?:[A-Za-z0-9_\-][A-Za-z0-9_.\-]*/)+")


def normalize_codebase(value: str) -> str:
    """``"v4_6_release"`` or ``"/v4_6_release/"`` -> ``"v4_6_release/"``; ValueError when it is not a codebase."""
    text = (value or "").strip().removeprefix("/")
    if text and not text.endswith("/"):
        text += "/"
    if not _CODEBASE.fullmatch(text) or any(seg in (".", "..") for seg in text.split("/")):
        raise ValueError(f"not a ConnectWise codebase: {value!r}")
    return text


class _Model(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True, populate_by_name=True)


class CompanyInfo(_Model):
    """``GET /login/companyinfo/{companyId}`` (docs/connectwise/REFERENCE.md §1; PascalCase on the wire)."""

    codebase: str = Field(alias="Codebase")
    company_name: str = Field("", alias="CompanyName")
    version_code: str = Field("", alias="VersionCode")
    version_number: str = Field("", alias="VersionNumber")
    company_id: str = Field("", alias="CompanyID")
    is_cloud: bool = Field(False, alias="IsCloud")
    site_url: str = Field("", alias="SiteUrl")

    @field_validator("codebase")
    @classmethod
    def _codebase(cls, v: str) -> str:
        return normalize_codebase(v)

    @field_validator(
        "company_name", "version_code", "version_number", "company_id", "site_url", mode="before"
    )
    @classmethod
    def _none_is_empty(cls, v: object) -> object:
        return "" if v is None else v


class SystemInfo(_Model):
    """``GET /system/info`` (docs/connectwise/REFERENCE.md §1): the cheapest authenticated call."""

    version: str = ""
    is_cloud: bool | None = Field(None, alias="isCloud")
    server_time_zone: str | None = Field(None, alias="serverTimeZone")
    cloud_region: str | None = Field(None, alias="cloudRegion")
