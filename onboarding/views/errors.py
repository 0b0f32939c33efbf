"""Error pages in the product's own look."""

from __future__ import annotations

from django.shortcuts import render


def forbidden(request, exception=None):
    return render(request, "errors/403.html", {"reason": str(exception or "")}, status=403)


def not_found(request, exception=None):
    return render(request, "errors/404.html", status=404)


def server_error(request):
    return render(request, "errors/500.html", status=500)


def bad_request(request, exception=None):
    """Django's own 400s (a suspicious request, too many fields) in our look; never the exception's text."""
    return render(request, "errors/400.html", status=400)
