"""Run the wizard's checks for one tenant: the entry point of the background job and the CLI.

``run_steps`` checks the connection first (every other step requires it), then prefetches, in one concurrent
wave, every resource the remaining steps need, and evaluates the steps in wizard order. It returns one outcome per
requested step, blocked ones included. Checks never write anything; the caller stores what comes back.
"""

from __future__ import annotations

import gc
import logging
from collections.abc import Callable
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from datetime import date
from typing import Any

from connectwise.errors import ConnectWiseError, Forbidden, RateLimited, ServerError

from . import codes
from .base import OK_STATUSES, Finding, Severity, Status, StepOutcome
from .context import RESOURCES, ReadHints, Resource, ResourceError, RunContext
from .registry import READINESS_KEYS, STEP_TITLES, STEPS, get_step, step_module

log = logging.getLogger(__name__)

MOTIONS = ("monthly", "azure", "annual")


@dataclass(frozen=True)
class ChosenCompany:
    cw_company_id: int
    motion: str = "monthly"  # "monthly", "azure" or "annual"
    agreement_id: int | None = None  # the partner's explicit target; None = choose automatically


@dataclass(frozen=True)
class TenantChoices:
    companies: list[ChosenCompany] = field(default_factory=list)
    billing_customers: list[str] = field(default_factory=list)  # imported names without an explicit match
    cutover: date | None = (
        None  # last day existing additions bill before the sync takes over (existing_billing)
    )
    # motion -> defaults for the agreements the product creates (connectwise.checks.agreement_defaults)
    agreement_defaults: dict = field(default_factory=dict)


@dataclass(frozen=True)
class ConnectionInfo:
    site_entered: str  # what the partner typed
    api_host: str  # the host we call (after rewriting a browser host)
    host_refused_reason: str | None = None  # set when the host guard refused it: no call is made
    company_id: str = ""  # for messages only


def run_steps(
    client: Any,
    choices: TenantChoices,
    steps: list[str] | None = None,
    on_progress: Callable[[str, int], None] | None = None,
    connection: ConnectionInfo | None = None,
    hints: ReadHints | None = None,
) -> list[StepOutcome]:
    """Outcomes of the requested steps (the six required ones when ``steps`` is None: the advisory
    existing_billing step costs a read per agreement and runs only when asked for) in wizard order.

    ``client`` may be None when the host was refused (``connection.host_refused_reason``): the connection step
    fails without a call and every other step is blocked. ``on_progress(step_key, steps_done)`` is called before
    each step is evaluated.

    Every read of the run starts at once: companyinfo and system/info (the connection step) together with every
    resource the other steps need, and with ``hints`` (the last run's counts) the pages those counts predict;
    only pages that growth added wait for ``/count`` (a second round trip). When the client does not know the
    codebase yet, companyinfo goes first. Reads started for steps that end up blocked (the connection failed)
    are discarded. ``hints.observed`` receives this run's counts, for the caller to keep.
    """
    wanted = set(steps) if steps else set(READINESS_KEYS)
    for key in wanted:
        get_step(key)  # unknown keys fail loudly
    with _gc_paused():
        return _run_steps(client, choices, wanted, on_progress, connection, hints)


@contextmanager
def _gc_paused():
    """A large tenant's pages become tens of thousands of small dicts with no reference cycles; the cyclic
    collector would walk them again and again while they are built (about a third of the evaluation time in
    ``benchmark verify``). Reference counting still frees everything; one collection runs afterwards."""
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


def _run_steps(
    client: Any,
    choices: TenantChoices,
    wanted: set[str],
    on_progress: Callable[[str, int], None] | None,
    connection: ConnectionInfo | None,
    hints: ReadHints | None = None,
) -> list[StepOutcome]:
    ctx = RunContext(client, choices, connection, hints=hints)
    try:
        return _evaluate_steps(ctx, choices, wanted, on_progress)
    finally:
        ctx.close()


def _evaluate_steps(
    ctx: RunContext,
    choices: TenantChoices,
    wanted: set[str],
    on_progress: Callable[[str, int], None] | None,
) -> list[StepOutcome]:
    requested = [s.key for s in STEPS if s.key in wanted]
    # Every step the requested ones depend on is evaluated too (only the requested ones are returned).
    needed = _with_requirements(requested)
    refused = ctx.connection is not None and bool(ctx.connection.host_refused_reason)
    if ctx.client is not None and not refused and "connection" in needed:
        # One wave: what the steps need if the connection passes (its own reads included).
        assumed = {"connection": StepOutcome("connection", Status.PASS)}
        ctx.start_wave(_needs(needed, assumed, choices))
    done = 0
    outcomes: dict[str, StepOutcome] = {}

    def progress(key: str) -> None:
        if on_progress is not None and key in wanted:
            on_progress(key, done)

    prefetched = False
    for info in STEPS:
        if info.key not in needed:
            continue
        progress(info.key)
        blocked = _blocked_reason(info.key, outcomes, choices)
        if blocked:
            outcomes[info.key] = StepOutcome(info.key, Status.BLOCKED, summary=blocked)
        else:
            if info.key != "connection" and not prefetched:
                ctx.prefetch(_needs(needed, outcomes, choices))
                prefetched = True
            outcomes[info.key] = limit_repairs_to_role(evaluate(info.key, ctx), ctx)
        if info.key in wanted:
            done += 1
    return [outcomes[k] for k in requested]


def evaluate(key: str, ctx: RunContext) -> StepOutcome:
    """One step's check, with failed reads turned into an ``error`` outcome."""
    module = step_module(key)
    try:
        return module.check(ctx)
    except ResourceError as exc:
        return _read_error(key, exc.cause, exc.resource)
    except ConnectWiseError as exc:
        return _read_error(key, exc, _resource_for_path(exc.path or ""), exc.path or "")


# Which security level a repair's write needs (docs/connectwise/REFERENCE.md §2 / PRODUCT.md's guard table), by finding.
_TABLE_SETUP = ("System", "Table Setup")
_CATALOG = ("Procurement", "Product Catalog")
_AGREEMENTS = ("Finance", "Agreements")


def _write_needs(finding: Finding) -> tuple[tuple[str, str], str] | None:
    code = finding.code
    if code.startswith("tables."):
        return _TABLE_SETUP, "addLevel" if code.endswith("_missing") else "editLevel"
    if code.startswith("catalog."):
        return _CATALOG, "addLevel" if code.endswith("_missing") else "editLevel"
    if code.startswith("agreements."):
        return _AGREEMENTS, "addLevel" if finding.data.get("create") else "editLevel"
    if code.startswith("billing."):
        return _AGREEMENTS, "editLevel"  # PATCH cancelledDate on an agreement's additions
    return None


def limit_repairs_to_role(outcome: StepOutcome, ctx: RunContext) -> StepOutcome:
    """A finding is offered as "we can fix this" only when the API member's role allows the write: a plan that
    is bound to fail with 403 would be approved for nothing. When the role cannot be read, we cannot know, and
    the finding stays repairable (the apply reports a refusal clearly)."""
    if not any(f.repairable for f in outcome.findings) or not ctx.loaded_ok("my_security"):
        return outcome
    levels = {
        (
            str(r.get("moduleName", "")).strip().lower(),
            str(r.get("moduleFunctionName", "")).strip().lower(),
        ): r
        for r in ctx.get("my_security") or []
    }
    changed = []
    for f in outcome.findings:
        need = _write_needs(f) if f.repairable else None
        if need is not None:
            (module, function), level = need
            row = levels.get((module.lower(), function.lower()), {})
            current = row.get(level) or "None"
            if current == "None":
                label = "Add" if level == "addLevel" else "Edit"
                f = replace(
                    f,
                    repairable=False,
                    explanation=(
                        f"{f.explanation} We can't fix this for you: the API member's security role has "
                        f"{module} > {function}: {label} set to None (see the Security role step)."
                    ),
                    data={
                        **f.data,
                        "repair_blocked_by_role": f"{module} > {function}: {label}",
                        "not_repairable": (
                            f"the API member's security role has {module} > {function}: {label} set to None"
                        ),
                    },
                )
        changed.append(f)
    return replace(outcome, findings=changed)


def _with_requirements(keys: list[str]) -> set[str]:
    out: set[str] = set()
    todo = list(keys)
    while todo:
        key = todo.pop()
        if key not in out:
            out.add(key)
            todo.extend(get_step(key).requires)
    return out


def _blocked_reason(key: str, outcomes: dict[str, StepOutcome], choices: TenantChoices) -> str | None:
    for required in get_step(key).requires:
        status = outcomes[required].status if required in outcomes else None
        if status not in OK_STATUSES:
            return f"Blocked until the {STEP_TITLES[required]} step passes."
    if key == "agreements" and not choices.companies:
        return "Blocked until at least one company is chosen on the Customers step."
    return None


def _needs(needed: set[str], outcomes: dict[str, StepOutcome], choices: TenantChoices) -> set[str]:
    keys: set[str] = set()
    for info in STEPS:
        if info.key == "connection" or info.key not in needed:
            continue
        if _blocked_reason(info.key, outcomes, choices):
            continue
        module = step_module(info.key)
        keys |= set(module.needs(choices))
        if hasattr(module, "build_plan"):
            keys.add("my_security")  # to offer only the repairs the role allows (limit_repairs_to_role)
    return keys


def _read_error(key: str, exc: ConnectWiseError, resource: Resource | None, path: str = "") -> StepOutcome:
    path = resource.path if resource else path
    if isinstance(exc, Forbidden):
        role = resource.needed_role if resource else "the Inquire level for this data"
        where = (
            f"{resource.role_function} > set Inquire Level to All"
            + (
                f', and in the "customize" list of Table Setup allow "{resource.customize_item}"'
                if resource.customize_item
                else ""
            )
            if resource
            else "the module that holds this data > set Inquire Level to All"
        )
        finding = Finding(
            codes.STEP_READ_FORBIDDEN,
            Severity.ERROR,
            subject=f"Read of {path} refused",
            explanation=(
                f"ConnectWise refused to let the API member read {path} (HTTP 403), so this step could not be "
                f"checked. The security role is missing {role}."
            ),
            fix=(
                "In ConnectWise go to System > Security Roles > open the API member's security role > "
                f"{where} > Save; then run the check again."
            ),
            data={"path": path, "role_function": role, "status": exc.status, "error": exc.detail()},
        )
        return StepOutcome(
            key, Status.ERROR, [finding], summary=f"Could not check: the role is missing {role}."
        )
    explanation, fix, summary = explain_failure(exc)
    finding = Finding(
        codes.STEP_CHECK_FAILED,
        Severity.ERROR,
        subject=f"Read of {path}" if path else "ConnectWise",
        explanation=explanation,
        fix=fix,
        data={"path": path, "error": exc.detail(), "status": exc.status, "transient": exc.transient},
    )
    return StepOutcome(key, Status.ERROR, [finding], summary=summary)


def explain_failure(exc: ConnectWiseError) -> tuple[str, str, str]:
    """``(explanation, fix, summary)`` for a check that ConnectWise's answer stopped, in words a person can act on.

    - Rate limited for longer than the client may wait (429 with ``Retry-After``): "rate limited by ConnectWise
      for N s"; the run can be retried after that and the scheduled checks wait for it (``onboarding.runs``).
    - A 5xx that carries ConnectWise's own ``message`` and still failed after the client's retries is not called
      temporary: ConnectWise fails on this data (issue 11 item 6: ``500 {"code": "ConnectWiseApi", "message":
      "String was not recognized as a valid Boolean."}`` on every try), so the text says to raise it with
      ConnectWise support, quoting the message, the request and its request id.
    - Other errors: what happened, with ConnectWise's message when there is one.
    """
    detail = exc.detail()
    request = " ".join(p for p in (detail["method"], detail["path"]) if p)
    rid = f", request id {detail['request_id']}" if detail["request_id"] else ""
    said = f' ConnectWise said: "{exc.cw_message}".' if exc.cw_message else ""
    status = f", HTTP {exc.status}" if exc.status else ""
    if isinstance(exc, RateLimited) and detail["retry_after"]:
        wait = detail["retry_after"]
        return (
            f"The check stopped: rate limited by ConnectWise for {wait} s (HTTP 429 on {request}{rid}). "
            "We do not retry before ConnectWise allows it; nothing was changed.",
            f"Run the check again after {wait} s; scheduled checks of this tenant wait until then. If this happens "
            "often, other integrations may be using the same API member's request limit.",
            f"Could not check: rate limited by ConnectWise for {wait} s.",
        )
    if isinstance(exc, ServerError) and exc.cw_message and exc.attempts > 1:
        code = f" ({exc.code})" if exc.code else ""
        return (
            f"ConnectWise failed on {request} with HTTP {exc.status} on each of {exc.attempts} tries, with its "
            f'own error message: "{exc.cw_message}"{code}. An error that repeats with a message like this '
            "comes from this data in your ConnectWise, not from a passing outage: waiting will not fix it. "
            "Nothing was changed.",
            f'Raise it with ConnectWise support, quoting the message "{exc.cw_message}", the request '
            f"{request}{rid} and the time of this check. Run the check again once they have fixed the data.",
            f"Could not check: ConnectWise fails on this data (HTTP {exc.status}).",
        )
    if exc.retry_after_seconds is not None and exc.retry_after_seconds > 0:
        wait = round(exc.retry_after_seconds)
        return (
            f"ConnectWise is unavailable and asked us to wait {wait} s ({type(exc).__name__}{status} on "
            f"{request}{rid}).{said} Nothing was changed.",
            f"Run the check again after {wait} s; scheduled checks of this tenant wait until then.",
            f"Could not check: ConnectWise asked us to wait {wait} s.",
        )
    return (
        f"ConnectWise did not answer the check ({type(exc).__name__}{status}"
        f"{' on ' + request if request else ''}{rid}).{said} "
        + (
            "This is usually temporary; nothing was changed."
            if exc.transient
            else "Nothing was changed; the details are below."
        ),
        "Run the check again in a few minutes. If it keeps failing, contact our support team"
        + (", quoting ConnectWise's message and the request id." if exc.cw_message or rid else "."),
        "Could not check: ConnectWise did not answer.",
    )


def _resource_for_path(path: str) -> Resource | None:
    path = path.strip("/")
    best = None
    for resource in RESOURCES.values():
        if path.startswith(resource.path) and (best is None or len(resource.path) > len(best.path)):
            best = resource
    return best
