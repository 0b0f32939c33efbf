"""Rate limits on what sends e-mail or creates accounts: password reset, sign-up and invitations, each counted per
address and per client, with django-ratelimit (a fixed-window counter in the Django cache, shared by every process
through Redis in production).

Why django-ratelimit and not django-axes or more of our own ``throttle.py``: axes records *failed sign-ins* (a
database table, an authentication backend and a middleware) and has nothing to say about a reset form, a sign-up
or an invitation being sent too often; ``throttle.py`` is sign-in-specific (it counts failures, resets on success)
and stays as it is. django-ratelimit counts any event under any key, so one well-kept implementation of the window
arithmetic and atomic cache increments serves all three forms here.

An address is counted by its lower-cased form (django-ratelimit hashes key values into the cache key, so no
address is stored in the cache in clear). A client is ``throttle.client_ip`` (``REMOTE_ADDR``; see SECURITY.md for
deployments behind a proxy). Each check counts the attempt: a refused attempt counts too, so hammering does not
reopen the window early.

Settings (environment variables of the same name, "count/period" with s, m, h or d, e.g. ``5/h``):
``RATELIMIT_PASSWORD_RESET_ADDRESS``, ``RATELIMIT_PASSWORD_RESET_CLIENT``, ``RATELIMIT_SIGNUP_ADDRESS``,
``RATELIMIT_SIGNUP_CLIENT``, ``RATELIMIT_INVITE_ADDRESS``, ``RATELIMIT_INVITE_CLIENT``.
"""

from __future__ import annotations

import math

from django.conf import settings
from django_ratelimit.core import get_usage

from .throttle import client_ip


def _count(request, group: str, value: str, rate: str) -> int:
    """Count one attempt; seconds until the window ends when over the limit, else 0."""
    usage = get_usage(request, group=group, key=lambda _g, _r: value, rate=rate, increment=True)
    if usage is None or not usage["should_limit"]:
        return 0
    return max(1, usage["time_left"])


def _limited(request, group: str, address: str, address_rate: str, client_rate: str) -> int:
    waits = [
        _count(request, f"{group}:address", (address or "").strip().lower(), address_rate),
        _count(request, f"{group}:client", client_ip(request), client_rate),
    ]
    return max(waits)


def _message(what: str, seconds: int) -> str:
    minutes = max(1, math.ceil(seconds / 60))
    return (
        f"Too many {what} for this address or from your network; try again in {minutes} "
        f"minute{'s' if minutes != 1 else ''}."
    )


def password_reset_limited(request, email: str) -> str | None:
    """None, or the message to show: too many reset requests for ``email`` or from this client."""
    wait = _limited(
        request,
        "password-reset",
        email,
        settings.RATELIMIT_PASSWORD_RESET_ADDRESS,
        settings.RATELIMIT_PASSWORD_RESET_CLIENT,
    )
    return _message("password reset requests", wait) if wait else None


def signup_limited(request, email: str) -> str | None:
    """None, or the message to show: too many sign-ups for ``email`` or from this client."""
    wait = _limited(
        request, "signup", email, settings.RATELIMIT_SIGNUP_ADDRESS, settings.RATELIMIT_SIGNUP_CLIENT
    )
    return _message("sign-ups", wait) if wait else None


def invitation_limited(request, email: str) -> str | None:
    """None, or the message to show: too many invitations sent to ``email`` or from this client (any tenant)."""
    wait = _limited(
        request, "invite", email, settings.RATELIMIT_INVITE_ADDRESS, settings.RATELIMIT_INVITE_CLIENT
    )
    return _message("invitations", wait) if wait else None
