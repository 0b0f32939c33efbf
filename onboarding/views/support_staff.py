"""The support page where support staff invite and deactivate support colleagues by e-mailed link, on the same
service module as ``manage.py support_user`` (onboarding.support_accounts): audited, never a password typed by
someone else, never a partner's account turned into a support account."""

from __future__ import annotations

import logging

from crispy_forms.helper import FormHelper
from django import forms
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.shortcuts import redirect, render
from django.urls import path
from django.views.decorators.http import require_http_methods

from .. import ratelimits
from ..access import require_support
from ..inputs import parse_choice
from ..support_accounts import SupportAccountError, add_support_user, remove_support_user, support_users

log = logging.getLogger(__name__)


class InviteSupportForm(forms.Form):
    """The address of a new support colleague; they get a link to choose their own password."""

    email = forms.EmailField(
        label="Colleague's e-mail", widget=forms.EmailInput(attrs={"autocomplete": "off"}), max_length=254
    )

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.helper = FormHelper()
        self.helper.form_tag = False  # the template's form carries action=invite on its button


@login_required
@require_http_methods(["GET", "POST"])
def support_staff(request):
    """List support accounts; POST action=invite (email) creates or reactivates one and e-mails a set-password
    link; POST action=deactivate (email) deactivates one (never your own: someone must remain to sign in)."""
    require_support(request)
    form = InviteSupportForm()
    if request.method == "POST":
        action = parse_choice(request.POST.get("action"), ("invite", "deactivate"), field="action")
        if action == "invite":
            form = InviteSupportForm(request.POST)
            if form.is_valid():
                return _invite(request, form.cleaned_data["email"])
        else:
            return _deactivate(request, request.POST.get("email", ""))
    return render(request, "dashboard/staff.html", {"form": form, "staff": list(support_users())})


def _invite(request, email: str):
    limited = ratelimits.invitation_limited(request, email)
    if limited:
        messages.error(request, limited)
        return redirect("support_staff")
    try:
        result = add_support_user(email, by=request.user)
    except SupportAccountError as exc:
        messages.error(request, str(exc))
        return redirect("support_staff")
    except Exception as exc:  # the account is saved; only the e-mail failed: inviting again re-sends it
        log.warning("support invitation e-mail failed: %s", type(exc).__name__)
        messages.error(
            request,
            f"The account for {email} is ready, but the e-mail could not be sent ({type(exc).__name__}). "
            "Invite the address again to re-send the link.",
        )
        return redirect("support_staff")
    if result.action == "already":
        messages.info(request, f"{result.user.email} already has an active support account.")
    elif result.action == "resent":
        messages.success(request, f"{result.user.email} has not chosen a password yet and gets a new link.")
    else:
        messages.success(request, f"{result.user.email} gets an e-mail with a link to choose a password.")
    return redirect("support_staff")


def _deactivate(request, email: str):
    if email.strip().casefold() == (request.user.email or "").casefold():
        messages.error(request, "You cannot deactivate your own account; ask a colleague.")
        return redirect("support_staff")
    try:
        changed = remove_support_user(email, by=request.user)
    except SupportAccountError as exc:
        messages.error(request, str(exc))
        return redirect("support_staff")
    if changed:
        messages.success(request, f"{email.strip()} can no longer sign in.")
    else:
        messages.info(request, f"{email.strip()} was already deactivated.")
    return redirect("support_staff")


urlpatterns = [path("support/staff/", support_staff, name="support_staff")]
