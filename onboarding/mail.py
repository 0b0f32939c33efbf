"""E-mail that cannot be lost: invitations, password resets, sign-up mail and support accounts' set-password links
are sent by Celery tasks after the transaction that asked for them commits, retried with backoff, and a failure is recorded where people see it (the team page for an
invitation, the support dashboard for drift alerts).

Task arguments are ids only: the invitation link and the password-reset token are built in the worker, never put
in a broker message. Subjects go through ``subject_line`` so that a name with a line break (stored before names
were validated, or typed into a source we do not control) can never make the mail backend raise
``BadHeaderError``.
"""

from __future__ import annotations

import logging

from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.tokens import default_token_generator
from django.core import signing
from django.core.mail import send_mail
from django.db.models import F
from django.template.loader import render_to_string
from django.urls import reverse
from django.utils import timezone
from django.utils.encoding import force_bytes
from django.utils.http import urlsafe_base64_encode

from .inputs import single_line
from .models import Invitation

log = logging.getLogger(__name__)


def subject_line(text: str) -> str:
    """An e-mail subject: one line, control characters replaced, at most 150 characters."""
    return single_line(text, max_length=150)


def absolute_url(path: str) -> str:
    """``SITE_URL`` + path: e-mails are built in the worker, where there is no request to take the host from."""
    return getattr(settings, "SITE_URL", "").rstrip("/") + path


def invitation_url(invitation: Invitation) -> str:
    """The link an invitee opens; shown to the tenant's admins when the e-mail could not be sent."""
    return absolute_url(reverse("accept_invitation", args=[invitation.token]))


def error_label(exc: BaseException) -> str:
    """What is stored and shown about a failed send: the exception's class only (an SMTP message can quote
    addresses and server details)."""
    return type(exc).__name__[:200]


def send_invitation(invitation_id: int) -> str:
    """Send the invitation e-mail (the task's body). Returns "sent", or "gone" when the invitation was withdrawn
    or accepted meanwhile; raises what the mail backend raises after recording the failure on the row."""
    invitation = (
        Invitation.objects.select_related("tenant", "invited_by")
        .filter(pk=invitation_id, accepted_at__isnull=True)
        .first()
    )
    if invitation is None or not invitation.is_valid():
        return "gone"
    context = {
        "invitation": invitation,
        "url": invitation_url(invitation),
        "inviter": invitation.invited_by,
        "tenant": invitation.tenant,
    }
    try:
        send_mail(
            subject=subject_line(f"You are invited to {invitation.tenant.name} on billing sync readiness"),
            message=render_to_string("registration/invitation_email.txt", context),
            from_email=None,
            recipient_list=[invitation.email],
        )
    except Exception as exc:
        Invitation.objects.filter(pk=invitation.pk).update(
            mail_status="failed", mail_attempts=F("mail_attempts") + 1, mail_error=error_label(exc)
        )
        log.warning("invitation e-mail %s failed: %s", invitation.pk, error_label(exc))
        raise
    Invitation.objects.filter(pk=invitation.pk).update(
        mail_status="sent", mail_attempts=F("mail_attempts") + 1, mail_error="", mailed_at=timezone.now()
    )
    return "sent"


def send_password_reset(user_id: int) -> str:
    """Send the password-reset e-mail for one user, token made here in the worker (Django's
    ``default_token_generator``, valid ``PASSWORD_RESET_TIMEOUT``)."""
    user = get_user_model().objects.filter(pk=user_id, is_active=True).first()
    if user is None:
        return "gone"
    uid = urlsafe_base64_encode(force_bytes(user.pk))
    site = getattr(settings, "SITE_URL", "").rstrip("/")
    protocol, _, domain = site.partition("://")
    context = {
        "email": user.email,
        "domain": domain,
        "site_name": domain,
        "uid": uid,
        "user": user,
        "token": default_token_generator.make_token(user),
        "protocol": protocol or "https",
    }
    subject = render_to_string("registration/password_reset_subject.txt", context)
    send_mail(
        subject_line(subject),
        render_to_string("registration/password_reset_email.txt", context),
        None,
        [user.email],
    )
    return "sent"


def support_set_password_url(user) -> str:
    """The absolute link (``SITE_URL`` + Django's password-reset confirm view) where a support account chooses
    its password; the token (``default_token_generator``, valid ``PASSWORD_RESET_TIMEOUT``) is made here."""
    uid = urlsafe_base64_encode(force_bytes(user.pk))
    return absolute_url(
        reverse("password_reset_confirm", args=[uid, default_token_generator.make_token(user)])
    )


def send_support_welcome(user_id: int) -> str:
    """E-mail a new (or reactivated) support account the link to choose a password. Returns "sent", or "gone"
    when the account was deactivated meanwhile; raises what the mail backend raises (the task retries)."""
    user = get_user_model().objects.filter(pk=user_id, is_support=True, is_active=True).first()
    if user is None:
        return "gone"
    context = {"user": user, "url": support_set_password_url(user), "site_url": absolute_url("")}
    try:
        send_mail(
            subject_line("Your support account for billing sync readiness"),
            render_to_string("registration/support_welcome_email.txt", context),
            None,
            [user.email],
        )
    except Exception as exc:
        log.warning("support account e-mail %s failed: %s", user.pk, error_label(exc))
        raise
    return "sent"


SIGNUP_SALT = "onboarding.signup-confirm"
SIGNUP_MAX_AGE = 3 * 24 * 3600  # seconds a confirmation link works


def signup_confirm_url(user) -> str:
    """(Here, not in views.accounts: the mail sends it and the view reads it; one direction of imports.) The path of the link that confirms a new account's address (signed with SECRET_KEY, valid three days)."""
    token = signing.dumps({"u": user.pk, "e": user.email.lower()}, salt=SIGNUP_SALT)
    return reverse("signup_confirm", args=[token])


def send_signup_confirmation(user_id: int) -> str:
    """E-mail a new account the link that confirms its address and starts the wizard."""
    user = get_user_model().objects.filter(pk=user_id).first()
    if user is None:
        return "gone"
    context = {"user": user, "url": absolute_url(signup_confirm_url(user))}
    send_mail(
        subject_line("Confirm your e-mail address for billing sync readiness"),
        render_to_string("registration/signup_confirm_email.txt", context),
        None,
        [user.email],
    )
    return "sent"


def send_signup_notice(user_id: int) -> str:
    """Tell an account's owner that someone tried to sign up with their address (sign-up answers the same way
    whether or not an address has an account, so the owner learns it here instead of the visitor)."""
    user = get_user_model().objects.filter(pk=user_id).first()
    if user is None:
        return "gone"
    context = {
        "user": user,
        "login_url": absolute_url(reverse("login")),
        "reset_url": absolute_url(reverse("password_reset")),
    }
    send_mail(
        subject_line("Someone tried to create an account with your address"),
        render_to_string("registration/signup_exists_email.txt", context),
        None,
        [user.email],
    )
    return "sent"
