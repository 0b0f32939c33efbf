"""``manage.py benchmark soak``: verifications and repairs under injected faults; nothing lost, nothing twice.

Serves the shipped ``broken`` and ``bare`` scenarios on a real port (``serve_in_thread``: a reset is a real TCP
reset) and, in a scratch database, connects one tenant to each. A fault-free verification of each gives the
baseline findings. Then every cycle:

1. resets the sandbox to its scenarios and injects faults at ``--fault-rate`` per API request, spread over
   429 (with ``Retry-After``), 500, 503, connection resets before the request is handled, resets after it was
   handled (``resetAfter``: a write is applied and its answer lost) and slow bodies;
2. verifies both tenants through ``onboarding.runs.run_now`` (the background job's code path);
3. repairs both tenants: builds, approves and applies the setup_tables, catalog and agreements plans
   (``onboarding.repairs``), re-applying a failed plan (``repairs.reapply``) up to ``--reapply`` times under
   faults and then once more without faults, as a partner clicking "try again" would.

A third tenant (issue 18, ``--onboard N``, 200 by default, 0 leaves it out) is a generated partner onboarding N
customers at once (``generate_onboarding``: half monthly, a quarter Azure Plan, a quarter annual, no agreement
yet) with defaults for new agreements: it is verified like the others and repaired with one combined plan ("Fix
everything that can be fixed"), which creates one agreement per company. After every cycle the benchmark counts
the agreements per company there: more than one for any company is a duplicate (``agreement_duplicates``).

It checks that every run ends ``done`` or ``error`` (never queued/running), every plan ``applied`` or ``failed``
(never applying), every verification has the baseline's findings (``(step, code, subject)``) or says clearly
that it could not check (a step ``error`` with ``step.check_failed``, the steps it blocks, or a run ``error``),
and that no record is ever created twice: the sandbox counts the creates it acted on per created name
(requests refused by a fault before they were handled do not count); any name with two is a duplicate.

The counting sandbox is ``soak_sandbox``, the verdict on each run ``soak_verdicts``; this module holds the options,
the tenants, the repairs and the cycles.
"""

from __future__ import annotations

import random
import time
from collections import Counter
from contextlib import contextmanager
from pathlib import Path
from urllib.parse import urlsplit

from django.conf import settings
from django.test.utils import override_settings

from connectwise.checks.plans import COMBINED
from connectwise.errors import ConnectWiseError
from connectwise.sandbox import load_scenario, parse_scenario, serve_in_thread
from connectwise.sandbox.generate import generate_onboarding, onboarding_motion

from .. import cw, repairs, runs
from ..models import CheckRun, CompanyChoice, Connection, RepairPlan, Tenant
from . import scratch_database
from .soak_sandbox import SoakSandbox, agreement_duplicates
from .soak_verdicts import classify, diff, run_findings

SCENARIOS = Path(settings.BASE_DIR) / "connectwise" / "sandbox" / "scenarios"
REPAIRABLE_STEPS = ("setup_tables", "catalog", "agreements")  # the order repair_tenant uses
# Fault mix: shares of --fault-rate per request.
MIX = {"429": 0.2, "500": 0.2, "503": 0.15, "reset": 0.15, "resetAfter": 0.2, "slow": 0.1}
OPERATOR = "operator (soak benchmark)"
TENANTS = {
    # slug: (scenario file, company id, public key, private key, choices [(company, motion, agreement)])
    "soak-broken": (
        "broken.json",
        "brokenco",
        "brokenpub",
        "brokenpriv-0123456789",
        [(i, "monthly", None) for i in range(1, 17) if i not in (10, 11, 12, 14)]
        + [(10, "monthly", 10), (11, "monthly", 11), (12, "annual", None), (14, "azure", 114)],
    ),
    "soak-bare": ("bare.json", "bareco", "barepub", "barepriv-0123456789", None),
}


def add_arguments(parser) -> None:
    parser.add_argument("--runs", type=int, default=20, help="Cycles (2 verifies and 2 repairs each; 20).")
    parser.add_argument(
        "--fault-rate", type=float, default=0.15, help="Probability of a fault per API request (0.15)."
    )
    parser.add_argument("--seed", type=int, default=1, help="Seed of the fault draws (1).")
    parser.add_argument(
        "--reapply",
        type=int,
        default=3,
        help="Re-applies of a failed plan under faults before a clean one (3).",
    )
    parser.add_argument("--slow-ms", type=int, default=40, help="Duration of a slow body (40 ms).")
    parser.add_argument(
        "--onboard",
        type=int,
        default=200,
        help="Companies of the onboarding tenant repaired with one combined plan (200; 0: none).",
    )


ONBOARD = ("soak-onboard", "onboardco", "onboardpub", "onboardpriv-0123456789")
# What the onboarding tenant's partner set as defaults for new agreements (generate_onboarding's types).
ONBOARD_DEFAULTS = {
    "monthly": {"type_id": 1, "type_name": "O365", "name": "{company} - Microsoft 365", "start": ""},
    "azure": {"type_id": 2, "type_name": "Azure Plan", "name": "{company} - Azure Plan", "start": ""},
    "annual": {
        "type_id": 3,
        "type_name": "Annual",
        "name": "{company} - Annual",
        "start": "",
        "one_time": True,
    },
}


@contextmanager
def _count_client_retries(store: Counter):
    """Add up the retries of every ConnectWise client the run and repair services build (runs names
    ``cw.client_for`` in its own namespace; repairs builds through ``cw.tenant_client``, which calls
    ``cw.client_for``)."""
    real_runs, real_cw = runs.client_for, cw.client_for

    def wrapped(real):
        def client_for(*args, **kwargs):
            client = real(*args, **kwargs)
            close = client.close

            def close_and_count():
                store["retries"] += client.stats.retries
                store["calls"] += client.stats.calls
                close()

            client.close = close_and_count
            return client

        return client_for

    runs.client_for, cw.client_for = wrapped(real_runs), wrapped(real_cw)
    try:
        yield
    finally:
        runs.client_for, cw.client_for = real_runs, real_cw


def _tenant(slug: str, url: str, spec: tuple, app: SoakSandbox) -> Tenant:
    _, company_id, public, private, choices = spec
    tenant = Tenant.objects.create(slug=slug, name=slug)
    conn = Connection(tenant=tenant, site=urlsplit(url).netloc, company_id=company_id, public_key=public)
    conn.set_private_key(private)
    conn.save()
    if choices is None:  # every company of the scenario, monthly
        rows = app.tenant(company_id).tables["company/companies"].rows
        choices = [(cid, "monthly", None) for cid in rows]
    CompanyChoice.objects.bulk_create(
        [CompanyChoice(tenant=tenant, cw_company_id=c, motion=m, agreement_id=a) for c, m, a in choices]
    )
    return Tenant.objects.select_related("connection").get(pk=tenant.pk)


def _onboard_tenant(url: str, companies: int) -> Tenant:
    slug, company_id, public, private = ONBOARD
    tenant = Tenant.objects.create(slug=slug, name=slug, agreement_defaults=ONBOARD_DEFAULTS)
    conn = Connection(tenant=tenant, site=urlsplit(url).netloc, company_id=company_id, public_key=public)
    conn.set_private_key(private)
    conn.save()
    CompanyChoice.objects.bulk_create(
        [
            CompanyChoice(tenant=tenant, cw_company_id=i, motion=onboarding_motion(i))
            for i in range(1, companies + 1)
        ]
    )
    return Tenant.objects.select_related("connection").get(pk=tenant.pk)


def _repair(
    tenant: Tenant, options: dict, app: SoakSandbox, stats: Counter, faults: dict, steps=REPAIRABLE_STEPS
) -> None:
    for step in steps:
        plan = None
        for _ in range(1 + options["reapply"]):
            try:
                plan = repairs.create_plan(tenant, step, actor=None)
                break
            except ConnectWiseError:
                stats["plan_build_errors"] += 1
        if plan is None:  # the step could not even be read under these faults: nothing was written
            continue
        if not plan.operations.exists():
            RepairPlan.objects.filter(pk=plan.pk).update(status=RepairPlan.Status.DISCARDED)
            continue
        stats["plans"] += 1
        repairs.approve(plan, by=OPERATOR)
        plan = repairs.apply(repairs.claim_for_apply(plan.pk), verify=False, actor=OPERATOR)
        attempts = 0
        while plan.status == RepairPlan.Status.FAILED and attempts <= options["reapply"]:
            if attempts == options["reapply"]:
                app.set_faults({})  # the partner tries again once ConnectWise is healthy
            stats["plans_failed_then_reapplied"] += attempts == 0
            stats["reapplies"] += 1
            attempts += 1
            repairs.reapply(plan)
            plan = repairs.apply(repairs.claim_for_apply(plan.pk), verify=False, actor=OPERATOR)
        app.set_faults(faults)
        stats[f"plans_{plan.status}"] += 1


def _faults(options: dict, cycle: int) -> dict:
    rate = options["fault_rate"]
    return {
        "seed": options["seed"] * 1000 + cycle,
        "rates": {kind: rate * share for kind, share in MIX.items()},
        "slowBodyMs": options["slow_ms"],
        "retryAfterSeconds": 0,
    }


def run(options: dict) -> dict:
    if options["runs"] < 1 or not 0 <= options["fault_rate"] <= 1:
        raise ValueError("--runs must be at least 1 and --fault-rate between 0 and 1")
    started = time.perf_counter()
    random.seed(options["seed"])  # the client's backoff jitter
    scenarios = [load_scenario(SCENARIOS / spec[0]) for spec in TENANTS.values()]
    if options.get("onboard", 0) < 0:
        raise ValueError("--onboard must be 0 or more")
    onboard = options.get("onboard", 0)
    if onboard:
        _, company_id, public, private = ONBOARD
        scenarios.append(
            parse_scenario(generate_onboarding(onboard, company_id, public_key=public, private_key=private))
        )
    app = SoakSandbox(scenarios)
    onboard_duplicates: dict[str, int] = {}
    stats: Counter = Counter()
    outcomes: Counter = Counter()
    wrong: list[dict] = []
    with (
        scratch_database(),
        serve_in_thread(app) as url,
        override_settings(CONNECTWISE_SANDBOX_URL=url),
    ):
        tenants = {slug: _tenant(slug, url, spec, app) for slug, spec in TENANTS.items()}
        if onboard:
            tenants[ONBOARD[0]] = _onboard_tenant(url, onboard)
        baselines = {
            slug: run_findings(runs.run_now(t, trigger=CheckRun.Trigger.CLI)) for slug, t in tenants.items()
        }
        with _count_client_retries(stats):
            for cycle in range(options["runs"]):
                app.reset()
                app.cycle = cycle
                faults = _faults(options, cycle)
                app.set_faults(faults)
                for slug, tenant in tenants.items():
                    try:
                        result = runs.run_now(tenant, trigger=CheckRun.Trigger.CLI)
                    except Exception as exc:  # noqa: BLE001 - a crash is a finding of the soak, not its end
                        outcomes["crashed"] += 1
                        wrong.append({"cycle": cycle, "tenant": slug, "crash": type(exc).__name__})
                        continue
                    verdict = classify(result, baselines[slug])
                    outcomes[verdict] += 1
                    if verdict == "wrong":
                        wrong.append(
                            {
                                "cycle": cycle,
                                "tenant": slug,
                                "run": str(result.uuid),
                                **diff(result, baselines[slug]),
                            }
                        )
                for slug, tenant in tenants.items():
                    steps = (COMBINED,) if slug == ONBOARD[0] else REPAIRABLE_STEPS
                    _repair(tenant, options, app, stats, faults, steps)
                app.set_faults({})
                if onboard:
                    for cid, n in agreement_duplicates(app, ONBOARD[1]).items():
                        onboard_duplicates[f"cycle {cycle} / company {cid}"] = n
                    stats["onboard_agreements"] += len(
                        app.tenant(ONBOARD[1]).tables["finance/agreements"].rows
                    )
        runs_by_status = Counter(CheckRun.objects.values_list("status", flat=True))
        plans_by_status = Counter(
            RepairPlan.objects.exclude(status=RepairPlan.Status.DISCARDED).values_list("status", flat=True)
        )
    duplicates = app.duplicates()
    return {
        "benchmark": "soak",
        "cycles": options["runs"],
        "fault_rate": options["fault_rate"],
        "seed": options["seed"],
        "verifications": sum(outcomes.values()),
        "faults_injected": sum(app.faults_injected.values()),
        "faults_by_kind": dict(sorted(app.faults_injected.items())),
        "api_calls": stats["calls"],
        "retries": stats["retries"],
        "outcomes": {"same": outcomes["same"], "error": outcomes["error"], "wrong": outcomes["wrong"]},
        "crashed": outcomes["crashed"],
        "wrong_runs": wrong[:20],
        "runs_by_status": dict(runs_by_status),
        "runs_not_final": sum(n for s, n in runs_by_status.items() if s in CheckRun.ACTIVE),
        "plans": stats["plans"],
        "plans_applied": stats["plans_applied"],
        "plans_failed": stats["plans_failed"],
        "plans_failed_then_reapplied": stats["plans_failed_then_reapplied"],
        "reapplies": stats["reapplies"],
        "plan_build_errors": stats["plan_build_errors"],
        "plans_by_status": dict(plans_by_status),
        "plans_not_final": sum(
            n
            for s, n in plans_by_status.items()
            if s in (RepairPlan.Status.APPROVED, RepairPlan.Status.APPLYING)
        ),
        "creates": sum(app.creates.values()),
        "creates_refused_as_existing": app.object_exists,
        "duplicates_found": len(duplicates) + len(onboard_duplicates),
        "duplicates": {**duplicates, **onboard_duplicates},
        "onboard_companies": onboard,
        "onboard_agreements_created": stats["onboard_agreements"],
        "agreement_duplicates": len(onboard_duplicates),
        "total_seconds": round(time.perf_counter() - started, 1),
    }


def print_table(result: dict, write=print) -> None:
    o = result["outcomes"]
    write(
        f"Soak benchmark: {result['cycles']} cycles, fault rate {result['fault_rate']} per request, seed "
        f"{result['seed']} ({result['total_seconds']} s)"
    )
    write("")
    kinds = ", ".join(f"{k}: {n}" for k, n in result["faults_by_kind"].items())
    rows = [
        ("verification runs", f"{result['verifications']} (all runs stored: {result['runs_by_status']})"),
        ("runs not final", result["runs_not_final"]),
        ("API calls / retries", f"{result['api_calls']} / {result['retries']}"),
        ("faults injected", f"{result['faults_injected']} ({kinds})"),
        ("same findings as baseline", o["same"]),
        ("clear error", o["error"]),
        ("wrong findings / crashed", f"{o['wrong']} / {result['crashed']}"),
        (
            "plans applied / failed",
            f"{result['plans_applied']} / {result['plans_failed']} of {result['plans']} "
            f"({result['plans_failed_then_reapplied']} failed first and were re-applied, {result['reapplies']} "
            f"re-applies; {result['plan_build_errors']} plan builds refused by faults)",
        ),
        ("plans not final", result["plans_not_final"]),
        (
            "creates acted on",
            f"{result['creates']} ({result['creates_refused_as_existing']} more refused as already existing)",
        ),
        ("duplicates found", result["duplicates_found"]),
        (
            "onboarding tenant (combined plan)",
            f"{result.get('onboard_companies', 0)} companies; agreements at the end of the cycles: "
            f"{result.get('onboard_agreements_created', 0)} in all (one per company each cycle), "
            f"{result.get('agreement_duplicates', 0)} companies with two",
        ),
    ]
    width = max(len(r[0]) for r in rows)
    for name, value in rows:
        write(f"{name:<{width}}  {value}")
