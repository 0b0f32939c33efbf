"""Django system checks for misconfiguration that settings parsing alone cannot see."""

from __future__ import annotations

from django.conf import settings
from django.core.checks import Error, Warning, register


@register(deploy=True)
def check_production_settings(app_configs, **kwargs):
    problems = []
    if settings.CONNECTWISE_SANDBOX_URL:
        problems.append(
            Warning(
                "CONNECTWISE_SANDBOX_URL is set: partners can connect to the sandbox.",
                hint="Unset it in production.",
                id="onboarding.W001",
            )
        )
    if len(settings.FIELD_ENCRYPTION_KEYS) == 0:
        problems.append(Error("FIELD_ENCRYPTION_KEYS is empty.", id="onboarding.E001"))
    return problems
