"""What every post that changes the partner's choices does afterwards: audit the change and re-check the steps that
judge the choices (``record_change``), then go back to the step page (``back_to_step``). Used by the customers and
agreements pages and by the forms that re-render a step (``step_forms``)."""

from __future__ import annotations

from django.shortcuts import redirect
from django.urls import reverse

from .. import mapping
from ..inputs import safe_next
from ..runs import recheck_after_change


def record_change(request, tenant, message: str, **detail) -> None:
    """Audit a change of the partner's choices (and tell the billing sync, mapping.record_change) and re-check the
    steps that judge them (customers, agreements and what depends on them) by themselves: the pages never show a
    result of choices that are gone."""
    mapping.record_change(tenant, request.user, message, **detail)
    recheck_after_change(tenant, ["customers"], actor=request.user)


def back_to_step(request, key: str):
    """Redirect to ``?next=`` when it is a safe local address, else to the step page ``key`` of this tenant."""
    slug = request.resolver_match.kwargs["slug"]
    return redirect(safe_next(request, reverse("step", args=[slug, key])))
