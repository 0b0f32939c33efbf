"""The source key of the company list behind the customers page: what the list is built from, in 32 hex characters.

The customers step builds the list (``facts["directory"]``, one row per company with its agreements) only when this
key differs from the one of the list the tenant holds (``ReadHints.directory_source``, kept as
``Tenant.directory_source``): the same key means the same list. For a large tenant (5,000 companies, 10,000
agreements) the key is most of what the step costs when nothing changed, so the paged reads are keyed by the
digests the client took of their pages as they arrived (``ConnectWiseClient.last_digest``), not serialised again.
"""

from __future__ import annotations

import hashlib
from datetime import datetime

import orjson

from .agreement_facts import parse_dt
from .context import RunContext

# Part of every source key: change it whenever customers' _directory_row (or what it calls) would build other rows
# from the same data, so that every tenant's list is built again by its next run.
DIRECTORY_VERSION = b"directory-1"
# The agreement dates that is_active, is_pending and the candidate rule compare with the run's time.
DATE_FIELDS = ("startDate", "billStartDate", "dateCancelled", "endDate")
KEY_CHUNK = 1000  # records serialised at once into the key, when no page digest stands for them


def directory_source(ctx: RunContext) -> str:
    """A key (32 hex characters) of everything the company list (``facts["directory"]``) is built from: the
    companies, company statuses, agreements and billing cycles as read (the cycles as unread when their read
    failed), and where the run's time falls among the agreements' dates. Two runs with the same key build the
    same list: a list is a function of that data and of which side of each date ``ctx.now`` is on (each
    comparison flips at a date or just after it), which the next date at or after ``now`` and whether ``now``
    is that very instant determine. The companies and agreements are keyed by their pages as ConnectWise sent
    them (``ctx.digest_of``) when the client kept a digest, else by their records. Raises ``ResourceError`` like
    ``ctx.get`` when a read it needs failed."""
    agreements = ctx.get("agreements")
    cycles = ctx.get("billing_cycles") if ctx.error_of("billing_cycles") is None else None
    digest = hashlib.blake2b(DIRECTORY_VERSION, digest_size=16)
    for key, part in (
        ("companies", ctx.get("companies")),
        ("company_statuses", ctx.get("company_statuses")),
        ("agreements", agreements),
        ("billing_cycles", cycles),
    ):
        pages = ctx.digest_of(key)
        if pages is not None:
            digest.update(b"pages:" + pages.encode())
        else:
            # A page's worth at a time: one serialisation of 15,000 records would add its whole size to the peak.
            rows = part if isinstance(part, list) else [part]
            for start in range(0, len(rows), KEY_CHUNK):
                digest.update(orjson.dumps(rows[start : start + KEY_CHUNK], default=str))
        digest.update(b"\x00")
    upcoming = next_date(agreements, ctx.now)
    digest.update(b"-" if upcoming is None else f"{upcoming.isoformat()}|{upcoming == ctx.now}".encode())
    return digest.hexdigest()


def next_date(agreements: list[dict], now: datetime) -> datetime | None:
    """The earliest agreement date (of ``DATE_FIELDS``) at or after ``now``; None when there is none."""
    values: set = set()
    add = values.update
    try:
        for a in agreements:
            add(map(a.get, DATE_FIELDS))
    except TypeError:  # a value that cannot be in a set (a list, an object) is no date either
        values = {v for a in agreements for v in map(a.get, DATE_FIELDS) if isinstance(v, str)}
    texts = [v for v in values if v and isinstance(v, str)]
    ahead = [d for d in map(parse_dt, texts) if d is not None and d >= now]
    return min(ahead, default=None)
