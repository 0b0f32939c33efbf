from __future__ import annotations

import json

from django import template
from django.utils.html import escape
from django.utils.safestring import mark_safe

from connectwise.labels import field_label, value_label

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
    true, "billingCycle": {"id": 2, "name": "Quarterly"}}`` -> "Inactive: Yes · Billing Cycle: Quarterly". Values
    that are not a mapping fall back to ``as_json``."""
    if not isinstance(value, dict):
        return as_json(value)
    parts = []
    for key, v in value.items():
        if isinstance(v, dict):
            shown = str(v.get("name") or (f"record {v['id']}" if "id" in v else as_json(v)))
        else:
            label = value_label(v)
            shown = label if label is not None else ("empty" if v is None else str(v))
        parts.append(f"{field_label(key)}: {shown}")
    return " · ".join(parts)
