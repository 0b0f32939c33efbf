"""Error pages in the product's own look."""

from __future__ import annotations

from django.http import JsonResponse
from django.shortcuts import render

from ..api.problems import CONTENT_TYPE, invalid_request, is_api_request


def forbidden(request, exception=None):
    return render(request, "errors/403.html", {"reason": str(exception or "")}, status=403)


def not_found(request, exception=None):
    return render(request, "errors/404.html", status=404)


def server_error(request):
    if is_api_request(request):
        body = {"type": "/api/v1/problems/server-error", "title": "Server error", "status": 500}
        return JsonResponse(body, status=500, content_type=CONTENT_TYPE)
    return render(request, "errors/500.html", status=500)


def bad_request(request, exception=None):
    """Django's own 400s (a suspicious request, too many fields) in our look, or as a problem under /api/; never
    the exception's text."""
    if is_api_request(request):
        return invalid_request(
            request, "The request could not be read (too large, too many fields or malformed)."
        )
    return render(request, "errors/400.html", status=400)
