"""Live feedback for the support dashboard's bulk re-check: which of the started checks have finished.

``bulk_recheck`` remembers the runs it started (or found already running) in the session; the dashboard then shows
a progress card that polls ``recheck_progress`` with htmx, like the wizard's run progress. When every run has
finished, the card's last poll reloads the page (the rows show the new results) with a message saying how it went.
"""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import HttpResponse
from django.shortcuts import render
from django.utils.translation import ngettext
from django.views.decorators.http import require_GET

from ..access import require_support
from ..models import CheckRun

SESSION_KEY = "support_recheck_batch"


def follow(request, runs: list[CheckRun]) -> None:
    """Follow these runs on the dashboard (replaces an earlier batch); nothing to follow for an empty list."""
    if runs:
        request.session[SESSION_KEY] = [str(r.uuid) for r in runs]
    else:
        request.session.pop(SESSION_KEY, None)


def progress(request) -> dict | None:
    """The followed batch: ``runs`` (with their tenants, by tenant name), ``total``, ``done`` (finished: done or
    error), ``ready``, ``not_ready``, ``failed`` counts, ``percent`` and ``finished``; None when nothing is
    followed. A batch that has finished is forgotten here and its outcome becomes a message for the next page."""
    uuids = request.session.get(SESSION_KEY) or []
    if not uuids:
        return None
    runs = list(CheckRun.objects.filter(uuid__in=uuids).select_related("tenant").order_by("tenant__name"))
    done = [r for r in runs if not r.is_active]
    state = {
        "runs": runs,
        "total": len(runs),
        "done": len(done),
        "ready": sum(1 for r in done if r.status == CheckRun.Status.DONE and r.ready),
        "not_ready": sum(1 for r in done if r.status == CheckRun.Status.DONE and not r.ready),
        "failed": sum(1 for r in done if r.status == CheckRun.Status.ERROR),
        "percent": max(5, round(100 * len(done) / len(runs))) if runs else 100,
        "finished": len(done) == len(runs),
    }
    if state["finished"]:
        request.session.pop(SESSION_KEY, None)
        messages.success(request, finished_text(state), extra_tags="inline recheck")  # shown above the list
    return state


def finished_text(state: dict) -> str:
    """ "Re-check finished: 3 of 3 checked: 2 ready, 1 not ready." (the counts that are not zero)."""
    parts = [
        ngettext("%(n)d ready", "%(n)d ready", state["ready"]) % {"n": state["ready"]}
        if state["ready"]
        else "",
        f"{state['not_ready']} not ready" if state["not_ready"] else "",
        f"{state['failed']} could not run" if state["failed"] else "",
    ]
    outcome = ", ".join(p for p in parts if p)
    return f"Re-check finished: {state['done']} of {state['total']} checked" + (
        f": {outcome}." if outcome else "."
    )


@login_required
@require_GET
def recheck_progress(request):
    """htmx fragment: the followed re-checks' progress; 204 with ``HX-Refresh`` once they have all finished (the
    page reloads with the outcome as a message), plain 204 when nothing is followed."""
    require_support(request)
    state = progress(request)
    if state is None or state["finished"]:
        response = HttpResponse(status=204)
        if state is not None:  # finished just now: reload, the rows and the message show the outcome
            response["HX-Refresh"] = "true"
        return response
    return render(request, "partials/recheck_progress.html", state)
