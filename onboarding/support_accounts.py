"""Support-staff accounts: add, deactivate and list the distributor's support people.

Support accounts are created without a password; the person gets an e-mailed link to choose one (Django's
password-reset token, valid for ``PASSWORD_RESET_TIMEOUT`` seconds). A support account can never be a member of a
partner tenant, and a partner's account is never turned into a support account: the two roles stay apart so that a
partner never gains the dashboard and support never gains a partner's approvals.

Used by ``manage.py support_user`` and the support page. Every change is recorded in the audit trail.
"""

from __future__ import annotations

from dataclasses import dataclass

from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.tokens import default_token_generator
from django.core.exceptions import ValidationError
from django.core.mail import send_mail
from django.core.validators import validate_email
from django.db import transaction
from django.template.loader import render_to_string
from django.urls import reverse
from django.utils.encoding import force_bytes
from django.utils.http import urlsafe_base64_encode

from .models import AuditEvent, Membership


class SupportAccountError(Exception):
    """The request cannot be carried out; the message says why in plain words (safe to show)."""


@dataclass(frozen=True)
class SupportUserResult:
    """What ``add_support_user`` did: ``action`` is "created", "reactivated" or "already"."""

    user: object
    action: str


def normalize_email(raw: str) -> str:
    """Return the address stripped and lower-cased.

    Raises ``SupportAccountError`` for anything that is not one plain e-mail address (control characters included).
    """
    email = (raw or "").strip().lower()
    if any(ord(ch) < 32 or ord(ch) == 127 for ch in email):
        raise SupportAccountError("The e-mail address contains control characters.")
    try:
        validate_email(email)
    except ValidationError:
        raise SupportAccountError(f"{email!r} is not an e-mail address.") from None
    return email


def set_password_url(user) -> str:
    """The absolute link (``SITE_URL`` + Django's password-reset confirm view) where ``user`` chooses a password."""
    uid = urlsafe_base64_encode(force_bytes(user.pk))
    token = default_token_generator.make_token(user)
    return settings.SITE_URL + reverse("password_reset_confirm", args=[uid, token])


def send_set_password_email(user) -> None:
    """E-mail ``user`` the link to choose a password. Raises whatever the mail backend raises."""
    context = {"user": user, "url": set_password_url(user), "site_url": settings.SITE_URL}
    send_mail(
        subject="Your support account for billing sync readiness",
        message=render_to_string("registration/support_welcome_email.txt", context),
        from_email=None,
        recipient_list=[user.email],
    )


def support_users():
    """Every support-staff account, active ones first, then by e-mail."""
    return get_user_model().objects.filter(is_support=True).order_by("-is_active", "email")


def add_support_user(raw_email: str, *, by) -> SupportUserResult:
    """Create (or reactivate) the support account for ``raw_email`` and e-mail it a set-password link.

    ``by`` is the acting user or a label such as "operator (command line)". An active support account is left as
    it is (action "already", no e-mail). Raises ``SupportAccountError`` for a bad address or an address that
    belongs to a partner's account. The account is saved before the e-mail is sent; a mail failure propagates
    and ``add`` can simply be run again to re-send.
    """
    email = normalize_email(raw_email)
    User = get_user_model()
    with transaction.atomic():
        user = User.objects.select_for_update().filter(email__iexact=email).order_by("id").first()
        if user is not None and not user.is_support:
            raise SupportAccountError(
                f"{email} already has a partner account; support accounts must use a separate address."
            )
        if user is not None and Membership.objects.filter(user=user).exists():
            raise SupportAccountError(f"{email} is a member of a partner tenant and cannot be support staff.")
        if user is not None and user.is_active:
            return SupportUserResult(user, "already")
        if user is None:
            user = User(username=email, email=email, is_support=True, is_active=True)
            user.set_unusable_password()
            user.save()
            action = "created"
        else:
            user.is_active = True
            user.save(update_fields=["is_active"])
            action = "reactivated"
        AuditEvent.record(
            AuditEvent.Kind.SUPPORT_ADDED, actor=by, message=f"Support account {action}: {email}", email=email
        )
    send_set_password_email(user)
    return SupportUserResult(user, action)


def remove_support_user(raw_email: str, *, by) -> bool:
    """Deactivate the support account for ``raw_email``: it can no longer sign in, and open sessions end.

    The row stays so the audit trail keeps naming the person. Returns False when the account was already
    inactive. Raises ``SupportAccountError`` when no support account has that address.
    """
    email = normalize_email(raw_email)
    with transaction.atomic():
        user = (
            get_user_model()
            .objects.select_for_update()
            .filter(email__iexact=email, is_support=True)
            .order_by("id")
            .first()
        )
        if user is None:
            raise SupportAccountError(f"No support account has the address {email}.")
        if not user.is_active:
            return False
        user.is_active = False
        user.save(update_fields=["is_active"])
        AuditEvent.record(
            AuditEvent.Kind.SUPPORT_REMOVED,
            actor=by,
            message=f"Support account deactivated: {email}",
            email=email,
        )
    return True
