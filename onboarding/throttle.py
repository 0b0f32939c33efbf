"""Sign-in throttling against password guessing.

Two failure counters in the Django cache (Redis in production, so every web process shares them): one per account
(the lower-cased name typed, hashed) and one per client address. When either reaches ``LOGIN_FAILURE_LIMIT``
within ``LOGIN_FAILURE_WINDOW`` seconds of its first failure, sign-in is refused until the window ends, even with
the right password. A successful sign-in resets the account's counter (not the address's: signing in to one's own
account must not buy an attacker more guesses at someone else's).
"""

from __future__ import annotations

import hashlib
import math
import time

from django import forms
from django.conf import settings
from django.contrib.auth.forms import AuthenticationForm
from django.core.cache import cache


def client_ip(request) -> str:
    """The address the request came from. Behind a reverse proxy, configure it to set REMOTE_ADDR (never trust a
    client-supplied X-Forwarded-For here: anyone could then pick a fresh address per guess)."""
    return (request.META.get("REMOTE_ADDR") or "unknown") if request is not None else "unknown"


def _account_key(username: str) -> str:
    digest = hashlib.sha256((username or "").strip().lower().encode()).hexdigest()[:32]
    return f"login-fail:account:{digest}"


def _ip_key(ip: str) -> str:
    return f"login-fail:ip:{hashlib.sha256(ip.encode()).hexdigest()[:32]}"


class LoginThrottle:
    def __init__(self, request, username: str) -> None:
        self.keys = {"account": _account_key(username), "ip": _ip_key(client_ip(request))}

    def seconds_locked(self) -> int:
        """0 when sign-in may be tried; else how long until the fullest counter's window ends."""
        limit, now = settings.LOGIN_FAILURE_LIMIT, time.time()
        wait = 0.0
        for key in self.keys.values():
            if (cache.get(key) or 0) >= limit:
                until = cache.get(f"{key}:until") or now + settings.LOGIN_FAILURE_WINDOW
                wait = max(wait, until - now)
        return math.ceil(wait) if wait > 0 else 0

    def record_failure(self) -> None:
        window = settings.LOGIN_FAILURE_WINDOW
        for key in self.keys.values():
            # add() is atomic: the first failure fixes the window; incr() is atomic on Redis and the local caches.
            if cache.add(key, 0, window):
                cache.set(f"{key}:until", time.time() + window, window)
            try:
                cache.incr(key)
            except ValueError:  # expired between add() and incr()
                cache.set(key, 1, window)
                cache.set(f"{key}:until", time.time() + window, window)

    def reset_account(self) -> None:
        cache.delete_many([self.keys["account"], f"{self.keys['account']}:until"])


def locked_message(seconds: int) -> str:
    minutes = max(1, math.ceil(seconds / 60))
    return f"Too many failed sign-ins; try again in {minutes} minute{'s' if minutes != 1 else ''}."


class ThrottledAuthenticationForm(AuthenticationForm):
    """Django's sign-in form behind the throttle. ``throttled`` tells the view to answer 429."""

    throttled = False

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        # Accounts are e-mail addresses: the field says so (its name stays "username", Django's).
        self.fields["username"].label = "E-mail"
        self.fields["username"].widget.attrs.update({"autocomplete": "email", "inputmode": "email"})

    def clean(self):
        throttle = LoginThrottle(self.request, self.data.get("username", ""))
        wait = throttle.seconds_locked()
        if wait:
            self.throttled = True
            raise forms.ValidationError(locked_message(wait), code="throttled")
        try:
            cleaned = super().clean()
        except forms.ValidationError as exc:
            if getattr(exc, "code", None) == "invalid_login":
                throttle.record_failure()
            raise
        throttle.reset_account()
        return cleaned
