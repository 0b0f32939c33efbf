"""Check runs: start one (at most one active per tenant), execute it through the checks, store the results,
and update the tenant's readiness, drift and stale markers. The Celery task and the CLI both call execute_run.
"""

from __future__ import annotations

import hashlib
import logging
import random
import time
from datetime import timedelta

import orjson
from celery import shared_task
from celery.exceptions import SoftTimeLimitExceeded
from django.conf import settings
from django.db import IntegrityError, transaction
from django.db.models import F, Q
from django.utils import timezone

from connectwise.checks.base import OK_STATUSES, Severity, Status, StepOutcome
from connectwise.checks.context import ReadHints
from connectwise.checks.names import normalize_company_name
from connectwise.checks.registry import READINESS_KEYS, STEP_KEYS, STEP_TITLES
from connectwise.checks.runner import gc_paused, run_steps
from connectwise.errors import ConnectWiseError

from . import mapping, webhooks
from .alerts import notify_stale, send_drift_alerts
from .billing import existing_billing_due, scheduled_steps
from .cw import choices_for, client_for, connection_info
from .delivery import claim_lease, redelivered
from .hosts import decide
from .models import AuditEvent, CheckRun, CompanyDirectory, DriftAlert, StepResult, Tenant
from .results import latest_results

log = logging.getLogger(__name__)


class NotConnected(Exception):
    """The tenant has no ConnectWise connection yet."""


def start_run(
    tenant: Tenant,
    *,
    trigger: str = CheckRun.Trigger.MANUAL,
    actor=None,
    steps: list[str] | None = None,
    enqueue: bool = True,
) -> tuple[CheckRun, bool]:
    """Create a queued run and enqueue it after commit. Returns (run, created); when another run is already
    active for the tenant, that run is returned with created=False (the database enforces one active run)."""
    steps = [s for s in (steps or []) if s in STEP_KEYS]
    try:
        with transaction.atomic():
            run = CheckRun.objects.create(tenant=tenant, trigger=trigger, actor=actor, steps=steps)
            AuditEvent.record(
                AuditEvent.Kind.RUN_STARTED,
                tenant=tenant,
                actor=actor or trigger,
                message=f"Check started ({', '.join(steps) if steps else 'all steps'})",
                run=str(run.uuid),
                trigger=trigger,
            )
    except IntegrityError:
        existing = CheckRun.objects.filter(tenant=tenant, status__in=CheckRun.ACTIVE).first()
        if existing is None:  # it finished in between: try once more
            return start_run(tenant, trigger=trigger, actor=actor, steps=steps, enqueue=enqueue)
        return existing, False
    if enqueue:
        transaction.on_commit(lambda: run_checks.delay(run.pk))
    return run, True


def claim(run_id: int, *, redelivered: bool = False, now=None) -> CheckRun | None:
    """Move a queued run to running; None when it is gone or someone else has it.

    A run already "running" is taken over (and executed again from the start) only when the worker that had it
    must be gone: this delivery is a redelivery of the task (acks_late + reject_on_worker_lost requeue the
    message when its worker process dies; a broker restores an unacked message only after its visibility
    timeout, which is longer than the task's time limit), or the task's hard time limit has passed since the run
    started (Celery would have killed it). Without this, a redelivered task skipped the run and it stayed
    "running" until the watchdog. The takeover is a compare-and-swap on started_at: one delivery wins.
    """
    claimed = claim_lease(
        CheckRun,
        run_id,
        ready=CheckRun.Status.QUEUED,
        busy=CheckRun.Status.RUNNING,
        lease_seconds=settings.CHECK_RUN_TIME_LIMIT + 30,  # the task's hard time limit
        redelivered=redelivered,
        now=now or timezone.now(),
        takeover={"progress": {}},
    )
    if claimed is None:
        return None
    if claimed == "taken_over":
        log.warning("run %s: taking over a run whose worker stopped", run_id)
    return CheckRun.objects.select_related("tenant").get(pk=run_id)


def execute_run(run: CheckRun) -> CheckRun:
    """Run the requested steps against the tenant's ConnectWise and store what they found. The cyclic garbage
    collector waits until the results are stored (``runner.gc_paused``): a large tenant's run allocates hundreds
    of thousands of objects, and each collection it would trigger meanwhile delays the result."""
    with gc_paused():
        return _execute_run(run)


def _execute_run(run: CheckRun) -> CheckRun:
    tenant = run.tenant
    requested = run.requested_steps()
    if not run.steps and "existing_billing" in requested:
        # "All steps" includes the costly existing_billing step (a read per agreement) only when it is due:
        # never read, older than EXISTING_BILLING_INTERVAL_DAYS, or choices, cutover or a repair changed since.
        if not existing_billing_due(tenant):
            requested = [k for k in requested if k != "existing_billing"]
    started = time.monotonic()
    connection = getattr(tenant, "connection", None)
    if connection is None:
        outcomes = [
            StepOutcome(
                key=k,
                status=Status.BLOCKED if k != "connection" else Status.FAIL,
                summary="No ConnectWise connection has been saved yet.",
            )
            for k in requested
        ]
        return finish(run, outcomes, calls=0, retries=0, started=started)

    decision = decide(connection.site)
    total = len(requested)

    last_write = [0.0]

    def progress(key: str, done: int) -> None:
        # One write at most every 0.3 s: the page polls once a second, and the steps after the connection
        # are evaluated in milliseconds once their data is in.
        now = time.monotonic()
        if done and now - last_write[0] < 0.3:
            return
        last_write[0] = now
        CheckRun.objects.filter(pk=run.pk).update(progress={"done": done, "total": total, "current": key})

    progress(requested[0], 0)
    try:
        client = client_for(connection, decision) if decision.allowed else None
    except ConnectWiseError as exc:
        return fail(
            run, f"Could not prepare the ConnectWise client: {exc}", started=started, detail=exc.detail()
        )
    except Exception as exc:  # e.g. the key cannot be decrypted: a clear error, never the key
        return fail(run, f"Could not prepare the ConnectWise client: {exc}", started=started)
    calls = retries = 0
    choices = choices_for(tenant, lazy=True)
    judged: dict[str, str] = {}

    def judge() -> None:  # while the first wave of reads is on the wire: reads the chosen companies too
        judged.update(choices_digests(choices))

    try:
        if client is None:
            outcomes = run_steps(
                None,
                choices,
                steps=requested,
                connection=connection_info(connection, decision),
                while_reading=judge,
            )
        else:
            with client:
                hints = ReadHints.from_stored(connection.read_hints)
                hints.directory_source = tenant.directory_source
                outcomes = run_steps(
                    client,
                    choices,
                    steps=requested,
                    on_progress=progress,
                    connection=connection_info(connection, decision),
                    hints=hints,
                    while_reading=judge,
                )
                calls, retries = client.stats.calls, client.stats.retries
                remember_reads(connection, client.codebase, hints)
    except ConnectWiseError as exc:
        return fail(run, f"ConnectWise error: {exc}", started=started, detail=exc.detail())
    judged = judged or choices_digests(choices)  # a run_steps that never called judge (none started a wave)
    return finish(run, outcomes, calls=calls, retries=retries, started=started, judged=judged)


def remember_reads(connection, codebase: str | None, hints: ReadHints) -> None:
    """Keep what this run learned for the next one's first wave: the codebase discovery found and the count of
    each paged resource (``Connection.read_hints``). Written only when it changed; a connection saved meanwhile
    (new site or keys: its knowledge was reset) is not overwritten with the old site's."""
    stored = hints.to_stored()
    changes: dict = {}
    if codebase and codebase != connection.codebase:
        changes["codebase"] = codebase
    if hints.observed and stored != (connection.read_hints or {}):
        changes["read_hints"] = stored
    if changes:
        type(connection).objects.filter(pk=connection.pk, updated_at=connection.updated_at).update(**changes)


def fail(
    run: CheckRun, message: str, *, started: float | None = None, detail: dict | None = None
) -> CheckRun:
    """Close the run as ``error`` with a message; ``detail`` is ``ConnectWiseError.detail()`` when ConnectWise's
    answer failed it (its code, message, path and request id, shown on the step and support pages). A
    ``Retry-After`` in it holds the tenant's scheduled checks back until the wait is over."""
    now = timezone.now()
    duration = int((time.monotonic() - started) * 1000) if started else None
    if CheckRun.objects.filter(pk=run.pk, status__in=CheckRun.ACTIVE).update(
        status=CheckRun.Status.ERROR,
        error=message[:2000],
        error_detail=detail,
        finished_at=now,
        duration_ms=duration,
        progress={},
    ):
        webhooks.on_run_ended(run)
    if detail and detail.get("retry_after"):
        hold_back(run.tenant_id, detail["retry_after"], now)
    run.refresh_from_db()
    return run


def hold_back(tenant_id: int, seconds: float, now) -> None:
    """ConnectWise asked us to wait ``seconds`` (``Retry-After``): the scheduled verification does not check the
    tenant again before then (``tasks.schedule_verifications`` starts tenants whose ``next_check_at`` is due)."""
    until = now + timedelta(seconds=seconds)
    Tenant.objects.filter(pk=tenant_id).filter(
        Q(next_check_at__isnull=True) | Q(next_check_at__lt=until)
    ).update(next_check_at=until)


def step_error_details(outcomes: list[StepOutcome]) -> dict[str, dict]:
    """step key -> the ConnectWise error detail of its first ``error`` finding, for the steps that ended ``error``."""
    out: dict[str, dict] = {}
    for o in outcomes:
        if o.status != Status.ERROR:
            continue
        for f in o.findings:
            error = f.data.get("error") if f.severity == Severity.ERROR else None
            if isinstance(error, dict):
                out[o.key] = error
                break
    return out


@transaction.atomic
def finish(
    run: CheckRun,
    outcomes: list[StepOutcome],
    *,
    calls: int,
    retries: int,
    started: float,
    judged: dict[str, str] | None = None,
) -> CheckRun:
    """Store step results, close the run, update the tenant's latest state and detect drift.

    ``judged`` is ``choices_digests()`` of the choices the run read: each result of a step in CHOICE_STEPS keeps
    its digest, and when the partner changed those choices while the run was under way, a follow-up run of the
    affected steps is queued with the results (``recheck_changed``)."""
    judged = judged or {}
    now = timezone.now()
    tenant = Tenant.objects.select_for_update().get(pk=run.tenant_id)
    StepResult.objects.bulk_create(
        [
            StepResult(
                run=run,
                tenant=tenant,
                key=o.key,
                status=str(o.status),
                findings=[f.to_dict() for f in o.findings],
                summary=(o.summary or "")[:300],
                created_at=now,
                choices_digest=judged.get(o.key, "") if o.key in CHOICE_STEPS else "",
            )
            for o in outcomes
        ]
    )
    previous = dict(tenant.step_statuses or {})
    statuses = {**previous, **{o.key: str(o.status) for o in outcomes}}
    # The advisory step (existing_billing) never decides readiness on its own (PRODUCT.md step 7).
    ready = all(statuses.get(k) in OK_STATUSES for k in READINESS_KEYS)
    updated = CheckRun.objects.filter(pk=run.pk, status__in=CheckRun.ACTIVE).update(
        status=CheckRun.Status.DONE,
        ready=ready,
        finished_at=now,
        api_calls=calls,
        api_retries=retries,
        duration_ms=int((time.monotonic() - started) * 1000),
        progress={"done": len(outcomes), "total": len(outcomes), "current": ""},
    )
    if not updated:  # the watchdog closed it first; its results are kept but it stays closed
        log.warning("run %s was closed before it finished", run.uuid)
    tenant.step_statuses = statuses
    tenant.ready = ready
    tenant.first_open_step = next((k for k in READINESS_KEYS if statuses.get(k) not in OK_STATUSES), "")
    tenant.has_error = any(statuses.get(k) == Status.ERROR for k in STEP_KEYS)
    tenant.last_checked_at = now
    errors = step_error_details(outcomes)
    ran = {o.key for o in outcomes}
    kept = {k: v for k, v in (tenant.step_errors or {}).items() if k not in ran}
    tenant.step_errors = {**kept, **errors}
    wait = max((e.get("retry_after") or 0 for e in errors.values()), default=0)
    if wait:  # rate limited: the run can be retried later; the schedule waits for ConnectWise
        until = now + timedelta(seconds=wait)
        if tenant.next_check_at is None or tenant.next_check_at < until:
            tenant.next_check_at = until
    _track_drift(tenant, run, previous, statuses, now)
    for o in outcomes:
        if o.key == "customers" and "directory" in o.facts:
            _store_directory(tenant, o.facts["directory"], now, o.facts.get("directory_source", ""))
        elif o.key == "customers" and o.facts.get("directory_source"):
            tenant.directory_refreshed_at = now  # read again and the list it holds is still what it says
        if o.key == "agreements" and "agreement_types" in o.facts:
            tenant.agreement_types = o.facts["agreement_types"]  # the Defaults for new agreements form
    tenant.save()
    webhooks.on_run_ended(run, previous)
    # In the same transaction: no page ever sees this run done, its results stale and no follow-up queued.
    recheck_changed(tenant.pk)
    run.refresh_from_db()
    return run


# -- results follow the partner's changes ------------------------------------------------------------------

# The steps whose result judges the partner's own choices (chosen companies, motions, target agreements, the
# imported billing customers): a change of those choices makes their stored result out of date.
CHOICE_STEPS = ("customers", "agreements", "existing_billing")

# step -> the steps whose results it reads or needs (PRODUCT.md "The steps"): every step needs a working
# connection and reads through the API member's role; the catalog's create repair needs the setup tables;
# agreements are judged for the chosen companies; existing billing reads the target agreements.
DEPENDS_ON: dict[str, tuple[str, ...]] = {
    "catalog": ("setup_tables",),
    "agreements": ("customers",),
    "existing_billing": ("customers", "agreements"),
}
ROOT_STEPS = ("connection", "security_role")


def with_dependents(keys) -> list[str]:
    """The steps ``keys`` and every step that depends on them, in wizard order ("Check now" on a step re-checks
    the steps whose result could change with it). ``connection`` and ``security_role`` reach every step."""
    wanted = {k for k in keys if k in STEP_KEYS}
    if wanted & set(ROOT_STEPS):
        return list(STEP_KEYS)
    changed = True
    while changed:
        changed = False
        for key, needs in DEPENDS_ON.items():
            if key in STEP_KEYS and key not in wanted and wanted.intersection(needs):
                wanted.add(key)
                changed = True
    return [k for k in STEP_KEYS if k in wanted]


def _digest(value) -> str:
    return hashlib.blake2b(orjson.dumps(value, option=orjson.OPT_SORT_KEYS), digest_size=16).hexdigest()


def choices_digests(choices) -> dict[str, str]:
    """step key -> a digest (32 hex characters) of the part of ``choices`` (a ``runner.TenantChoices``) that the
    step judges: customers judges which companies are chosen and the unmatched billing customers; agreements and
    existing_billing judge each chosen company's motion and target agreement."""
    return _choice_digests(
        [(c.cw_company_id, c.motion, c.agreement_id) for c in choices.companies], choices.billing_customers
    )


def current_choices_digests(tenant: Tenant) -> dict[str, str]:
    """``choices_digests`` of the tenant's stored choices, read as rows (no ``TenantChoices`` is built: the
    digests are all a check of changed choices needs)."""
    return _choice_digests(
        # In the unique index's order (the model's default, by name, would sort every row first).
        tenant.company_choices.order_by("cw_company_id").values_list(
            "cw_company_id", "motion", "agreement_id"
        ),
        tenant.billing_customers.filter(cw_company_id__isnull=True).values_list("name", flat=True),
    )


def _choice_digests(rows, billing_customers) -> dict[str, str]:
    """The digests of ``choices_digests`` from ``(cw_company_id, motion, agreement_id)`` rows and the names of the
    unmatched billing customers."""
    mapping = sorted((cid, motion, agreement_id or 0) for cid, motion, agreement_id in rows)
    # Sorted too: a company is chosen once (one_choice_per_company).
    companies = [cid for cid, _, _ in mapping]
    digests = {
        "customers": _digest({"companies": companies, "unmatched": sorted(billing_customers)}),
        "agreements": _digest(mapping),
    }
    digests["existing_billing"] = digests["agreements"]
    return digests


def stale_steps(tenant: Tenant, latest: dict[str, StepResult]) -> set[str]:
    """The steps whose latest stored result judged other choices than the tenant's current ones (the page says
    "changed since the last check" instead of showing that result). Results stored without a digest count as
    current."""
    judged = {k: latest[k].choices_digest for k in CHOICE_STEPS if k in latest and latest[k].choices_digest}
    return _judged_other_choices(tenant, judged)


def _judged_other_choices(tenant: Tenant, judged: dict[str, str]) -> set[str]:
    if not judged:
        return set()
    current = current_choices_digests(tenant)
    return {k for k, digest in judged.items() if current.get(k) != digest}


def _latest_choice_digests(tenant: Tenant) -> dict[str, str]:
    """step -> the choices digest of its newest stored result, for the steps in CHOICE_STEPS that have one
    (``stale_steps``'s input without loading every result's findings)."""
    latest: dict[str, str] = {}
    newest_first = (
        StepResult.objects.filter(tenant=tenant, key__in=CHOICE_STEPS)
        .order_by("-created_at", "-id")
        .values_list("key", "choices_digest")
    )
    for key, digest in newest_first[:200]:
        latest.setdefault(key, digest)
        if len(latest) == len(CHOICE_STEPS):
            break
    return {k: d for k, d in latest.items() if d}


def recheck_changed(tenant_id: int, *, actor=None) -> CheckRun | None:
    """Start a run of the choice steps whose latest result is out of date (and their dependents), unless a run is
    active (its finish calls this again). Returns the started run, or None."""
    tenant = Tenant.objects.filter(pk=tenant_id).first()
    if tenant is None or getattr(tenant, "connection", None) is None:
        return None
    if CheckRun.objects.filter(tenant=tenant, status__in=CheckRun.ACTIVE).exists():
        return None
    stale = _judged_other_choices(tenant, _latest_choice_digests(tenant))
    if not stale:
        return None
    run, created = start_run(
        tenant, trigger=CheckRun.Trigger.CHANGE, actor=actor, steps=with_dependents(stale)
    )
    return run if created else None


def recheck_after_change(tenant: Tenant, steps, *, actor=None) -> CheckRun | None:
    """The partner changed choices that ``steps`` judge: re-check those steps and their dependents now. When a
    run is already active, it is left alone; its finish starts the follow-up (``recheck_changed``)."""
    if getattr(tenant, "connection", None) is None:
        return None
    run, created = start_run(
        tenant, trigger=CheckRun.Trigger.CHANGE, actor=actor, steps=with_dependents(steps)
    )
    return run if created else None


def _track_drift(tenant: Tenant, run: CheckRun, previous: dict, current: dict, now) -> None:
    """A step that was pass/warn and is now fail/error is drift: one DriftAlert per episode, resolved on recovery.

    One read of the tenant's open alerts; a write only for an alert that opens or closes (a healthy fleet's runs
    write none)."""
    open_alerts = dict(
        DriftAlert.objects.filter(tenant=tenant, resolved_at__isnull=True).values_list("step", "pk")
    )
    open_steps = set(open_alerts)
    for key in STEP_KEYS:
        before, after = previous.get(key), current.get(key)
        if before in OK_STATUSES and after in (Status.FAIL, Status.ERROR) and key not in open_steps:
            try:
                with transaction.atomic():
                    DriftAlert.objects.create(tenant=tenant, step=key, run=run, detected_at=now)
            except IntegrityError:
                pass  # opened meanwhile: it is open all the same
            open_steps.add(key)
    recovered = [pk for key, pk in open_alerts.items() if current.get(key) in OK_STATUSES]
    if recovered:
        DriftAlert.objects.filter(pk__in=recovered, resolved_at__isnull=True).update(resolved_at=now)
        open_steps -= {key for key, pk in open_alerts.items() if pk in recovered}
    tenant.drift_steps = sorted(open_steps, key=STEP_KEYS.index)
    if open_steps and not tenant.drift_since:
        tenant.drift_since = now
    elif not open_steps:
        tenant.drift_since = None
    if open_steps:
        transaction.on_commit(lambda: send_drift_alerts.delay(tenant.pk))


def _store_directory(tenant: Tenant, rows: list[dict], now, source: str = "") -> None:
    """Refresh the cached company list behind the customers page from what the customers step read, and keep
    ``source`` (the key of the data it was built from) so that the next run need not build the same list.

    Built again but unchanged (a date passed that changed no row): one digest comparison and no rewrite of
    thousands of rows."""
    tenant.directory_source = source
    digest = hashlib.blake2b(
        orjson.dumps(rows, option=orjson.OPT_SORT_KEYS, default=str), digest_size=32
    ).hexdigest()
    tenant.directory_refreshed_at = now
    if digest == tenant.directory_digest:
        return
    tenant.directory_digest = digest
    before = mapping.targets(tenant)  # a target can move with the list (a plan created the agreement)
    CompanyDirectory.objects.filter(tenant=tenant).delete()
    CompanyDirectory.objects.bulk_create(
        [
            CompanyDirectory(
                tenant=tenant,
                cw_company_id=r["id"],
                identifier=(r.get("identifier") or "")[:100],
                name=(r.get("name") or "")[:200],
                normalized=normalize_company_name(r.get("name") or "")[:200],
                status_name=(r.get("status") or "")[:100],
                inactive=bool(r.get("inactive")),
                active_agreements=int(r.get("active_agreements") or 0),
                agreements=r.get("agreements") or [],
                refreshed_at=now,
            )
            for r in rows
        ],
        batch_size=1000,
    )
    mapping.follow_directory(tenant, before)


def close_stuck_runs(now=None) -> int:
    """Watchdog: a run active past its time limit (a worker died, or its message was lost) is closed as error.

    A running run is measured from when it started, not from when it was queued: a run that waited in a busy
    queue and then started must not be closed under the worker that is executing it."""
    now = now or timezone.now()
    cutoff = now - timedelta(seconds=settings.CHECK_RUN_TIME_LIMIT + 60)
    stuck = Q(status=CheckRun.Status.QUEUED, created_at__lt=cutoff) | Q(
        status=CheckRun.Status.RUNNING, started_at__lt=cutoff
    )
    stuck |= Q(status=CheckRun.Status.RUNNING, started_at__isnull=True, created_at__lt=cutoff)
    return CheckRun.objects.filter(stuck).update(
        status=CheckRun.Status.ERROR,
        error="The check did not finish in time (the worker may have stopped); run it again.",
        finished_at=now,
        progress={},
    )


def start_due_runs(now=None) -> int:
    """Start scheduled re-checks for connected tenants that are due (``Tenant.next_check_at``), at most
    ``VERIFY_MAX_CONCURRENT`` scheduled runs in flight; each tenant's next check is spread over the
    ``VERIFY_INTERVAL_HOURS`` interval with a little jitter. Also e-mails tenants gone stale. Returns how many runs
    were started. Called by the ``schedule_verifications`` beat task every minute."""
    now = now or timezone.now()
    interval = timedelta(hours=settings.VERIFY_INTERVAL_HOURS)
    # A tenant without a slot that was checked recently (it just connected, say) is due one interval after that
    # check, not now: otherwise every newly connected tenant is checked twice and the schedule bunches up.
    Tenant.objects.connected().filter(next_check_at__isnull=True, last_checked_at__gt=now - interval).update(
        next_check_at=F("last_checked_at") + interval
    )
    notify_stale(now)
    in_flight = CheckRun.objects.filter(status__in=CheckRun.ACTIVE, trigger=CheckRun.Trigger.SCHEDULE).count()
    room = max(0, settings.VERIFY_MAX_CONCURRENT - in_flight)
    if not room:
        return 0
    due = (
        Tenant.objects.connected()
        .filter(Q(next_check_at__isnull=True) | Q(next_check_at__lte=now))
        .exclude(runs__status__in=CheckRun.ACTIVE)
        # Longest overdue first; NULLs first on every database (SQLite and PostgreSQL disagree by default).
        .order_by(F("next_check_at").asc(nulls_first=True), F("last_checked_at").asc(nulls_first=True), "pk")[
            :room
        ]
    )
    started = 0
    for tenant in due:
        # existing_billing costs a read per agreement: at most every EXISTING_BILLING_INTERVAL_DAYS here.
        steps = scheduled_steps(tenant, now)
        _, created = start_run(tenant, trigger=CheckRun.Trigger.SCHEDULE, steps=steps)
        # A little jitter either way keeps tenants from drifting back into the same minute over the days.
        jitter = timedelta(seconds=random.uniform(-0.05, 0.05) * interval.total_seconds())
        Tenant.objects.filter(pk=tenant.pk).update(next_check_at=now + interval + jitter)
        started += int(created)
    return started


@shared_task(
    bind=True,
    name="onboarding.run_checks",
    soft_time_limit=settings.CHECK_RUN_TIME_LIMIT,
    time_limit=settings.CHECK_RUN_TIME_LIMIT + 30,
)
def run_checks(self, run_id: int) -> str:
    """The Celery task of a check run (enqueued by ``start_run``): claim, execute, and never leave it running."""
    run = claim(run_id, redelivered=redelivered(self))
    if run is None:
        return "skipped"
    try:
        run = execute_run(run)
    except SoftTimeLimitExceeded:
        fail(run, "The check took longer than its time limit and was stopped.")
    except Exception as exc:  # a bug must not leave the run "running"
        log.exception("run %s crashed", run.uuid)
        fail(run, f"The check crashed: {type(exc).__name__}. Support has the details in the worker log.")
    return run.status


__all__ = [
    "STEP_TITLES",
    "start_run",
    "claim",
    "execute_run",
    "finish",
    "fail",
    "close_stuck_runs",
    "latest_results",
]


def run_now(tenant: Tenant, *, trigger: str, actor=None, steps: list[str] | None = None) -> CheckRun:
    """Start and execute a run in this process (the CLI), through the same code as the background job."""
    run, created = start_run(tenant, trigger=trigger, actor=actor, steps=steps, enqueue=False)
    if not created:
        raise RunInProgress(
            f"A check is already running for {tenant.slug} (run {run.uuid}); try again when it ends."
        )
    claimed = claim(run.pk)
    if claimed is None:
        raise RunInProgress(f"Run {run.uuid} was picked up by a worker.")
    try:
        return execute_run(claimed)
    except Exception as exc:
        fail(claimed, f"The check crashed: {type(exc).__name__}")
        raise


class RunInProgress(Exception):
    pass
