"""Creating and revoking API tokens, shared by the support page and ``manage.py api_token``; both audited."""

from __future__ import annotations

from django.db import transaction
from django.utils import timezone

from ..models import AuditEvent
from .models import ApiToken

MAX_EXPIRY_DAYS = 3650


class TokenError(ValueError):
    """A token request that cannot be done (a name in use, a bad scope or expiry); the message says why."""


def _actor_label(by) -> str:
    return by if isinstance(by, str) else (getattr(by, "email", "") or "someone")


def create(name: str, scope: str, *, expires_days: int | None = None, by=None) -> tuple[ApiToken, str]:
    """Issue a token; returns (token, secret). Raises TokenError for a blank or used name, an unknown scope or
    an expiry outside 1..3650 days."""
    name = (name or "").strip()
    if not name or len(name) > 100:
        raise TokenError("Give the token a name of 1 to 100 characters.")
    if scope not in ApiToken.Scope.values:
        raise TokenError(f"Scope must be one of: {', '.join(ApiToken.Scope.values)}.")
    if expires_days is not None and not 1 <= expires_days <= MAX_EXPIRY_DAYS:
        raise TokenError(f"Expiry must be between 1 and {MAX_EXPIRY_DAYS} days.")
    with transaction.atomic():
        if ApiToken.objects.filter(name=name).exists():
            raise TokenError(f"A token named {name!r} already exists; names identify tokens, pick another.")
        token, secret = ApiToken.issue(name=name, scope=scope, expires_days=expires_days, by=by)
        AuditEvent.record(
            AuditEvent.Kind.TOKEN_CREATED,
            actor=by,
            message=f"API token {name!r} created ({scope}"
            + (f", expires in {expires_days} days)" if expires_days else ", no expiry)"),
            token=str(token.uuid),
            scope=scope,
        )
    return token, secret


def revoke(token: ApiToken, *, by=None) -> bool:
    """Revoke a token now; False when it was already revoked."""
    with transaction.atomic():
        if not ApiToken.objects.filter(pk=token.pk, revoked_at__isnull=True).update(
            revoked_at=timezone.now()
        ):
            return False
        AuditEvent.record(
            AuditEvent.Kind.TOKEN_REVOKED,
            actor=by,
            message=f"API token {token.name!r} revoked by {_actor_label(by)}",
            token=str(token.uuid),
        )
    return True
