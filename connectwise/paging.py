"""Paging helpers of the client: the page-size bound, a list's filters, and what identifies a page.

ConnectWise pages by number (``page``, ``pageSize`` up to 1,000) after a ``/count``, or by the ``Link`` header
(docs/connectwise/REFERENCE.md §4). ``ConnectWiseClient.list`` and ``iter_pages`` use these to refuse a page
they have already read (a server ignoring ``page``) instead of looping, and follow a ``Link`` only on our origin.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

import httpx

from . import errors

MAX_PAGE_SIZE = 1000  # docs/connectwise/REFERENCE.md §4: "a hard limit of 1,000 records"


def check_page_size(page_size: int) -> int:
    """``page_size`` when it is an int in 1..``MAX_PAGE_SIZE``; raises ValueError otherwise."""
    if not isinstance(page_size, int) or isinstance(page_size, bool) or not 1 <= page_size <= MAX_PAGE_SIZE:
        raise ValueError(
            f"page_size must be between 1 and {MAX_PAGE_SIZE} (docs/connectwise/REFERENCE.md §4), got {page_size!r}"
        )
    return page_size


def page_key(records: list[Any]) -> Any:
    """What identifies a page: its first record's id, or the whole first record when ``fields`` dropped the id."""
    if not records:
        return None
    first = records[0]
    if isinstance(first, dict) and "id" in first:
        return ("id", first["id"])
    return ("record", json.dumps(first, sort_keys=True, default=str))


def url_key(url: httpx.URL) -> tuple[str, tuple[tuple[str, str], ...]]:
    """A page URL by path and sorted query (a ``Link`` to a page already read is refused)."""
    return url.path, tuple(sorted(url.params.multi_items()))


def filter_params(
    conditions: str | None, child_conditions: str | None, custom_field_conditions: str | None
) -> dict[str, str]:
    """The query parameters of a list's filters (``conditions``, ``childConditions``, ``customFieldConditions``),
    the ones that are set."""
    query = {}
    if conditions:
        query["conditions"] = str(conditions)
    if child_conditions:
        query["childConditions"] = str(child_conditions)
    if custom_field_conditions:
        query["customFieldConditions"] = str(custom_field_conditions)
    return query


def filter_kwargs(query: Mapping[str, str]) -> dict[str, str | None]:
    """``filter_params(...)`` back into the keyword arguments of ``ConnectWiseClient.count``."""
    return {
        "conditions": query.get("conditions"),
        "child_conditions": query.get("childConditions"),
        "custom_field_conditions": query.get("customFieldConditions"),
    }


def link_on_origin(origin: str, link: str, api_root: str, path: str) -> httpx.URL:
    """The ``Link`` target moved onto our ``origin``: ConnectWise names the browser host there
    (docs/connectwise/REFERENCE.md §4). Raises HostNotAllowed for any other host, UnexpectedResponse for a link
    outside ``api_root`` (``/{codebase}apis/3.0/``); ``path`` is the listed path, for the messages."""
    ours = httpx.URL(origin)
    target = ours.join(link)
    allowed = {ours.host, ours.host.removeprefix("api-")}
    if target.host not in allowed:
        raise errors.HostNotAllowed(
            f"GET {path}: the next page link points to {target.host}, not {ours.host}; not following it",
            method="GET",
            path=path,
        )
    if not target.path.startswith(api_root):
        raise errors.UnexpectedResponse(
            f"GET {path}: unexpected response: the next page link leaves {api_root}",
            method="GET",
            path=path,
        )
    return ours.copy_with(raw_path=target.raw_path)
