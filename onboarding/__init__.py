"""The Django project and the product app."""

from .celery import app as celery_app

__all__ = ("celery_app",)
