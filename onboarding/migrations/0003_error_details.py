"""Errors a person can act on (issue 11): where a ConnectWise error stopped a check, keep its details.

Schema: ``CheckRun.error_detail`` (a failed run's ConnectWise code, message, path and request id) and
``Tenant.step_errors`` (the same per step, denormalised for the dashboard's exports).

Data: a finding's ``data["error"]`` used to be the error's class name (``"ServerError"``) and is now the detail
object of ``ConnectWiseError.detail()``. Stored findings are rewritten to the new shape with what they knew (the
class name as ``kind``, status, path, transient); what was never stored (ConnectWise's message, the request id)
stays None. Reversible.
"""

from django.db import migrations, models

DETAIL_KEYS = ("kind", "status", "code", "message", "method", "path", "request_id", "transient", "retry_after")


def finding_error_to_detail(data: dict) -> dict | None:
    """The new ``data`` of one finding, or None when it needs no change."""
    error = data.get("error") if isinstance(data, dict) else None
    if not isinstance(error, str):
        return None
    detail = dict.fromkeys(DETAIL_KEYS)
    detail.update(
        kind=error,
        status=data.get("status"),
        code=data.get("code"),
        path=data.get("path") or None,
        transient=data.get("transient"),
    )
    return {**data, "error": detail}


def finding_error_to_name(data: dict) -> dict | None:
    error = data.get("error") if isinstance(data, dict) else None
    if not isinstance(error, dict):
        return None
    return {**data, "error": error.get("kind") or "ConnectWiseError"}


def _rewrite(apps, convert) -> None:
    StepResult = apps.get_model("onboarding", "StepResult")
    batch = []
    for result in StepResult.objects.only("pk", "findings").iterator(chunk_size=2000):
        changed = False
        findings = []
        for finding in result.findings or []:
            data = convert(finding.get("data") or {}) if isinstance(finding, dict) else None
            if data is not None:
                finding = {**finding, "data": data}
                changed = True
            findings.append(finding)
        if changed:
            result.findings = findings
            batch.append(result)
        if len(batch) >= 500:
            StepResult.objects.bulk_update(batch, ["findings"])
            batch = []
    if batch:
        StepResult.objects.bulk_update(batch, ["findings"])


def forwards(apps, schema_editor):
    _rewrite(apps, finding_error_to_detail)


def backwards(apps, schema_editor):
    _rewrite(apps, finding_error_to_name)


class Migration(migrations.Migration):
    dependencies = [
        ("onboarding", "0002_support_audit_kinds"),
    ]

    operations = [
        migrations.AddField(
            model_name="checkrun",
            name="error_detail",
            field=models.JSONField(
                blank=True,
                help_text="When a ConnectWise error failed the run: its code, message, path and request id "
                "(connectwise.errors.ConnectWiseError.detail()).",
                null=True,
            ),
        ),
        migrations.AddField(
            model_name="tenant",
            name="step_errors",
            field=models.JSONField(
                blank=True,
                default=dict,
                help_text="step key -> the ConnectWise error of its latest result when it is 'error' "
                "(connectwise.errors.ConnectWiseError.detail()), for the dashboard's exports",
            ),
        ),
        migrations.RunPython(forwards, backwards),
    ]
