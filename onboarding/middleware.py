"""Security headers Django does not set itself.

- Content-Security-Policy without inline scripts or styles: every script and style comes from our own static
  files, so an injected ``<script>`` or ``onclick=`` does not run (tests/onboarding/test_security_pages.py checks
  the header and that no rendered page relies on inline code).
- Permissions-Policy: the product needs no camera, microphone, location or payment API.
- ``Cache-Control: no-store`` on pages served to a signed-in person: partner data must not stay in a shared
  browser's or proxy's cache after sign-out.
"""

from __future__ import annotations

POLICY = "; ".join(
    [
        "default-src 'self'",
        "script-src 'self'",
        "style-src 'self'",
        "img-src 'self' data:",
        "font-src 'self'",
        "connect-src 'self'",
        "form-action 'self'",
        "frame-ancestors 'none'",
        "base-uri 'self'",
        "object-src 'none'",
    ]
)
PERMISSIONS_POLICY = "camera=(), microphone=(), geolocation=(), payment=(), usb=()"


class ContentSecurityPolicyMiddleware:
    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        response = self.get_response(request)
        response.headers.setdefault("Content-Security-Policy", POLICY)
        response.headers.setdefault("Permissions-Policy", PERMISSIONS_POLICY)
        user = getattr(request, "user", None)
        if user is not None and user.is_authenticated and "Cache-Control" not in response.headers:
            response.headers["Cache-Control"] = "no-store"
        return response
