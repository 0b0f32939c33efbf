"""The first-sync rehearsal pages: the "Seats billed today" step's cutover and additions to end, and previews of
the first sync from a subscription CSV (upload, page, CSV export). Views never call ConnectWise: they store the
choice or the parsed file and enqueue the job that reads ConnectWise."""

from __future__ import annotations

import csv

from django import forms
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.http import Http404, HttpResponse
from django.shortcuts import redirect, render
from django.urls import path
from django.views.decorators.http import require_GET

from connectwise.preview import CAUSES, collision_text, export_rows
from connectwise.subscriptions import SubscriptionCsvError

from .. import billing
from ..access import TenantAccess, get_tenant
from ..forms import csv_problem, decode_csv_bytes
from ..models import SyncPreview

CSV_MAX_BYTES = 1024 * 1024
CAUSE_LABELS = {
    "customer_unmatched": "Customer not matched",
    "no_target_agreement": "No target agreement",
    "annual_on_recurring": "Annual on a recurring agreement",
    "monthly_on_one_time": "Monthly on a one-time agreement",
    "no_misc_product": "No misc product",
}
assert set(CAUSE_LABELS) == set(CAUSES)


class SubscriptionCsvForm(forms.Form):
    """The distributor's subscription list: customer, product, quantity, term, start date."""

    file = forms.FileField(
        label="Subscription list (CSV)",
        help_text="Columns: customer, product (name or SKU), quantity, term (monthly or annual), start date "
        "(YYYY-MM-DD). Up to 1 MB.",
        widget=forms.ClearableFileInput(attrs={"accept": ".csv,text/csv"}),
    )

    def clean_file(self):
        f = self.cleaned_data["file"]
        if f.size > CSV_MAX_BYTES:
            raise forms.ValidationError(f"This file is {f.size / 1024 / 1024:.1f} MB; the limit is 1 MB.")
        if not (f.name or "").lower().endswith((".csv", ".txt")):
            raise forms.ValidationError("Choose a .csv file (comma-separated values).")
        raw = f.read(CSV_MAX_BYTES + 1)
        # The same reading as the customer list import: UTF-8 (BOM or not), UTF-16, Windows-1252; a field the CSV
        # reader refuses is a form error naming its line (issue 12), never a 500.
        self.text = decode_csv_bytes(raw)
        if self.text is None:
            raise forms.ValidationError(
                "This does not look like a CSV file (it contains binary data). Save the list as CSV "
                "(UTF-8, UTF-16 or Windows-1252) and try again."
            )
        problem = csv_problem(self.text)
        if problem:
            raise forms.ValidationError(f"{problem} Nothing was imported.")
        return f


class CutoverForm(forms.Form):
    """The cutover date and the flagged additions to end at it."""

    cutover = forms.DateField(
        label="Cutover date", widget=forms.DateInput(attrs={"type": "date"}, format="%Y-%m-%d")
    )

    def __init__(self, *args, addition_ids: list[int] = (), **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["addition"] = forms.TypedMultipleChoiceField(
            choices=[(i, str(i)) for i in addition_ids], coerce=int, required=True
        )
        self.fields["addition"].error_messages["required"] = "Choose at least one addition to end."

    def clean_cutover(self):
        day = self.cleaned_data["cutover"]
        try:
            return billing.parse_cutover(day.isoformat())
        except billing.CutoverError as exc:
            raise forms.ValidationError(str(exc)) from None


def _can_preview(access: TenantAccess) -> None:
    """Admins, and support for them (a preview writes nothing to ConnectWise); read-only members may only look."""
    if not (access.can_change or access.is_support):
        raise PermissionDenied("Only the partner's admins (or support) can import a subscription list.")


def flagged_additions(result) -> list[dict]:
    """Every addition the stored existing_billing result flags, with its customer and agreement."""
    out = []
    for f in (result.findings if result else []) or []:
        for a in (f.get("data") or {}).get("additions", []):
            out.append({**a, "subject": f["subject"], "code": f["code"]})
    return out


def step_context(request, access: TenantAccess, *, result=None) -> dict:
    """What the "Seats billed today" page shows beyond the findings: the cutover form and the latest previews."""
    tenant = access.tenant
    additions = flagged_additions(result)
    cutover = tenant.billing_cutover or billing.default_cutover()
    form = CutoverForm(
        initial={"cutover": cutover, "addition": [a["id"] for a in additions]},
        addition_ids=[a["id"] for a in additions],
    )
    return {
        "cutover": cutover,
        "cutover_is_default": tenant.billing_cutover is None,
        "flagged": additions,
        "cutover_form": form,
        "previews": SyncPreview.objects.filter(tenant=tenant).defer("rows", "lines")[:5],
        "preview_form": SubscriptionCsvForm(),
    }


@login_required
def previews(request, slug):
    """GET: the latest previews and the upload form. POST: import a subscription CSV and queue its preview."""
    access = get_tenant(request, slug)
    tenant = access.tenant
    form = SubscriptionCsvForm()
    status = 200
    if request.method == "POST":
        _can_preview(access)
        form = SubscriptionCsvForm(request.POST, request.FILES)
        if form.is_valid():
            if getattr(tenant, "connection", None) is None:
                form.add_error("file", "Save your ConnectWise connection first: the preview reads it.")
            else:
                try:
                    preview = billing.create_preview(
                        tenant, form.text, source_name=form.cleaned_data["file"].name, actor=request.user
                    )
                except SubscriptionCsvError as exc:
                    for problem in exc.problems[:20]:
                        form.add_error("file", problem)
                    form.add_error("file", "Nothing was imported.")
                else:
                    messages.success(
                        request, "Reading your ConnectWise for the preview. Nothing is written there."
                    )
                    return redirect("preview", slug=slug, preview_uuid=preview.uuid)
        status = 400
    elif request.method != "GET":
        return HttpResponse(status=405, headers={"Allow": "GET, POST"})
    return render(
        request,
        "onboarding/previews.html",
        {
            "access": access,
            "tenant": tenant,
            "form": form,
            "previews": SyncPreview.objects.filter(tenant=tenant).defer("rows", "lines")[:20],
        },
        status=status,
    )


def _get_preview(access: TenantAccess, preview_uuid) -> SyncPreview:
    preview = SyncPreview.objects.filter(tenant=access.tenant, uuid=preview_uuid).first()
    if preview is None:
        raise Http404
    return preview


def display_rows(preview: SyncPreview) -> list[dict]:
    """The rows as the page shows them (the export writes the same values through connectwise.preview)."""
    return [
        {
            **r,
            "cause_label": CAUSE_LABELS.get(r.get("cause") or "", ""),
            "effective_date": str((r.get("addition") or {}).get("effectiveDate") or "")[:10],
            "collision_text": collision_text(r.get("collisions") or []),
        }
        for r in preview.rows
    ]


@login_required
@require_GET
def preview_page(request, slug, preview_uuid):
    access = get_tenant(request, slug)
    preview = _get_preview(access, preview_uuid)
    return render(
        request,
        "onboarding/preview.html",
        {
            "access": access,
            "tenant": access.tenant,
            "preview": preview,
            "rows": display_rows(preview),
            "counts": billing.preview_counts(preview.rows),
            "pending": preview.status in (SyncPreview.Status.QUEUED, SyncPreview.Status.RUNNING),
        },
    )


@login_required
@require_GET
def preview_export(request, slug, preview_uuid):
    """The preview as CSV: the same rows and values as the page."""
    access = get_tenant(request, slug)
    preview = _get_preview(access, preview_uuid)
    if preview.status != SyncPreview.Status.DONE:
        raise Http404
    response = HttpResponse(content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="first-sync-preview-{access.tenant.slug}.csv"'
    writer = csv.writer(response)
    for row in export_rows(preview.rows):
        writer.writerow([_safe(v) for v in row])
    return response


def _safe(value):
    """Spreadsheet formula injection: a cell starting with = + - @ is written with a leading apostrophe."""
    if isinstance(value, str) and value[:1] in ("=", "+", "-", "@"):
        return "'" + value
    return value


urlpatterns = [
    path("t/<slug:slug>/preview/", previews, name="previews"),
    path("t/<slug:slug>/preview/<uuid:preview_uuid>/", preview_page, name="preview"),
    path("t/<slug:slug>/preview/<uuid:preview_uuid>/export.csv", preview_export, name="preview_export"),
]
