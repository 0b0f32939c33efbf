"""The shapes of /api/v1/: query parameters (validated: bad values are a 400 problem, never a 500) and responses
(used for the OpenAPI document; the views build plain dicts of exactly these fields)."""

from __future__ import annotations

from rest_framework import serializers

from connectwise.checks.registry import STEP_KEYS

from ..models import CheckRun, CompanyChoice

STEP_STATUSES = ["pass", "warn", "fail", "error", "blocked"]
STEP_KEY_CHOICES = list(STEP_KEYS)


class TenantFilterSerializer(serializers.Serializer):
    """Filters of ``GET /tenants/``, as on the support dashboard."""

    ready = serializers.BooleanField(
        required=False, help_text="Only ready (true) or not ready (false) tenants."
    )
    blocked_at = serializers.ChoiceField(
        choices=STEP_KEYS, required=False, help_text="Only tenants whose first open step is this one."
    )
    stale = serializers.BooleanField(
        required=False, help_text="Only tenants not verified for 48 hours (true)."
    )
    drift = serializers.BooleanField(required=False, help_text="Only tenants with a step that broke (true).")
    updated_since = serializers.DateTimeField(
        required=False,
        help_text="ISO 8601 date-time: only tenants whose readiness, run or mapping changed at or after it.",
    )


class StartRunSerializer(serializers.Serializer):
    """Body of ``POST /tenants/{slug}/runs/`` (optional)."""

    steps = serializers.ListField(
        child=serializers.ChoiceField(choices=STEP_KEYS),
        required=False,
        max_length=len(STEP_KEYS),
        help_text="Step keys to verify; empty or absent = every step.",
    )


class FindingSerializer(serializers.Serializer):
    code = serializers.CharField(help_text="Stable finding code, e.g. agreements.prorate_off.")
    severity = serializers.ChoiceField(choices=["error", "warning", "info"])
    subject = serializers.CharField(help_text="The ConnectWise record it is about.")
    repairable = serializers.BooleanField()


class StepSerializer(serializers.Serializer):
    key = serializers.ChoiceField(choices=STEP_KEYS)
    title = serializers.CharField()
    status = serializers.ChoiceField(choices=STEP_STATUSES, allow_null=True)
    summary = serializers.CharField(allow_blank=True)
    checked_at = serializers.DateTimeField(allow_null=True)
    findings = FindingSerializer(many=True)


class TenantSummarySerializer(serializers.Serializer):
    slug = serializers.SlugField()
    name = serializers.CharField()
    url = serializers.URLField()
    ready = serializers.BooleanField()
    blocked_at = serializers.ChoiceField(
        choices=STEP_KEYS, allow_null=True, help_text="The first step that is not pass or warn."
    )
    steps = serializers.DictField(
        child=serializers.ChoiceField(choices=STEP_STATUSES, allow_null=True),
        help_text="step key -> latest status (null: never checked).",
    )
    has_error = serializers.BooleanField()
    stale = serializers.BooleanField()
    drift = serializers.BooleanField()
    drift_steps = serializers.ListField(child=serializers.ChoiceField(choices=STEP_KEYS))
    drift_since = serializers.DateTimeField(allow_null=True)
    last_verified_at = serializers.DateTimeField(allow_null=True)
    updated_at = serializers.DateTimeField()


class ConnectionSerializer(serializers.Serializer):
    site = serializers.CharField(help_text="ConnectWise API host, e.g. api-na.myconnectwise.net.")
    company_id = serializers.CharField(help_text="The ConnectWise company id used to sign in.")


class TenantDetailSerializer(TenantSummarySerializer):
    connection = ConnectionSerializer(allow_null=True, help_text="Never any key.")
    step_details = StepSerializer(many=True)
    mapping_url = serializers.URLField()
    runs_url = serializers.URLField()
    latest_run_url = serializers.URLField(allow_null=True)


class MappingRowSerializer(serializers.Serializer):
    company_id = serializers.IntegerField(help_text="ConnectWise company id (company/companies).")
    company_identifier = serializers.CharField(allow_blank=True)
    company_name = serializers.CharField(allow_blank=True)
    billing_customer = serializers.CharField(
        allow_null=True, help_text="The matched customer name from the imported billing-side list, if any."
    )
    motion = serializers.ChoiceField(choices=CompanyChoice.Motion.values)
    motion_label = serializers.CharField()
    agreement_id = serializers.IntegerField(
        allow_null=True, help_text="Target agreement (finance/agreements): chosen, or the single candidate."
    )
    agreement_name = serializers.CharField(allow_null=True)
    agreement_chosen = serializers.ChoiceField(
        choices=["explicit", "automatic", "none"],
        help_text="Whether the partner picked it or it was the only fit.",
    )
    ready = serializers.BooleanField(
        help_text="A target agreement is known and the latest verification found no error for this company."
    )
    finding_codes = serializers.ListField(child=serializers.CharField())


class RunSerializer(serializers.Serializer):
    uuid = serializers.UUIDField()
    url = serializers.URLField()
    tenant = serializers.SlugField()
    status = serializers.ChoiceField(choices=CheckRun.Status.values)
    trigger = serializers.ChoiceField(choices=CheckRun.Trigger.values)
    ready = serializers.BooleanField(allow_null=True)
    requested_steps = serializers.ListField(child=serializers.ChoiceField(choices=STEP_KEYS))
    created_at = serializers.DateTimeField()
    started_at = serializers.DateTimeField(allow_null=True)
    finished_at = serializers.DateTimeField(allow_null=True)
    api_calls = serializers.IntegerField()
    error = serializers.CharField(allow_null=True)
    steps = StepSerializer(many=True)


class ProblemSerializer(serializers.Serializer):
    """RFC 9457 problem details."""

    type = serializers.CharField()
    title = serializers.CharField()
    status = serializers.IntegerField()
    detail = serializers.CharField(required=False)
    instance = serializers.CharField(required=False)
    errors = serializers.DictField(child=serializers.ListField(child=serializers.CharField()), required=False)
