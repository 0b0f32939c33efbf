"""API authentication: ``Authorization: Bearer <token>``, scopes, and a rate limit per token.

Only tokens authenticate the API (no session): a partner admin signed in to the wizard must not read every
tenant through it, and a token never signs in to a page.
"""

from __future__ import annotations

from django.utils import timezone
from drf_spectacular.extensions import OpenApiAuthenticationExtension
from rest_framework import authentication, exceptions, permissions, throttling

from .models import ApiToken, hash_secret


class TokenUser:
    """What ``request.user`` is for a token: not a Django user, so no page or permission of one applies."""

    is_authenticated = True
    is_support = False
    is_staff = False
    pk = None

    def __init__(self, token: ApiToken) -> None:
        self.token = token

    def __str__(self) -> str:
        return f"API token {self.token.name}"


class BearerTokenAuthentication(authentication.BaseAuthentication):
    """Looks the secret's SHA-256 up among usable tokens and records "last used" on every authenticated call.

    Raises ``AuthenticationFailed`` (401) for a missing, unknown, revoked or expired token, with the same message
    for all of them so that a caller learns nothing about which tokens exist."""

    keyword = "Bearer"

    def authenticate(self, request):
        header = authentication.get_authorization_header(request).decode("latin-1")
        if not header:
            return None
        scheme, _, secret = header.partition(" ")
        if scheme.lower() != self.keyword.lower() or not secret.strip() or len(secret) > 200:
            raise exceptions.AuthenticationFailed("Send the API token as 'Authorization: Bearer <token>'.")
        now = timezone.now()
        token = ApiToken.objects.usable(now).filter(secret_hash=hash_secret(secret.strip())).first()
        if token is None:
            raise exceptions.AuthenticationFailed("The API token is unknown, revoked or expired.")
        ApiToken.objects.filter(pk=token.pk).update(last_used_at=now)
        return TokenUser(token), token

    def authenticate_header(self, request) -> str:
        return 'Bearer realm="api"'


class TokenScope(permissions.BasePermission):
    """Every operation needs a token; views that start verifications set ``needs_verify_scope``."""

    message = "This API token's scope is read; starting a verification needs a read+verify token."

    def has_permission(self, request, view) -> bool:
        token = request.auth
        if not isinstance(token, ApiToken):
            raise exceptions.NotAuthenticated("Send an API token as 'Authorization: Bearer <token>'.")
        if getattr(view, "needs_verify_scope", False) and request.method == "POST":
            return token.can_verify
        return True


class PerTokenThrottle(throttling.SimpleRateThrottle):
    """``API_RATE_LIMIT_PER_MINUTE`` requests per token (DRF's sliding window in the cache)."""

    scope = "token"

    def get_cache_key(self, request, view):
        token = request.auth
        if not isinstance(token, ApiToken):
            return None
        return self.cache_format % {"scope": self.scope, "ident": token.pk}


class BearerTokenScheme(OpenApiAuthenticationExtension):
    """Tells drf-spectacular how BearerTokenAuthentication looks in the OpenAPI document."""

    target_class = BearerTokenAuthentication
    name = "apiToken"

    def get_security_definition(self, auto_schema):
        return {"type": "http", "scheme": "bearer", "description": "An API token made by support staff."}
