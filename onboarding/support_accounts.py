"""Support-staff accounts: add, deactivate and list the distributor's support people.

Support accounts are created without a password; the person gets an e-mailed link to choose one (Django's
password-reset token, valid for ``PASSWORD_RESET_TIMEOUT`` seconds). A support account can never be a member of a
partner tenant, and a partner's account is never turned into a support account: the two roles stay apart so that a
partner never gains the dashboard and support never gains a partner's approvals.

Used by ``manage.py support_user`` and the support page. Every change is recorded in the audit trail. The e-mail
goes like every other product mail: a Celery task (``send_support_welcome``) enqueued after the account's
transaction commits, ids only in the message, the link built in the worker, retried with backoff (``MAIL_RETRY``).
"""

from __future__ import annotations

from dataclasses import dataclass

from celery import shared_task
from django.contrib.auth import get_user_model
from django.core.exceptions import ValidationError
from django.core.validators import validate_email
from django.db import transaction

from . import mail
from .delivery import MAIL_RETRY
from .models import AuditEvent, Membership


class SupportAccountError(Exception):
    """The request cannot be carried out; the message says why in plain words (safe to show)."""


@dataclass(frozen=True)
class SupportUserResult:
    """What ``add_support_user`` did: ``action`` is "created", "reactivated", "resent" (active, but no password
    chosen yet: the link is e-mailed again) or "already"."""

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


@shared_task(name="onboarding.send_support_welcome", **MAIL_RETRY)
def send_support_welcome(user_id: int) -> str:
    """The task that e-mails a support account its set-password link (``mail.send_support_welcome``)."""
    return mail.send_support_welcome(user_id)


def enqueue_welcome(user) -> None:
    """Send the set-password e-mail once the caller's transaction commits (never for a rolled-back account)."""
    transaction.on_commit(lambda pk=user.pk: send_support_welcome.delay(pk))


def support_users():
    """Every support-staff account, active ones first, then by e-mail."""
    return get_user_model().objects.filter(is_support=True).order_by("-is_active", "email")


def add_support_user(raw_email: str, *, by) -> SupportUserResult:
    """Create (or reactivate) the support account for ``raw_email`` and e-mail it a set-password link.

    ``by`` is the acting user or a label such as "operator (command line)". An active support account that has
    not chosen a password yet gets the link again (action "resent"); one that has is left as it is (action
    "already", no e-mail). Raises ``SupportAccountError`` for a bad address or an address that belongs to a
    partner's account. The e-mail is a task enqueued after commit and retried by the worker, so a mail server
    that is down never loses the account or the link.
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
            if user.has_usable_password() or user.last_login is not None:
                return SupportUserResult(user, "already")
            enqueue_welcome(user)  # the first link was lost or expired: the only way in is a new one
            return SupportUserResult(user, "resent")
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
        enqueue_welcome(user)
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
