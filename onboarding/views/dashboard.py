"""The support staff's readiness dashboard list: every tenant at a glance (filters, sort, pages, the overview
cards and funnel) and the same filtered list as CSV and JSON exports.

Staff only (everyone else gets 404). Reads stored results only and never calls ConnectWise. The list, its exports
and the overview read the denormalised Tenant columns, so their query count does not grow with the number of
tenants (tests/onboarding/test_dashboard_queries.py, ``manage.py benchmark dashboard``). The other support pages:
``support_tenant`` (one tenant), ``recheck`` (re-checks), ``approved_hosts`` (on-premise hosts).
"""

from __future__ import annotations

import csv
from dataclasses import dataclass, field
from datetime import datetime
from itertools import chain

from django import forms
from django.conf import settings
from django.contrib.auth.decorators import login_required
from django.core.paginator import Paginator
from django.db.models import F, Q, QuerySet
from django.http import JsonResponse, QueryDict, StreamingHttpResponse
from django.shortcuts import render
from django.urls import path, reverse
from django.utils import timezone
from django.views.decorators.http import require_GET

from connectwise.checks.registry import READINESS_KEYS, STEP_KEYS, STEP_TITLES, STEPS
from connectwise.errors import detail_text

from .. import monitoring
from ..access import require_support
from ..alerts import stale_mail_failure
from ..connections import shared_companies
from ..models import Tenant
from . import recheck_progress

PAGE_SIZE = 50

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


urlpatterns = [
    path("support/", dashboard, name="dashboard"),
    path("support/export.csv", export_csv, name="support_export"),
    path("support/api/tenants.json", tenants_json, name="support_api_tenants"),
]
