"""The agreement defaults form (issue 18): per billing motion, the agreement type, name and start date new
agreements get, validated by ``connectwise.checks.agreement_defaults``.
"""

from __future__ import annotations

from crispy_forms.helper import FormHelper
from django import forms

from connectwise.checks import agreement_defaults
from connectwise.checks.choices import MOTION_LABELS


class AgreementDefaultsForm(forms.Form):
    """Defaults for new agreements, per billing motion (issue 18). The type choices are the agreement types the
    latest agreements check read that the API member's role allows (``Tenant.agreement_types``); a motion left
    without a type has no defaults, so no agreement is created for it."""

    MOTIONS = tuple(MOTION_LABELS.items())  # (motion, label): connectwise.checks.choices

    def __init__(self, *args, tenant, **kwargs):
        super().__init__(*args, **kwargs)
        self.options = list(tenant.agreement_types or [])
        current = tenant.agreement_defaults or {}
        usable = agreement_defaults.selectable(self.options)
        for motion, label in self.MOTIONS:
            kinds = [o for o in usable if o["one_time"] == (motion == "annual")] or usable
            entry = current.get(motion) or {}
            self.fields[f"{motion}_type"] = forms.TypedChoiceField(
                label=f"{label}: agreement type",
                choices=[("", "No default: don't create")] + [(o["id"], o["name"]) for o in kinds],
                coerce=int,
                empty_value=None,
                required=False,
                initial=entry.get("type_id"),
                help_text="Only the types your API member's role allows (Access Allowed list).",
            )
            self.fields[f"{motion}_name"] = forms.CharField(
                label=f"{label}: name",
                max_length=200,
                required=False,
                initial=entry.get("name") or agreement_defaults.DEFAULT_NAMES[motion],
                help_text="{company} is the company's name, {identifier} its ID; never over 100 characters.",
            )
            self.fields[f"{motion}_start"] = forms.DateField(
                label=f"{label}: start date",
                required=False,
                initial=entry.get("start") or None,
                widget=forms.DateInput(attrs={"type": "date"}),
                help_text="Empty: the first day of the month the plan is built in.",
            )
        self.fields["annual_one_time"] = forms.BooleanField(
            label="Seat Based Annual: One-Time (Bill One Time under Recurring Invoice Parameters)",
            required=False,
            initial=(current.get("annual") or {}).get("one_time", True),
        )
        self.helper = FormHelper()
        self.helper.form_tag = False

    def clean(self):
        data = super().clean()
        raw = {}
        for motion, _ in self.MOTIONS:
            if data.get(f"{motion}_type") is None:
                continue
            start = data.get(f"{motion}_start")
            raw[motion] = {
                "type": data[f"{motion}_type"],
                "name": data.get(f"{motion}_name") or "",
                "start": start.isoformat() if start else "",
            }
            if motion == "annual":
                raw[motion]["one_time"] = bool(data.get("annual_one_time"))
        try:
            self.defaults = agreement_defaults.validate(raw, self.options)
        except agreement_defaults.DefaultsError as exc:
            for problem in exc.problems:
                where, _, text = problem.partition(": ")
                motion, _, key = where.partition(".")
                field = f"{motion}_{key}" if f"{motion}_{key}" in self.fields else None
                self.add_error(field, text or problem)
        return data
