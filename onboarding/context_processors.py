from __future__ import annotations

from django.conf import settings


def product(request):
    return {
        "PRODUCT_NAME": "Billing Sync Readiness",
        "SANDBOX_ENABLED": bool(settings.CONNECTWISE_SANDBOX_URL),
    }
