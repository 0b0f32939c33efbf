"""The team page and invitations: admins invite teammates by an e-mailed link (resend, withdraw), change a
teammate's role or remove them (never the last admin), and the invitee accepts the link, bound to the invited
address.
"""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth import get_user_model, login
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.db import transaction
from django.http import Http404
from django.shortcuts import redirect, render
from django.urls import path, reverse
from django.utils import timezone
from django.views.decorators.http import require_POST

from .. import ratelimits
from ..access import get_tenant
from ..forms import AcceptInvitationForm, InviteForm
from ..mail import invitation_url
from ..models import AuditEvent, Invitation, Membership
from ..tasks import send_invitation
from .accounts import AUTH_BACKEND


def _enqueue_invitation(invitation: Invitation) -> None:
    """Send the invitation e-mail from the worker once the invitation row is committed (onboarding.mail)."""
    transaction.on_commit(lambda: send_invitation.delay(invitation.pk))


@login_required
def team(request, slug):
    access = get_tenant(request, slug, change=request.method == "POST")
    tenant = access.tenant
    form = InviteForm(request.POST or None, tenant=tenant) if access.can_change else None
    if request.method == "POST" and form.is_valid():
        email, role = form.cleaned_data["email"], form.cleaned_data["role"]
        limited = ratelimits.invitation_limited(request, email)
        if limited:
            messages.error(request, limited)
            return redirect("team", slug=slug)
        with transaction.atomic():
            # A new invitation for the same address replaces the older link.
            tenant.invitations.filter(email__iexact=email, accepted_at__isnull=True).delete()
            invitation = Invitation.objects.create(
                tenant=tenant, email=email, role=role, invited_by=request.user
            )
            AuditEvent.record(
                AuditEvent.Kind.MEMBER_INVITED,
                tenant=tenant,
                actor=request.user,
                message=f"Invited {email} as {invitation.get_role_display()}",
                email=email,
                role=role,
            )
            _enqueue_invitation(invitation)
        messages.success(
            request,
            f"Invitation to {email} is on its way. The link works for 7 days; if the e-mail cannot be sent, "
            "this page says so and offers the link to copy.",
        )
        return redirect("team", slug=slug)
    members = list(tenant.memberships.select_related("user").order_by("role", "user__email"))
    only_admin = [m for m in members if m.role == Membership.Role.ADMIN]
    for m in members:  # the last admin can be neither demoted nor removed (member_update refuses it too)
        m.is_only_admin = len(only_admin) == 1 and m is only_admin[0]
    pending = [
        i for i in tenant.invitations.filter(accepted_at__isnull=True).order_by("-created_at") if i.is_valid()
    ]
    if access.can_change:
        for i in pending:  # only admins see a failed invitation's link, to pass it on another way
            i.link = invitation_url(i) if i.mail_status == "failed" else ""
    return render(
        request,
        "onboarding/team.html",
        {"access": access, "tenant": tenant, "members": members, "pending": pending, "form": form},
    )


@login_required
@require_POST
def member_update(request, slug, member_uuid):
    """An admin makes a teammate admin or read-only, or removes them. The last admin can be neither demoted nor
    removed: a tenant without an admin could never approve a change again."""
    access = get_tenant(request, slug, change=True)
    tenant = access.tenant
    if not tenant.memberships.filter(uuid=member_uuid).exists():
        raise Http404  # looked up within this tenant: another tenant's member is not found
    action = request.POST.get("action")
    if action not in {"admin", "member", "remove"}:
        messages.error(request, "Choose what to do with this teammate.")
        return redirect("team", slug=slug)
    with transaction.atomic():
        membership = (
            tenant.memberships.select_for_update().select_related("user").filter(uuid=member_uuid).first()
        )
        if membership is None:  # removed meanwhile (a double click)
            return redirect("team", slug=slug)
        admins = tenant.memberships.select_for_update().filter(role=Membership.Role.ADMIN)
        leaves_no_admin = (
            membership.role == Membership.Role.ADMIN and action != "admin" and admins.count() == 1
        )
        if leaves_no_admin:
            messages.error(request, "This is the only admin: make someone else an admin first.")
            return redirect("team", slug=slug)
        email = membership.user.email
        if action == "remove":
            membership.delete()
            AuditEvent.record(
                AuditEvent.Kind.MEMBER_REMOVED,
                tenant=tenant,
                actor=request.user,
                message=f"Removed {email}",
                email=email,
            )
            messages.success(request, f"{email} no longer has access to {tenant.name}.")
        elif membership.role != action:
            membership.role = action
            membership.save(update_fields=["role"])
            AuditEvent.record(
                AuditEvent.Kind.MEMBER_CHANGED,
                tenant=tenant,
                actor=request.user,
                message=f"{email} is now {membership.get_role_display()}",
                email=email,
                role=action,
            )
            messages.success(request, f"{email} is now {membership.get_role_display().lower()}.")
    if action == "remove" and membership.user_id == request.user.id:
        return redirect("home")
    return redirect("team", slug=slug)


@login_required
@require_POST
def resend_invitation(request, slug, token):
    """Send a pending invitation's e-mail again (after a failure, or when the invitee cannot find it); the
    link stays the same. Rate-limited like sending a new invitation."""
    access = get_tenant(request, slug, change=True)
    invitation = access.tenant.invitations.filter(token=token, accepted_at__isnull=True).first()
    if invitation is None or not invitation.is_valid():
        raise Http404
    limited = ratelimits.invitation_limited(request, invitation.email)
    if limited:
        messages.error(request, limited)
        return redirect("team", slug=slug)
    with transaction.atomic():
        Invitation.objects.filter(pk=invitation.pk).update(mail_status="queued", mail_error="")
        AuditEvent.record(
            AuditEvent.Kind.MEMBER_INVITED,
            tenant=access.tenant,
            actor=request.user,
            message=f"Invitation e-mail to {invitation.email} sent again",
            email=invitation.email,
            role=invitation.role,
        )
        _enqueue_invitation(invitation)
    messages.success(request, f"The invitation to {invitation.email} is being sent again.")
    return redirect("team", slug=slug)


@login_required
@require_POST
def revoke_invitation(request, slug, token):
    access = get_tenant(request, slug, change=True)
    deleted, _ = access.tenant.invitations.filter(token=token, accepted_at__isnull=True).delete()
    if not deleted:
        raise Http404
    messages.success(request, "Invitation withdrawn; its link no longer works.")
    return redirect("team", slug=slug)


def invitation_refusal(user, invitation: Invitation) -> str | None:
    """Why this signed-in person may not accept the invitation, or None. An invitation is bound to the address it
    was sent to (compared case-insensitively): whoever else holds the link (a forwarded e-mail, another tenant's
    user) cannot use it; support staff accounts never join a partner's organisation."""
    if getattr(user, "is_support", False):
        return (
            "Support staff accounts cannot join a partner's organisation: they already see every tenant "
            "read-only from the support dashboard."
        )
    if (user.email or "").strip().casefold() != invitation.email.strip().casefold():
        return (
            f"This invitation was sent to {mask_email(invitation.email)}, and you are signed in as {user.email}. "
            "Sign out and open the link again to join with the invited address, or ask the admin who invited "
            "you to invite the address you use."
        )
    return None


def mask_email(email: str) -> str:
    """``in******@example.test``: enough for the invitee to recognise the address, not to learn someone else's."""
    local, _, domain = email.partition("@")
    return f"{local[:2]}{'*' * max(1, len(local) - 2)}@{domain}"


def accept_invitation(request, token):
    """Join a tenant from an e-mailed link. The invitation is bound to its address: a signed-in person joins only
    when their account has that address (anyone else gets a 403 saying why); otherwise an account is created
    for the invited address (or, when that address already has an account, the person is asked to sign in)."""
    invitation = Invitation.objects.select_related("tenant", "invited_by").filter(token=token).first()
    if invitation is None or not invitation.is_valid():
        return render(request, "registration/invitation_invalid.html", status=404)
    if request.user.is_authenticated:
        refusal = invitation_refusal(request.user, invitation)
        if refusal:
            return render(
                request,
                "registration/invitation_refused.html",
                {"tenant": invitation.tenant, "reason": refusal},
                status=403,
            )
    User = get_user_model()
    existing = User.objects.filter(email__iexact=invitation.email).order_by("id").first()
    signed_in = request.user.is_authenticated
    form = (
        None if signed_in or existing else AcceptInvitationForm(request.POST or None, email=invitation.email)
    )
    if request.method == "POST":
        if not signed_in and existing:
            return redirect(f"{reverse('login')}?next={request.path}")
        if signed_in or form.is_valid():
            return _join(request, invitation, form)
    return render(
        request,
        "registration/accept_invitation.html",
        {"invitation": invitation, "tenant": invitation.tenant, "form": form, "existing": existing},
    )


def _join(request, invitation: Invitation, form: AcceptInvitationForm | None):
    tenant = invitation.tenant
    with transaction.atomic():
        # Claim the invitation once: a double click or a second tab does not join twice.
        if not Invitation.objects.filter(pk=invitation.pk, accepted_at__isnull=True).update(
            accepted_at=timezone.now()
        ):
            return render(request, "registration/invitation_invalid.html", status=404)
        if form is None:
            user = request.user
            if invitation_refusal(user, invitation):  # checked by the caller; never join on a mismatch
                raise PermissionDenied("This invitation is for another address.")
        else:
            first, _, last = form.cleaned_data["name"].strip().partition(" ")
            user = get_user_model().objects.create_user(
                username=invitation.email.lower(),
                email=invitation.email,
                password=form.cleaned_data["password1"],
                first_name=first[:150],
                last_name=last[:150],
            )
        membership, created = Membership.objects.get_or_create(
            tenant=tenant, user=user, defaults={"role": invitation.role}
        )
        if created:
            AuditEvent.record(
                AuditEvent.Kind.MEMBER_JOINED,
                tenant=tenant,
                actor=user,
                message=f"{user.email} joined as {membership.get_role_display()}",
                role=membership.role,
                invited_by=getattr(invitation.invited_by, "email", ""),
            )
    if form is not None:
        login(request, user, backend=AUTH_BACKEND)
    if created:
        messages.success(request, f"Welcome to {tenant.name}.")
    else:
        messages.info(request, f"You were already a member of {tenant.name}.")
    return redirect("tenant_home", slug=tenant.slug)


urlpatterns = [
    path("invitations/<uuid:token>/", accept_invitation, name="accept_invitation"),
    path("t/<slug:slug>/team/", team, name="team"),
    path("t/<slug:slug>/team/members/<uuid:member_uuid>/", member_update, name="member_update"),
    path(
        "t/<slug:slug>/team/invitations/<uuid:token>/withdraw/", revoke_invitation, name="revoke_invitation"
    ),
    path("t/<slug:slug>/team/invitations/<uuid:token>/resend/", resend_invitation, name="resend_invitation"),
]
