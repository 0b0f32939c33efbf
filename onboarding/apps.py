from django.apps import AppConfig


class OnboardingConfig(AppConfig):
    name = "onboarding"
    verbose_name = "Billing sync readiness"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from . import (  # noqa: PLC0415 (Django: an app registers its signals and checks in ready())
            system_checks,  # noqa: F401  (registers Django system checks)
            webhooks,  # noqa: F401  (registers its Celery tasks)
        )
