"""``/api/v1/``: the billing sync's read of the wizard's result, and verifications on demand.

Every view reads stored results only (never ConnectWise) and never loads a private key: connections are read
with ``values()`` of their public fields. Reads carry an ``ETag`` and answer ``304`` to a matching
``If-None-Match``.
"""

from __future__ import annotations

import re
from datetime import timedelta

from django.db import IntegrityError, transaction
from django.shortcuts import get_object_or_404
from django.urls import reverse
from django.utils import timezone
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import status
from rest_framework.response import Response

from connectwise.checks.agreement_targets import directory_candidates
from connectwise.checks.base import OK_STATUSES
from connectwise.checks.registry import STEP_KEYS, STEP_TITLES

from .. import monitoring
from ..models import (
    BillingCustomer,
    CheckRun,
    CompanyChoice,
    CompanyDirectory,
    Connection,
    StepResult,
    Tenant,
)
from ..results import latest_results
from ..runs import start_run
from ..views.agreements import company_of_finding
from . import serializers as s
from .base import (
    COMMON_ERRORS,
    IF_NONE_MATCH,
    READ_ERRORS,
    ApiView,
    CursorPage,
    MappingPage,
    problem_responses,
)
from .models import IdempotencyKey
from .problems import Conflict, IdempotencyKeyReused

IDEMPOTENCY_TTL = timedelta(hours=24)
IDEMPOTENCY_KEY_PATTERN = r"^[\x21-\x7e]{1,255}$"
IDEMPOTENCY_KEY_RE = re.compile(IDEMPOTENCY_KEY_PATTERN)


def _iso(value):
    return value.isoformat() if value else None


def _tenant_summary(request, t: Tenant) -> dict:
    statuses = t.step_statuses or {}
    return {
        "slug": t.slug,
        "name": t.name,
        "url": request.build_absolute_uri(reverse("api:tenant", args=[t.slug])),
        "ready": bool(t.ready),
        "blocked_at": t.first_open_step or None,
        "steps": {k: statuses.get(k) for k in STEP_KEYS},
        "has_error": bool(t.has_error),
        "stale": bool(getattr(t, "stale", t.is_stale())),
        "drift": t.drift_since is not None,
        "drift_steps": list(t.drift_steps or []),
        "drift_since": _iso(t.drift_since),
        "last_verified_at": _iso(t.last_checked_at),
        "updated_at": _iso(t.updated_at),
    }


def _finding(f: dict) -> dict:
    return {
        "code": f["code"],
        "severity": f["severity"],
        "subject": f.get("subject", ""),
        "repairable": bool(f.get("repairable")),
    }


def _step(key: str, result: StepResult | None, status_: str | None = None) -> dict:
    return {
        "key": key,
        "title": STEP_TITLES.get(key, key),
        "status": result.status if result is not None else status_,
        "summary": result.summary if result is not None else "",
        "checked_at": _iso(result.created_at) if result is not None else None,
        "findings": [_finding(f) for f in result.findings] if result is not None else [],
    }


def _tenant_or_404(slug: str) -> Tenant:
    return get_object_or_404(Tenant, slug=slug)


class TenantList(ApiView):
    """Every tenant with its readiness, newest state first by slug; filters as on the support dashboard, and
    ``updated_since`` for an incremental sync. Cursor-paged (``next``/``previous``)."""

    pagination_class = CursorPage

    @extend_schema(
        operation_id="tenants_list",
        summary="Tenants and their readiness",
        parameters=[s.TenantFilterSerializer, IF_NONE_MATCH],
        responses={
            200: s.TenantSummarySerializer(many=True),
            **problem_responses(e400="A filter has a bad value.", e404="The cursor is not valid."),
            **READ_ERRORS,
        },
    )
    def get(self, request):
        # A plain dict, not the QueryDict: DRF reads an empty form value as "absent", but "?ready=" is a mistake to
        # report, not a filter to drop silently.
        filters = s.TenantFilterSerializer(data=request.query_params.dict())
        filters.is_valid(raise_exception=True)
        f = filters.validated_data
        now = timezone.now()
        qs = monitoring.with_markers(Tenant.objects.all(), now)
        if f.get("ready") is not None:
            qs = qs.filter(ready=f["ready"])
        if f.get("blocked_at"):
            qs = qs.filter(first_open_step=f["blocked_at"])
        if f.get("stale") is not None:
            qs = qs.filter(monitoring.stale_q(now)) if f["stale"] else qs.exclude(monitoring.stale_q(now))
        if f.get("drift") is not None:
            qs = qs.filter(drift_since__isnull=not f["drift"])
        if f.get("updated_since"):
            qs = qs.filter(updated_at__gte=f["updated_since"])
        paginator = self.pagination_class()
        page = paginator.paginate_queryset(qs, request, view=self)
        return paginator.get_paginated_response([_tenant_summary(request, t) for t in page])


class TenantDetail(ApiView):
    """One tenant: readiness, each step's latest status and finding codes, last verification, and the
    ConnectWise site and company id of its connection (never a key)."""

    @extend_schema(
        operation_id="tenants_retrieve",
        summary="One tenant: readiness, each step's status and findings, the connection (never keys)",
        parameters=[IF_NONE_MATCH],
        responses={200: s.TenantDetailSerializer, **problem_responses(e404="No such tenant."), **READ_ERRORS},
    )
    def get(self, request, slug: str):
        tenant = _tenant_or_404(slug)
        data = _tenant_summary(request, tenant)
        connection = Connection.objects.filter(tenant=tenant).values("site", "company_id").first()
        latest = latest_results(tenant)
        statuses = tenant.step_statuses or {}
        last_run = tenant.runs.order_by("-created_at").values_list("uuid", flat=True).first()
        data.update(
            connection=connection,
            step_details=[_step(k, latest.get(k), statuses.get(k)) for k in STEP_KEYS],
            mapping_url=request.build_absolute_uri(reverse("api:mapping", args=[slug])),
            runs_url=request.build_absolute_uri(reverse("api:runs", args=[slug])),
            latest_run_url=request.build_absolute_uri(reverse("api:run", args=[last_run]))
            if last_run
            else None,
        )
        return Response(data)


def _agreement_target(choice: CompanyChoice, agreements: list[dict]) -> tuple[dict | None, str]:
    if choice.agreement_id:
        explicit = next((a for a in agreements if a.get("id") == choice.agreement_id), None)
        return explicit or {"id": choice.agreement_id, "name": None}, "explicit"
    candidates = directory_candidates(agreements, choice.motion) or []
    if len(candidates) == 1:
        return candidates[0], "automatic"
    return None, "none"


class Mapping(ApiView):
    """The tenant's chosen customers as the billing sync needs them: ConnectWise company (id, identifier, name),
    the matched billing-side customer, the billing motion, the target agreement and whether the row is ready."""

    pagination_class = MappingPage

    @extend_schema(
        operation_id="tenants_mapping_list",
        summary="Every chosen customer: ConnectWise company, billing customer, motion, target agreement",
        parameters=[IF_NONE_MATCH],
        responses={
            200: s.MappingRowSerializer(many=True),
            **problem_responses(e404="No such tenant, or a bad cursor."),
            **READ_ERRORS,
        },
    )
    def get(self, request, slug: str):
        tenant = _tenant_or_404(slug)
        paginator = self.pagination_class()
        page = paginator.paginate_queryset(CompanyChoice.objects.filter(tenant=tenant), request, view=self)
        ids = [c.cw_company_id for c in page]
        directory = {
            d.cw_company_id: d for d in CompanyDirectory.objects.filter(tenant=tenant, cw_company_id__in=ids)
        }
        billing: dict[int, str] = {}
        for cid, name in BillingCustomer.objects.filter(tenant=tenant, cw_company_id__in=ids).values_list(
            "cw_company_id", "name"
        ):
            billing.setdefault(cid, name)
        latest = latest_results(tenant)
        agreement_company = {
            a["id"]: cid
            for cid, d in directory.items()
            for a in d.agreements
            if isinstance(a, dict) and "id" in a
        }
        findings: dict[int, list[dict]] = {}
        checked_at = {}
        for key in ("customers", "agreements"):
            result = latest.get(key)
            if result is None:
                continue
            checked_at[key] = (result.created_at, result.status)
            for f in result.findings:
                cid = company_of_finding(f, agreement_company)
                if cid is not None:
                    findings.setdefault(cid, []).append(f)
        rows = []
        for choice in page:
            d = directory.get(choice.cw_company_id)
            target, how = _agreement_target(choice, list(d.agreements) if d else [])
            own = findings.get(choice.cw_company_id, [])
            verified = all(
                key in checked_at
                and checked_at[key][0] >= choice.chosen_at
                and checked_at[key][1] in {str(x) for x in OK_STATUSES} | {"fail"}
                for key in ("customers", "agreements")
            )
            rows.append(
                {
                    "company_id": choice.cw_company_id,
                    "company_identifier": (d.identifier if d else "") or choice.identifier,
                    "company_name": (d.name if d else "") or choice.name,
                    "billing_customer": billing.get(choice.cw_company_id),
                    "motion": choice.motion,
                    "motion_label": CompanyChoice.Motion(choice.motion).label,
                    "agreement_id": target.get("id") if target else None,
                    "agreement_name": target.get("name") if target else None,
                    "agreement_chosen": how,
                    "ready": bool(target and verified and not any(f.get("severity") == "error" for f in own)),
                    "finding_codes": sorted({f["code"] for f in own}),
                }
            )
        return paginator.get_paginated_response(rows)


def run_as_api(request, run: CheckRun) -> dict:
    """A run as the API shows it (its state and, once done, each step's status and findings)."""
    results = {r.key: r for r in run.results.all()}
    return {
        "uuid": str(run.uuid),
        "url": request.build_absolute_uri(reverse("api:run", args=[run.uuid])),
        "tenant": run.tenant.slug,
        "status": run.status,
        "trigger": run.trigger,
        "ready": run.ready,
        "requested_steps": run.requested_steps(),
        "created_at": _iso(run.created_at),
        "started_at": _iso(run.started_at),
        "finished_at": _iso(run.finished_at),
        "api_calls": run.api_calls,
        "error": run.error or None,
        "steps": [_step(k, results[k]) for k in STEP_KEYS if k in results],
    }


class Runs(ApiView):
    """Start a verification of the tenant's ConnectWise (read-only: a verification never writes). Answers 202
    with the run and its URL in ``Location``; poll ``GET /runs/{uuid}/`` until ``status`` is done or error."""

    needs_verify_scope = True

    @extend_schema(
        operation_id="tenants_runs_create",
        summary="Start a verification (202 with the run's URL); idempotent with an Idempotency-Key",
        request=s.StartRunSerializer,
        parameters=[
            OpenApiParameter(
                "Idempotency-Key",
                {"type": "string", "pattern": IDEMPOTENCY_KEY_PATTERN, "minLength": 1, "maxLength": 255},
                OpenApiParameter.HEADER,
                required=False,
                description="1 to 255 visible ASCII characters, unique per request: the same key within 24 hours answers with "
                "the same run instead of starting another.",
            )
        ],
        responses={
            202: s.RunSerializer,
            **problem_responses(
                e400="Bad body or Idempotency-Key.",
                e403="The token's scope is read.",
                e404="No such tenant.",
                e409="The tenant has no ConnectWise connection to verify.",
                e415="The body is not JSON.",
                e422="The Idempotency-Key was used for another tenant.",
            ),
            **COMMON_ERRORS,
        },
    )
    def post(self, request, slug: str):
        tenant = _tenant_or_404(slug)
        body = s.StartRunSerializer(data=request.data if isinstance(request.data, dict) else {"steps": None})
        body.is_valid(raise_exception=True)
        key = request.headers.get("Idempotency-Key")
        if key is not None and not IDEMPOTENCY_KEY_RE.fullmatch(key):
            raise s.serializers.ValidationError(
                {"Idempotency-Key": ["Give 1 to 255 visible ASCII characters (no spaces)."]}
            )
        if not Connection.objects.filter(tenant=tenant).exists():
            raise Conflict(
                "This tenant has not saved a ConnectWise connection yet; there is nothing to verify."
            )
        token = request.auth
        with transaction.atomic():
            if key:
                IdempotencyKey.objects.filter(
                    token=token, created_at__lt=timezone.now() - IDEMPOTENCY_TTL
                ).delete()
                earlier = (
                    IdempotencyKey.objects.select_related("run", "tenant")
                    .filter(token=token, key=key)
                    .first()
                )
                if earlier is not None:
                    if earlier.tenant_id != tenant.pk:
                        raise IdempotencyKeyReused()
                    return self._accepted(request, earlier.run)
            run, _ = start_run(
                tenant, trigger=CheckRun.Trigger.API, steps=body.validated_data.get("steps") or []
            )
            if key:
                try:
                    with transaction.atomic():
                        IdempotencyKey.objects.create(token=token, key=key, tenant=tenant, run=run)
                except IntegrityError:  # a concurrent request with the same key won: answer with its run
                    earlier = IdempotencyKey.objects.get(token=token, key=key)
                    return self._accepted(request, earlier.run)
        return self._accepted(request, run)

    def _accepted(self, request, run: CheckRun) -> Response:
        data = run_as_api(request, run)
        return Response(data, status=status.HTTP_202_ACCEPTED, headers={"Location": data["url"]})


class RunDetail(ApiView):
    """A verification: queued, running, done (with each step's status and findings) or error."""

    @extend_schema(
        operation_id="runs_retrieve",
        summary="A verification's state and, once done, its findings",
        parameters=[IF_NONE_MATCH],
        responses={200: s.RunSerializer, **problem_responses(e404="No such run."), **READ_ERRORS},
    )
    def get(self, request, uuid):
        run = get_object_or_404(CheckRun.objects.select_related("tenant"), uuid=uuid)
        return Response(run_as_api(request, run))
