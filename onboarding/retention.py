"""History that does not grow without bound: prune old check runs, keep every change.

At 10,000 tenants checked daily the run and step-result tables grow by about 10,000 runs and 60,000 step results a
day. ``prune_runs`` deletes finished runs older than ``RUN_RETENTION_DAYS`` except the ones the product still needs:

- a run holding a step result whose status differs from that step's previous result for the tenant (drift,
  recovery, or the step's first result): the tenant page can still show every change, each kept run compared
  with the kept run before it;
- a run holding the latest result of any step of its tenant (the wizard and the readiness columns read those);
- each tenant's latest run;
- a run that a drift alert points to;
- queued and running runs (never touched).

It works tenant by tenant in chunks and deletes in batches of ``batch_size`` runs, each its own short transaction,
so the tables are never locked for long. Repair plans that named a deleted run keep their rows (``SET_NULL``).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from django.conf import settings
from django.db import transaction
from django.db.models import F, Max, Q, Window
from django.db.models.functions import Lag
from django.utils import timezone

from .models import CheckRun, DriftAlert, StepResult

TENANT_CHUNK = 200


@dataclass
class PruneResult:
    """What one ``prune_runs`` call did: runs and step results deleted, runs examined and kept (old ones only)."""

    runs_deleted: int = 0
    results_deleted: int = 0
    runs_kept: int = 0
    finished: bool = True  # False when ``max_runs`` stopped it early; the next call goes on


def runs_to_keep(tenant_ids: list[int], cutoff: datetime) -> set[int]:
    """The ids of finished runs older than ``cutoff`` among ``tenant_ids`` that pruning must keep (see module doc)."""
    old_results = StepResult.objects.filter(tenant_id__in=tenant_ids, run__created_at__lt=cutoff)
    # The previous result of the same step of the same tenant; an old result's predecessors are all old too, so
    # filtering to old results before the window changes nothing for them.
    changed = (
        old_results.annotate(
            previous=Window(
                Lag("status"), partition_by=[F("tenant_id"), F("key")], order_by=[F("created_at"), F("id")]
            )
        )
        .filter(Q(previous__isnull=True) | ~Q(previous=F("status")))
        .values_list("run_id", flat=True)
    )
    keep = set(changed)
    latest_result_ids = (
        StepResult.objects.filter(tenant_id__in=tenant_ids)
        .values("tenant_id", "key")
        .annotate(latest=Max("id"))
        .values_list("latest", flat=True)
    )
    keep.update(StepResult.objects.filter(id__in=list(latest_result_ids)).values_list("run_id", flat=True))
    latest_runs = (
        CheckRun.objects.filter(tenant_id__in=tenant_ids)
        .values("tenant_id")
        .annotate(latest=Max("id"))
        .values_list("latest", flat=True)
    )
    keep.update(latest_runs)
    keep.update(DriftAlert.objects.filter(tenant_id__in=tenant_ids).values_list("run_id", flat=True))
    return keep


def prune_runs(
    now: datetime | None = None,
    *,
    days: int | None = None,
    batch_size: int = 500,
    max_runs: int | None = None,
) -> PruneResult:
    """Delete finished runs older than ``days`` (default ``settings.RUN_RETENTION_DAYS``) but those to keep.

    ``days`` of 0 turns pruning off. ``max_runs`` bounds the work of one call (the beat task passes it so that a
    first prune of a large backlog is spread over several ticks); ``PruneResult.finished`` says whether it got
    through everything.
    """
    days = settings.RUN_RETENTION_DAYS if days is None else days
    result = PruneResult()
    if days <= 0:
        return result
    cutoff = (now or timezone.now()) - timedelta(days=days)
    finished = [CheckRun.Status.DONE, CheckRun.Status.ERROR]
    old = CheckRun.objects.filter(created_at__lt=cutoff, status__in=finished)
    tenant_ids = sorted(set(old.values_list("tenant_id", flat=True)))
    for start in range(0, len(tenant_ids), TENANT_CHUNK):
        chunk = tenant_ids[start : start + TENANT_CHUNK]
        keep = runs_to_keep(chunk, cutoff)
        candidates = list(old.filter(tenant_id__in=chunk).order_by("id").values_list("id", flat=True))
        doomed = [pk for pk in candidates if pk not in keep]
        result.runs_kept += len(candidates) - len(doomed)
        for i in range(0, len(doomed), batch_size):
            if max_runs is not None and result.runs_deleted >= max_runs:
                result.finished = False
                return result
            batch = doomed[i : i + batch_size]
            with transaction.atomic():
                # Step results go with their run (CASCADE, deleted in one statement: no signals on them).
                _, per_model = CheckRun.objects.filter(pk__in=batch, status__in=finished).delete()
            result.results_deleted += per_model.get(StepResult._meta.label, 0)
            result.runs_deleted += per_model.get(CheckRun._meta.label, 0)
    return result
