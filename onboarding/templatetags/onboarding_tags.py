from __future__ import annotations

import json
import re

from django import template
from django.utils import timezone
from django.utils.dateformat import format as date_format
from django.utils.html import escape
from django.utils.safestring import mark_safe

from connectwise.checks.registry import READINESS_KEYS, STEP_KEYS, STEP_TITLES
from connectwise.labels import field_label, value_label

from ..models import CheckRun

register = template.Library()


_BADGE_LABELS = {
    "pass": "Pass",
    "warn": "Warning",
    "fail": "Fail",
    "error": "Could not check",
    "blocked": "Blocked",
}


@register.filter
def status_badge(status) -> str:
    """The markup of ``partials/status_badge.html`` for one step status, as a filter: the dashboard shows six per
    row, and 300 template includes per page were a large part of its render time (benchmark load)."""
    if not status:
        return mark_safe('<span class="status status-none">Not checked</span>')
    text = escape(status)
    label = escape(_BADGE_LABELS.get(str(status), str(status)))
    return mark_safe(f'<span class="status status-{text}" title="{text}">{label}</span>')


@register.filter
def get_item(mapping, key):
    try:
        return mapping.get(key)
    except AttributeError:
        return None


@register.filter
def as_json(value) -> str:
    """A stored value the way the API shows it (JSON: true/false/null, double quotes), not Python's repr."""
    if value is None:
        return ""
    return json.dumps(value, ensure_ascii=False, sort_keys=True, default=str)


@register.filter
def cw_fields(value) -> str:
    """A record's fields as ConnectWise's screens name and show them (connectwise.labels): ``{"inactiveFlag":
    true, "billingCycle": {"id": 2, "name": "Quarterly"}}`` -> "Inactive: Yes · Billing Cycle: Quarterly". Never
    JSON: a reference shows its name (else "record <id>"), a list its items joined, a nested mapping its labelled
    fields; API metadata (keys starting with "_", like ``_info``) is left out. "" for None."""
    if value is None:
        return ""
    if not isinstance(value, dict):
        return _shown(value)
    return " · ".join(
        f"{field_label(k)}: {_shown(v)}" for k, v in value.items() if not str(k).startswith("_")
    )


def _shown(value) -> str:
    if isinstance(value, dict):
        ref = value.get("name") or value.get("identifier")
        if ref:
            return str(ref)
        rest = {k: v for k, v in value.items() if not str(k).startswith("_") and k != "id"}
        if rest:
            return ", ".join(f"{field_label(k)} {_shown(v)}" for k, v in rest.items())
        return f"record {value['id']}" if "id" in value else "empty"
    if isinstance(value, list | tuple):
        return ", ".join(_shown(v) for v in value) or "none"
    label = value_label(value)
    return label if label is not None else ("empty" if value is None else str(value))


@register.filter
def run_name(run) -> str:
    """A check run named by the steps it covered and when it was created (UTC): "Full check, 30 Nov 09:12",
    "Agreements only, 30 Nov 09:12", "Customers + Agreements, ..."; the year is added when it is not this one.
    Used wherever runs are listed or chosen (dashboard, run comparison, audit trail)."""
    if run is None:
        return ""
    steps = [k for k in (run.steps or []) if k in STEP_TITLES]
    if not steps or set(READINESS_KEYS) <= set(steps):
        what = "Full check"
    elif len(steps) == 1:
        what = f"{STEP_TITLES[steps[0]]} only"
    elif len(steps) <= 3:
        what = " + ".join(STEP_TITLES[k] for k in STEP_KEYS if k in steps)
    else:
        what = f"{len(steps)} steps"
    at = timezone.localtime(run.created_at)
    when = date_format(at, "j M H:i" if at.year == timezone.localtime().year else "j M Y H:i")
    return f"{what}, {when}"


_STEP_KEYS_RE = "|".join(sorted(STEP_KEYS, key=len, reverse=True))
_STEP_IN_MESSAGE = re.compile(rf"\b(for|of the) ({_STEP_KEYS_RE})\b(?=:| plan|$)")
_STEPS_IN_PARENS = re.compile(rf"\(((?:{_STEP_KEYS_RE})(?:, (?:{_STEP_KEYS_RE}))*)\)")


@register.filter
def audit_message(text) -> str:
    """An audit line as people read it: the step keys stored in older lines ("Repair plan for setup_tables: 4
    changes", "Check started (catalog, customers)") shown as the steps' titles. The stored text is unchanged."""
    text = _STEP_IN_MESSAGE.sub(lambda m: f"{m[1]} {STEP_TITLES[m[2]]}", str(text or ""))
    return _STEPS_IN_PARENS.sub(
        lambda m: "(" + ", ".join(STEP_TITLES[k] for k in m[1].split(", ")) + ")", text
    )


# Who did it, for actors that are not a person: the audit trail's "Who" column never shows an internal name.
_ACTOR_LABELS = {
    **dict(CheckRun.Trigger.choices),  # a run's trigger recorded as its actor: "cli" -> "Command line"
    "schedule": "Automatic schedule",
    "manual": "A person in the wizard",
    "api": "Billing sync API",
    "demo seed": "Demo set-up",
    "webhooks": "Webhook delivery",
    "operator": "Operator (command line)",
}


@register.filter
def audit_actor(label: str) -> str:
    """The audit trail's "Who": an e-mail address as stored; an internal actor name ("schedule", "demo seed") as
    words; "System" when nothing was recorded."""
    if not label:
        return "System"
    return _ACTOR_LABELS.get(label, label)
