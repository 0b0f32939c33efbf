"""``benchmark verify``'s set-up: the sandbox serving a generated healthy tenant (in its own process or a thread),
the scratch tenant connected to it with every company chosen (monthly), and what the data needs: the minimum
calls (``needed_calls``) and the round-trip levels of the chain of dependent calls (``chain_levels``); see the
docstring of ``onboarding.bench.verify``."""

from __future__ import annotations

import contextlib
import math
from urllib.parse import urlsplit

from connectwise.checks.context import PAGE_SIZE, RESOURCES
from connectwise.checks.registry import STEP_KEYS, step_module
from connectwise.checks.runner import TenantChoices
from connectwise.sandbox import SandboxApp, generate_scenario, parse_scenario, serve_in_thread

from ..models import CompanyChoice, Connection, Tenant
from .sandbox_process import SandboxProcess

COMPANY_ID = "bigco"
SMALL_COMPANY_ID = "smallco"


def bench_tenant(slug: str, url: str, company_id: str, company_ids: list[int]) -> Tenant:
    """A new tenant ``slug`` connected to the sandbox at ``url`` as ``company_id``, with ``company_ids`` chosen
    (monthly); returned with its connection loaded."""
    tenant = Tenant.objects.create(slug=slug, name=slug)
    conn = Connection(
        tenant=tenant,
        site=urlsplit(url).netloc,
        company_id=company_id,
        public_key=f"{company_id}pub",
    )
    conn.set_private_key(f"{company_id}priv-0123456789")
    conn.save()
    CompanyChoice.objects.bulk_create(
        [CompanyChoice(tenant=tenant, cw_company_id=i, motion="monthly") for i in company_ids],
        batch_size=2000,
    )
    return Tenant.objects.select_related("connection").get(pk=tenant.pk)


def needed_calls(counts: dict[str, int], choices: TenantChoices) -> dict:
    """The minimum calls a full verify needs for this data (``counts``: records per API path), and what makes
    up the constant."""
    keys: set[str] = set()
    for key in STEP_KEYS[1:]:
        module = step_module(key)
        keys |= set(module.needs(choices))
        if hasattr(module, "plan_operations"):
            keys.add("my_security")  # runner._needs: read to offer only the repairs the role allows
    pages, paged, small = 0, {}, []
    for key in sorted(keys):
        res = RESOURCES[key]
        if res.large:
            rows = counts.get(res.path, 0)
            n = max(1, math.ceil(rows / PAGE_SIZE))
            paged[res.path] = {"records": rows, "pages": n}
            pages += n
        else:
            small.append(res.path)
    constant = (
        2 + len(paged) + len(small)
    )  # companyinfo + system/info, a /count per paged resource, small GETs
    return {
        "pages": pages,
        "constant": constant,
        "needed": pages + constant,
        "paged": paged,
        "small": small,
        "constant_is": "companyinfo + system/info + one /count per paged resource + one GET per small table",
    }


def chain_levels(needed: dict, in_flight: int) -> dict:
    """Round-trip levels a verify needs when nothing changed since the last one (see the module docstring): one
    wave of every call, split into as many levels as the in-flight bound makes of it."""
    waves = max(1, math.ceil(needed["needed"] / max(1, in_flight)))
    chain = "companyinfo ‖ system/info ‖ /count ‖ predicted pages ‖ small tables"
    if waves > 1:
        chain += f" ({needed['needed']} calls, {in_flight} in flight: {waves} levels)"
    return {"levels": waves, "chain": chain}


def serve_large(stack: contextlib.ExitStack, mode: str, companies: int, agreements: int) -> tuple:
    """Serve a generated healthy tenant ``COMPANY_ID`` of ``companies`` companies and ``agreements`` agreements,
    until ``stack`` closes: from its own process (``mode`` "process", generated there too, so that this process
    holds only what a worker would) or from a thread of this one ("thread"). Returns ``(sandbox, url, counts)``:
    the sandbox (``SandboxProcess`` or ``SandboxApp``, the same control methods), its base URL and the records per
    API path."""
    if mode == "process":
        sandbox = stack.enter_context(
            contextlib.closing(
                SandboxProcess(
                    prerender=True,
                    generate=[
                        "--companies",
                        str(companies),
                        "--agreements",
                        str(agreements),
                        "--company-id",
                        COMPANY_ID,
                    ],
                )
            )
        )
        return sandbox, sandbox.url, sandbox.record_counts(COMPANY_ID)
    app = SandboxApp(
        [parse_scenario(generate_scenario(companies, agreements, company_id=COMPANY_ID))],
        prerender=True,
    )
    url = stack.enter_context(serve_in_thread(app))
    return app, url, {path: len(t.rows) for path, t in app.tenant(COMPANY_ID).tables.items()}
