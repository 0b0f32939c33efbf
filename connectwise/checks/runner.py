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
from dataclasses import replace

from connectwise.errors import ConnectWiseError

from .base import OK_STATUSES, ConnectWiseApi, Status, StepOutcome
from .choices import MOTIONS, ChosenCompany, ConnectionInfo, TenantChoices
from .context import ReadHints, ResourceError, RunContext
from .failures import read_error, resource_for_path
from .registry import READINESS_KEYS, STEP_TITLES, STEPS, get_step, step_module

log = logging.getLogger(__name__)


def run_steps(
    client: ConnectWiseApi | None,
    choices: TenantChoices,
    steps: list[str] | None = None,
    on_progress: Callable[[str, int], None] | None = None,
    connection: ConnectionInfo | None = None,
    hints: ReadHints | None = None,
    while_reading: Callable[[], None] | None = None,
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
    are discarded. ``hints.observed`` receives this run's counts, for the caller to keep. ``while_reading`` (the
    caller's own work that needs no ConnectWise data) is called once, as soon as the first wave is on the wire,
    so that it costs no time of its own; exceptions it raises propagate.
    """
    wanted = set(steps) if steps else set(READINESS_KEYS)
    for key in wanted:
        get_step(key)  # unknown keys fail loudly
    with gc_paused():
        return _run_steps(client, choices, wanted, on_progress, connection, hints, while_reading)


@contextmanager
def gc_paused():
    """Pause the cyclic garbage collector (nested pauses are fine: only the outermost one resumes it).

    A large tenant's pages become tens of thousands of small dicts with no reference cycles; the cyclic
    collector would walk them again and again while they are built (about a third of the evaluation time in
    ``benchmark verify``). Reference counting still frees everything; one collection runs afterwards.
    ``onboarding.runs.execute_run`` also holds it while it stores the results, so that collection runs once the
    run is finished, not in the middle of storing it."""
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


def _run_steps(
    client: ConnectWiseApi | None,
    choices: TenantChoices,
    wanted: set[str],
    on_progress: Callable[[str, int], None] | None,
    connection: ConnectionInfo | None,
    hints: ReadHints | None = None,
    while_reading: Callable[[], None] | None = None,
) -> list[StepOutcome]:
    ctx = RunContext(client, choices, connection, hints=hints)
    try:
        return _evaluate_steps(ctx, choices, wanted, on_progress, while_reading)
    finally:
        ctx.close()


def _evaluate_steps(
    ctx: RunContext,
    choices: TenantChoices,
    wanted: set[str],
    on_progress: Callable[[str, int], None] | None,
    while_reading: Callable[[], None] | None = None,
) -> list[StepOutcome]:
    requested = [s.key for s in STEPS if s.key in wanted]
    # Every step the requested ones depend on is evaluated too (only the requested ones are returned).
    needed = _with_requirements(requested)
    refused = ctx.connection is not None and bool(ctx.connection.host_refused_reason)
    if ctx.client is not None and not refused and "connection" in needed:
        # One wave: what the steps need if the connection passes (its own reads included).
        assumed = {"connection": StepOutcome("connection", Status.PASS)}
        ctx.start_wave(_needs(needed, assumed, choices))
    if while_reading is not None:
        while_reading()
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
        return read_error(key, exc.cause, exc.resource)
    except ConnectWiseError as exc:
        return read_error(key, exc, resource_for_path(exc.path or ""), exc.path or "")


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
    write_needs = getattr(step_module(outcome.key), "write_needs", None)  # RepairableStep hook
    changed = []
    for f in outcome.findings:
        need = write_needs(f) if write_needs is not None and f.repairable else None
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
    blocked_by_choices = getattr(step_module(key), "blocked_reason", None)  # StepModule's optional hook
    return blocked_by_choices(choices) if blocked_by_choices is not None else None


def _needs(needed: set[str], outcomes: dict[str, StepOutcome], choices: TenantChoices) -> set[str]:
    keys: set[str] = set()
    for info in STEPS:
        if info.key == "connection" or info.key not in needed:
            continue
        if _blocked_reason(info.key, outcomes, choices):
            continue
        module = step_module(info.key)
        keys |= set(module.needs(choices))
        if hasattr(module, "plan_operations"):
            keys.add("my_security")  # to offer only the repairs the role allows (limit_repairs_to_role)
    return keys


__all__ = [
    "MOTIONS",
    "ChosenCompany",
    "ConnectionInfo",
    "TenantChoices",
    "evaluate",
    "gc_paused",
    "limit_repairs_to_role",
    "run_steps",
]
