"""The support staff's readiness dashboard: every tenant at a glance, a tenant page with run history and what
changed, re-checks, CSV and JSON exports, and the approval of on-premise hosts.

Staff only (everyone else gets 404). Pages read stored results only and never call ConnectWise. The list, its
exports and the overview read the denormalised Tenant columns, so their query count does not grow with the number
of tenants (tests/onboarding/test_dashboard_queries.py, ``manage.py benchmark dashboard``). Staff never see keys:
connections are read with ``values()`` of the public fields, so the encrypted private key is never even loaded.
"""

from __future__ import annotations

import csv
import re
from dataclasses import dataclass, field
from datetime import datetime
from itertools import chain

from crispy_forms.helper import FormHelper
from crispy_forms.layout import Submit
from django import forms
from django.conf import settings
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import ValidationError
from django.core.paginator import Paginator
from django.db import IntegrityError, transaction
from django.db.models import F, Q, QuerySet
from django.http import Http404, JsonResponse, QueryDict, StreamingHttpResponse
from django.shortcuts import redirect, render
from django.urls import path, reverse
from django.utils import timezone
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from connectwise.checks.registry import READINESS_KEYS, STEP_KEYS, STEP_TITLES, STEPS
from connectwise.errors import detail_text
from connectwise.sites import CLOUD_HOSTS

from .. import monitoring
from ..access import require_support
from ..alerts import stale_mail_failure
from ..connections import shared_companies
from ..inputs import safe_next
from ..models import ApprovedHost, AuditEvent, CheckRun, Connection, DriftAlert, StepResult, Tenant
from ..runs import start_run
from . import recheck_progress
from .audit import run_uuids, with_run_results

PAGE_SIZE = 50
RUN_HISTORY = 50
AUDIT_EVENTS = 100
BULK_LIMIT = 200

SHOW_CHOICES = [
    ("", "All tenants"),
    ("ready", "Ready"),
    ("not_ready", "Not ready"),
    ("stale", "Stale"),
    ("errors", "Errors (could not check)"),
    ("drift", "Drift"),
    ("never", "Never checked"),
    ("undelivered", "Alert e-mail not delivered"),
]
SORT_CHOICES = [
    ("name", "Name (A–Z)"),
    ("-name", "Name (Z–A)"),
    ("-last_checked", "Last check (newest first)"),
    ("last_checked", "Last check (oldest first)"),
    ("readiness", "Readiness (least ready first)"),
    ("-readiness", "Readiness (most ready first)"),
]
SORTS = {
    "name": [F("name").asc(), F("pk").asc()],
    "-name": [F("name").desc(), F("pk").desc()],
    "-last_checked": [F("last_checked_at").desc(nulls_last=True), F("name").asc(), F("pk").asc()],
    "last_checked": [F("last_checked_at").asc(nulls_first=True), F("name").asc(), F("pk").asc()],
    "readiness": [F("ready").asc(), F("passed").asc(), F("name").asc(), F("pk").asc()],
    "-readiness": [F("ready").desc(), F("passed").desc(), F("name").asc(), F("pk").asc()],
}
LIST_FIELDS = (
    "slug",
    "name",
    "step_statuses",
    "ready",
    "first_open_step",
    "has_error",
    "last_checked_at",
    "drift_since",
    "drift_steps",
    "step_errors",
)


class FilterForm(forms.Form):
    """The list's GET parameters. Unknown values are ignored rather than refused: links should never break."""

    q = forms.CharField(required=False, max_length=100, label="Search")
    show = forms.ChoiceField(required=False, choices=SHOW_CHOICES, label="Show")
    step = forms.ChoiceField(
        required=False,
        choices=[("", "Any step")] + [(s.key, s.title) for s in STEPS],
        label="Blocked at step",
    )
    sort = forms.ChoiceField(required=False, choices=SORT_CHOICES, label="Sort by")


@dataclass
class TenantFilter:
    q: str = ""
    show: str = ""
    step: str = ""
    sort: str = "name"
    form: FilterForm | None = field(default=None, repr=False)

    @classmethod
    def from_params(cls, params) -> TenantFilter:
        form = FilterForm(params)
        form.is_valid()  # invalid fields are simply absent from cleaned_data
        data = {k: v for k, v in form.cleaned_data.items() if v}
        return cls(
            q=data.get("q", "").strip(),
            show=data.get("show", ""),
            step=data.get("step", ""),
            sort=data.get("sort", "name"),
            form=form,
        )

    @property
    def active(self) -> bool:
        return bool(self.q or self.show or self.step)

    def querystring(self, **changes) -> str:
        params = QueryDict(mutable=True)
        values = {"q": self.q, "show": self.show, "step": self.step, "sort": self.sort, **changes}
        for key, value in values.items():
            if value and not (key == "sort" and value == "name"):
                params[key] = value
        return params.urlencode()

    def apply(self, now: datetime) -> QuerySet[Tenant]:
        qs = monitoring.with_markers(Tenant.objects.only(*LIST_FIELDS), now)
        if self.q:
            qs = qs.filter(Q(name__icontains=self.q) | Q(slug__icontains=self.q))
        if self.show == "ready":
            qs = qs.filter(ready=True)
        elif self.show == "not_ready":
            qs = qs.filter(ready=False)
        elif self.show == "stale":
            qs = qs.filter(monitoring.stale_q(now))
        elif self.show == "errors":
            qs = qs.filter(has_error=True)
        elif self.show == "drift":
            qs = qs.filter(drift_since__isnull=False)
        elif self.show == "never":
            qs = qs.filter(last_checked_at__isnull=True)
        elif self.show == "undelivered":
            qs = qs.filter(monitoring.undelivered_q())
        if self.step:
            qs = qs.filter(first_open_step=self.step)
        return qs.order_by(*SORTS[self.sort])


def tenant_record(t: Tenant | dict) -> dict:
    """One tenant as plain data for the JSON endpoint: the same columns as the list and the CSV, no secrets."""
    get = t.get if isinstance(t, dict) else lambda k: getattr(t, k)
    statuses = get("step_statuses") or {}
    checked = get("last_checked_at")
    drift_since = get("drift_since")
    return {
        "name": get("name"),
        "slug": get("slug"),
        "ready": bool(get("ready")),
        "first_open_step": get("first_open_step") or None,
        "steps": {k: statuses.get(k) for k in STEP_KEYS},
        "last_checked_at": checked.isoformat() if checked else None,
        "stale": bool(get("stale")),
        "drift_since": drift_since.isoformat() if drift_since else None,
        "drift_steps": list(get("drift_steps") or []),
        "has_error": bool(get("has_error")),
        "errors": {k: v for k, v in (get("step_errors") or {}).items() if k in STEP_KEYS},
    }


def errors_text(step_errors: dict | None) -> str:
    """Every step's ConnectWise error in wizard order: ``step: HTTP 500 ConnectWiseApi "..." on GET ... | ...``."""
    step_errors = step_errors or {}
    return " | ".join(f"{k}: {detail_text(step_errors[k])}" for k in STEP_KEYS if k in step_errors)


def _funnel(overview: dict) -> dict:
    """Geometry of the server-rendered SVG funnel (no inline styles: CSP style-src 'self')."""
    total = overview["total"] or 0
    label_w, bar_w, row_h, gap = 150, 560, 26, 10
    rows = []
    for i, step in enumerate(s for s in STEPS if not s.advisory):  # the advisory step is not in the funnel
        passing, through = overview["passing"][step.key], overview["through"][step.key]
        y = i * (row_h + gap)
        rows.append(
            {
                "num": i + 1,
                "key": step.key,
                "title": step.title,
                "passing": passing,
                "through": through,
                "y": y,
                "text_y": y + row_h // 2 + 5,
                "passing_w": round(bar_w * passing / total) if total else 0,
                "through_w": round(bar_w * through / total) if total else 0,
                "percent": round(100 * through / total) if total else 0,
            }
        )
    return {
        "rows": rows,
        "total": total,
        "label_w": label_w,
        "bar_w": bar_w,
        "row_h": row_h,
        "count_x": label_w + bar_w + 10,
        "width": label_w + bar_w + 110,
        "height": len(STEPS) * (row_h + gap) - gap,
    }


@login_required
@require_GET
def dashboard(request):
    require_support(request)
    now = timezone.now()
    flt = TenantFilter.from_params(request.GET)
    page = Paginator(flt.apply(now), PAGE_SIZE).get_page(request.GET.get("page"))
    page.object_list = list(page.object_list)
    shared = shared_companies(t.pk for t in page.object_list)
    for t in page.object_list:
        t.shared_with = shared.get(t.pk, [])
    overview = monitoring.cached_overview(now=now)
    querystring = flt.querystring()
    return render(
        request,
        "dashboard/index.html",
        {
            "filter": flt,
            "form": flt.form,
            "page": page,
            "overview": overview,
            "funnel": _funnel(overview),
            "readiness_steps": len(READINESS_KEYS),  # the score t.passed counts these (not the advisory step)
            "recheck": recheck_progress.progress(request),  # a bulk re-check's live progress, while it runs
            "stale_mail_failed": stale_mail_failure(),
            "steps": STEPS,
            "stale_hours": settings.STALE_AFTER_HOURS,
            "step_titles": STEP_TITLES,
            "querystring": querystring,
            "page_querystring": f"{querystring}&page=" if querystring else "page=",
        },
    )


def _csv_cell(value) -> str:
    """Text a spreadsheet will not run as a formula (tenant names come from partners)."""
    text = "" if value is None else str(value)
    return "'" + text if text[:1] in ("=", "+", "-", "@", "\t", "\r") else text


class _Echo:
    def write(self, value):
        return value


@login_required
@require_GET
def export_csv(request):
    """The filtered list as CSV, streamed in one query however many tenants there are."""
    require_support(request)
    now = timezone.now()
    rows = (
        TenantFilter.from_params(request.GET)
        .apply(now)
        .values_list(
            "name",
            "slug",
            "ready",
            "first_open_step",
            "step_statuses",
            "last_checked_at",
            "stale",
            "drift_steps",
            "has_error",
            "step_errors",
        )
    )
    header = [
        "tenant",
        "slug",
        "ready",
        "first_open_step",
        *STEP_KEYS,
        "last_checked_at",
        "stale",
        "drift_steps",
        "has_error",
        "errors",
    ]

    def lines():
        for (
            name,
            slug,
            ready,
            first_open,
            statuses,
            checked,
            stale,
            drift,
            error,
            step_errors,
        ) in rows.iterator(chunk_size=2000):
            statuses = statuses or {}
            yield [
                _csv_cell(name),
                slug,
                "yes" if ready else "no",
                first_open,
                *(statuses.get(k, "") for k in STEP_KEYS),
                checked.isoformat() if checked else "",
                "yes" if stale else "no",
                " ".join(drift or []),
                "yes" if error else "no",
                _csv_cell(errors_text(step_errors)),
            ]

    writer = csv.writer(_Echo())
    response = StreamingHttpResponse(
        (writer.writerow(row) for row in chain([header], lines())), content_type="text/csv; charset=utf-8"
    )
    response["Content-Disposition"] = f'attachment; filename="tenants-{now:%Y%m%d-%H%M}.csv"'
    return response


@login_required
@require_GET
def tenants_json(request):
    """The filtered list as JSON, paged like the page (``?page=N``), with the same filters."""
    require_support(request)
    now = timezone.now()
    flt = TenantFilter.from_params(request.GET)
    page = Paginator(flt.apply(now), PAGE_SIZE).get_page(request.GET.get("page"))
    base = reverse("support_api_tenants")

    def link(number):
        return f"{base}?{flt.querystring(page=number)}" if number else None

    return JsonResponse(
        {
            "count": page.paginator.count,
            "page": page.number,
            "pages": page.paginator.num_pages,
            "page_size": PAGE_SIZE,
            "next": link(page.next_page_number() if page.has_next() else None),
            "previous": link(page.previous_page_number() if page.has_previous() else None),
            "steps": list(STEP_KEYS),
            "results": [tenant_record(t) for t in page.object_list],
        }
    )


def _support_tenant(slug: str) -> Tenant:
    tenant = Tenant.objects.filter(slug=slug).first()
    if tenant is None:
        raise Http404
    return tenant


def _connection_summary(tenant: Tenant) -> dict | None:
    """The public part of the connection. values() of named fields: the encrypted private key is never loaded."""
    return (
        Connection.objects.filter(tenant=tenant)
        .values("site", "company_id", "public_key", "codebase", "updated_at", "updated_by__email")
        .first()
    )


def _findings_key(f: dict) -> tuple[str, str]:
    return (f.get("code", ""), f.get("subject", ""))


def compare_results(
    before: dict[str, StepResult], after: dict[str, StepResult], steps: list[str] | None = None
) -> list[dict]:
    """Per step (every step, or the keys in ``steps``: those the newer run checked): the status change and the
    findings added/removed (matched by code and subject)."""
    changes = []
    for step in STEPS:
        if steps is not None and step.key not in steps:
            continue
        old, new = before.get(step.key), after.get(step.key)
        old_findings = {_findings_key(f): f for f in (old.findings if old else [])}
        new_findings = {_findings_key(f): f for f in (new.findings if new else [])}
        added = [f for k, f in new_findings.items() if k not in old_findings]
        removed = [f for k, f in old_findings.items() if k not in new_findings]
        old_status = old.status if old else ""
        new_status = new.status if new else ""
        changes.append(
            {
                "key": step.key,
                "title": step.title,
                "before": old_status,
                "after": new_status,
                "in_both": bool(old and new),
                "status_changed": bool(old and new and old_status != new_status),
                "added": added,
                "removed": removed,
                "changed": bool(old and new and (old_status != new_status or added or removed)),
            }
        )
    return changes


def _pick_runs(request, tenant: Tenant, history: list[CheckRun]) -> tuple[CheckRun | None, CheckRun | None]:
    """The run to show (``?run=``, default the latest finished one) and the one to compare it with (``?against=``,
    default ``previous_like(run)``). Looked up in the history first, so usually without a query."""
    by_uuid = {str(r.uuid): r for r in history}
    finished = [r for r in history if r.status == CheckRun.Status.DONE]

    def lookup(value: str | None) -> CheckRun | None:
        if not value:
            return None
        if value in by_uuid:
            return by_uuid[value]
        try:
            return CheckRun.objects.select_related("actor").filter(tenant=tenant, uuid=value).first()
        except ValidationError:  # not a UUID
            return None

    run = lookup(request.GET.get("run")) or (finished[0] if finished else None)
    against = lookup(request.GET.get("against"))
    if against is None and run is not None and "against" not in request.GET:
        against = previous_like(run, finished)
    if against is not None and run is not None and against.pk == run.pk:
        against = None
    return run, against


def previous_like(run: CheckRun, finished: list[CheckRun]) -> CheckRun | None:
    """The run to compare ``run`` with by default: the latest finished run before it that covered the same steps,
    else the latest full run before it (a one-step run compared with a full one read "not in this run" for every
    other step). ``finished`` is newest first."""
    earlier = [r for r in finished if r.created_at < run.created_at and r.pk != run.pk]
    same = set(run.requested_steps())
    return next((r for r in earlier if set(r.requested_steps()) == same), None) or next(
        (r for r in earlier if not r.steps), None
    )


@login_required
@require_GET
def tenant_detail(request, slug):
    require_support(request)
    tenant = _support_tenant(slug)
    now = timezone.now()
    history = list(
        CheckRun.objects.filter(tenant=tenant)
        .select_related("actor")
        .order_by("-created_at", "-id")[:RUN_HISTORY]
    )
    run, against = _pick_runs(request, tenant, history)
    audit = list(AuditEvent.objects.filter(tenant=tenant)[:AUDIT_EVENTS])
    by_uuid = {str(r.uuid): r for r in history}
    # One read of step results: the two runs compared and the runs the audit trail shows the results of.
    picked = {r.pk for r in (run, against) if r is not None}
    picked |= {by_uuid[u].pk for u in run_uuids(audit) if u in by_uuid}
    results: dict[int, dict[str, StepResult]] = {pk: {} for pk in picked}
    if picked:
        for r in StepResult.objects.filter(run_id__in=picked):
            results[r.run_id][r.key] = r
    run_results = results.get(run.pk, {}) if run else {}
    # Only the steps the shown run checked: a step it did not check (a one-step run, or the seats step when not
    # due) would read "not in this run" and compare nothing.
    changes = compare_results(results.get(against.pk, {}), run_results, list(run_results)) if against else []
    connection = _connection_summary(tenant)
    return render(
        request,
        "dashboard/tenant.html",
        {
            "tenant": tenant,
            "connection": connection,
            "shared_with": shared_companies([tenant.pk]).get(tenant.pk, []),
            "stale": tenant.is_stale(now),
            "steps": STEPS,
            "step_titles": STEP_TITLES,
            "history": history,
            "active_run": next((r for r in history if r.is_active), None),
            "run": run,
            "against": against,
            "run_steps": [(s, run_results.get(s.key)) for s in STEPS] if run else [],
            "changes": changes,
            "changed_count": sum(1 for c in changes if c["changed"]),
            "audit": with_run_results(audit, by_uuid, results),
            "drift_alerts": list(DriftAlert.objects.filter(tenant=tenant)[:20]),
            "drift_titles": [STEP_TITLES.get(k, k) for k in tenant.drift_steps or []],
            "host_refused": any(
                f.get("code") == "connection.host_not_allowed"
                for f in (run_results["connection"].findings if "connection" in run_results else [])
            ),
        },
    )


def _back(request, default: str) -> str:
    return safe_next(request, default)


def _recheck(tenants, user, runs: list[CheckRun] | None = None) -> tuple[int, int, int]:
    """Start support-triggered runs; returns (started, already running, not connected). Each run started or found
    running is appended to ``runs`` when given."""
    started = running = unconnected = 0
    for tenant in tenants:
        if not tenant.connected:
            unconnected += 1
            continue
        run, created = start_run(tenant, trigger=CheckRun.Trigger.SUPPORT, actor=user)
        if runs is not None:
            runs.append(run)
        started += int(created)
        running += int(not created)
    return started, running, unconnected


def _recheck_message(request, started: int, running: int, unconnected: int) -> None:
    parts = []
    if started:
        parts.append(f"Started {started} check{'s' if started != 1 else ''}.")
    if running:
        parts.append(f"{running} already running.")
    if unconnected:
        parts.append(f"{unconnected} skipped: no ConnectWise connection yet.")
    level = messages.SUCCESS if started else messages.INFO
    messages.add_message(request, level, " ".join(parts) or "Nothing to check.")


@login_required
@require_POST
def recheck_tenant(request, slug):
    require_support(request)
    tenant = monitoring.with_markers(Tenant.objects.filter(slug=slug)).first()
    if tenant is None:
        raise Http404
    _recheck_message(request, *_recheck([tenant], request.user))
    return redirect(_back(request, reverse("support_tenant", args=[slug])))


@login_required
@require_POST
def bulk_recheck(request):
    require_support(request)
    slugs = list(dict.fromkeys(s for s in request.POST.getlist("tenant") if s))[:BULK_LIMIT]
    if not slugs:
        messages.info(request, "Select at least one tenant to re-check.")
    else:
        tenants = list(monitoring.with_markers(Tenant.objects.filter(slug__in=slugs)).order_by("pk"))
        runs: list[CheckRun] = []
        _recheck_message(request, *_recheck(tenants, request.user, runs))
        recheck_progress.follow(request, runs)  # the dashboard shows their progress live
    return redirect(_back(request, reverse("dashboard")))


HOSTNAME_RE = re.compile(r"^(?=.{1,253}$)([a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z]{2,63}(:\d{1,5})?$")


class ApproveHostForm(forms.Form):
    hostname = forms.CharField(
        label="On-premise host name",
        max_length=260,
        help_text="The partner's ConnectWise server as its API is reached, e.g. cw.partner.example.",
        widget=forms.TextInput(attrs={"autocomplete": "off", "spellcheck": "false"}),
    )
    note = forms.CharField(
        label="Note",
        required=False,
        max_length=200,
        help_text="Why, or which partner asked (kept in the audit trail).",
    )
    tenant = forms.SlugField(required=False, widget=forms.HiddenInput)

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.helper = FormHelper()
        self.helper.add_input(Submit("approve", "Approve host"))

    def clean_hostname(self) -> str:
        host = self.cleaned_data["hostname"].strip().lower()
        host = re.sub(r"^[a-z]+://", "", host).split("/", 1)[0].rstrip(".")
        if not HOSTNAME_RE.match(host):
            raise forms.ValidationError("Enter a host name such as cw.partner.example (no address, no path).")
        if host in CLOUD_HOSTS:
            raise forms.ValidationError(
                "This is a ConnectWise cloud host: partners can use it without approval."
            )
        if ApprovedHost.objects.filter(hostname=host).exists():
            raise forms.ValidationError("This host is already approved.")
        return host

    def clean_tenant(self) -> Tenant | None:
        slug = self.cleaned_data.get("tenant")
        return Tenant.objects.filter(slug=slug).first() if slug else None


@login_required
@require_http_methods(["GET", "POST"])
def hosts(request):
    """Approve an on-premise ConnectWise host so that partners may connect to it (it still has to resolve to
    public addresses when they do: see onboarding.netguard)."""
    require_support(request)
    initial = {
        "hostname": request.GET.get("hostname", "")[:260],
        "tenant": request.GET.get("tenant", "")[:60],
    }
    form = ApproveHostForm(request.POST or None, initial=initial)
    if request.method == "POST" and form.is_valid():
        host, note, tenant = (
            form.cleaned_data["hostname"],
            form.cleaned_data["note"],
            form.cleaned_data["tenant"],
        )
        try:
            with transaction.atomic():
                ApprovedHost.objects.create(hostname=host, approved_by=request.user, note=note)
                AuditEvent.record(
                    AuditEvent.Kind.HOST_APPROVED,
                    tenant=tenant,
                    actor=request.user,
                    message=f"On-premise host {host} approved" + (f": {note}" if note else ""),
                    hostname=host,
                    note=note,
                )
        except IntegrityError:
            messages.info(request, f"{host} was already approved.")
        else:
            messages.success(request, f"{host} is approved. Partners can now connect to it.")
        if tenant is not None:
            return redirect("support_tenant", slug=tenant.slug)
        return redirect("support_hosts")
    approved = list(ApprovedHost.objects.select_related("approved_by").order_by("-approved_at")[:200])
    return render(request, "dashboard/hosts.html", {"form": form, "approved": approved})


urlpatterns = [
    path("support/", dashboard, name="dashboard"),
    path("support/export.csv", export_csv, name="support_export"),
    path("support/api/tenants.json", tenants_json, name="support_api_tenants"),
    path("support/recheck/", bulk_recheck, name="support_bulk_recheck"),
    path("support/recheck/progress/", recheck_progress.recheck_progress, name="support_recheck_progress"),
    path("support/hosts/", hosts, name="support_hosts"),
    path("support/t/<slug:slug>/", tenant_detail, name="support_tenant"),
    path("support/t/<slug:slug>/recheck/", recheck_tenant, name="support_recheck"),
]
