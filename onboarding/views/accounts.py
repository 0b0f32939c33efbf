"""Accounts: sign up (a new tenant and its first admin), sign in and out with throttling, password reset through
Django's views, and the team page where admins invite teammates by an e-mailed link.
"""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth import forms as auth_forms
from django.contrib.auth import get_user_model, login
from django.contrib.auth import views as auth_views
from django.contrib.auth.decorators import login_required
from django.core import signing
from django.core.exceptions import PermissionDenied
from django.db import IntegrityError, transaction
from django.db.models import Q
from django.http import Http404
from django.shortcuts import redirect, render
from django.urls import path, reverse, reverse_lazy
from django.utils import timezone
from django.views.decorators.http import require_GET, require_POST

from .. import ratelimits
from ..access import get_tenant
from ..forms import AcceptInvitationForm, InviteForm, SignupForm
from ..health import healthz as check
from ..mail import SIGNUP_MAX_AGE, SIGNUP_SALT, invitation_url, signup_confirm_url  # noqa: F401 (signup_confirm_url: tests)
from ..models import AuditEvent, Invitation, Membership, Tenant
from ..tasks import send_invitation, send_password_reset, send_signup_mail
from ..throttle import ThrottledAuthenticationForm

AUTH_BACKEND = "onboarding.auth.EmailBackend"


@login_required
def home(request):
    if request.user.is_support:
        return redirect("dashboard")
    tenants = list(Tenant.objects.for_user(request.user))
    if len(tenants) == 1:
        return redirect("tenant_home", slug=tenants[0].slug)
    return render(request, "onboarding/home.html", {"tenants": tenants})


# Sign in -----------------------------------------------------------------------------------------------------


class LoginView(auth_views.LoginView):
    """Django's sign-in behind the throttle in onboarding.throttle (per account and per address)."""

    redirect_authenticated_user = True
    authentication_form = ThrottledAuthenticationForm

    def form_invalid(self, form):
        response = super().form_invalid(form)
        if form.throttled:
            response.status_code = 429
        return response


# Sign up -----------------------------------------------------------------------------------------------------


def signup(request):
    """A new partner organisation and its first admin. The answer is the same whether or not the address has an
    account ("check your inbox"): a new address gets a link that confirms it and starts the wizard; the owner of
    an existing account gets a notice instead. Rate-limited per address and per client (onboarding.ratelimits)."""
    if request.user.is_authenticated and request.method == "GET":
        messages.info(request, "You are already signed in.")
        return redirect("home")
    form = SignupForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        limited = ratelimits.signup_limited(request, data["email"])
        if limited:
            form.add_error(None, limited)
            return render(request, "registration/signup.html", {"form": form}, status=429)
        _create_or_notify(data)
        request.session["signup_email"] = data["email"]
        return redirect("signup_sent")
    return render(request, "registration/signup.html", {"form": form})


def _create_or_notify(data: dict) -> None:
    User = get_user_model()
    email = data["email"]
    existing = User.objects.filter(Q(email__iexact=email) | Q(username__iexact=email)).order_by("id").first()
    if existing is not None:
        transaction.on_commit(lambda: send_signup_mail.delay(existing.pk, "exists"))
        return
    first, _, last = data["name"].strip().partition(" ")
    try:
        with transaction.atomic():
            # Inactive until the address is confirmed: nobody can sign up as someone else's address and then
            # accept an invitation bound to it.
            user = User.objects.create_user(
                username=email.lower(),
                email=email,
                password=data["password1"],
                first_name=first[:150],
                last_name=last[:150],
                is_active=False,
            )
            tenant = Tenant.objects.create(
                slug=Tenant.unique_slug(data["organisation"]), name=data["organisation"]
            )
            Membership.objects.create(tenant=tenant, user=user, role=Membership.Role.ADMIN)
            AuditEvent.record(
                AuditEvent.Kind.MEMBER_JOINED,
                tenant=tenant,
                actor=user,
                message=f"{user.email} signed up and created {tenant.name}",
                role=Membership.Role.ADMIN,
            )
            transaction.on_commit(lambda: send_signup_mail.delay(user.pk, "confirm"))
    except (
        IntegrityError
    ):  # a double submit or a race on the same address: the first one's mail is on its way
        return


@require_GET
def signup_sent(request):
    """ "Check your inbox": the same page whether the address was new or already had an account."""
    return render(
        request, "registration/signup_sent.html", {"email": request.session.get("signup_email", "")}
    )


def signup_confirm(request, token):
    """The link from the sign-up e-mail: GET shows a button (mail scanners open links), POST activates the account,
    signs in and starts the wizard."""
    try:
        data = signing.loads(token, salt=SIGNUP_SALT, max_age=SIGNUP_MAX_AGE)
        user = get_user_model().objects.filter(pk=int(data["u"]), email__iexact=str(data["e"])).first()
    except (signing.BadSignature, KeyError, TypeError, ValueError):
        user = None
    membership = user.memberships.select_related("tenant").order_by("pk").first() if user else None
    if user is None or membership is None:
        return render(request, "registration/signup_invalid.html", status=404)
    if request.method == "POST":
        if not user.is_active:
            get_user_model().objects.filter(pk=user.pk).update(is_active=True)
            user.is_active = True
        login(request, user, backend=AUTH_BACKEND)
        tenant = membership.tenant
        messages.success(request, f"Welcome! {tenant.name} is set up. Start by connecting your ConnectWise.")
        return redirect("step", slug=tenant.slug, key="connection")
    return render(
        request, "registration/signup_confirm.html", {"tenant": membership.tenant, "email": user.email}
    )


# Team and invitations ----------------------------------------------------------------------------------------


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


class PasswordResetForm(auth_forms.PasswordResetForm):
    """Django's reset form, but the e-mail is sent by a Celery task after commit (the worker makes the token: no
    reset link ever sits in a broker message)."""

    def save(self, *args, **kwargs) -> None:
        for user in self.get_users(self.cleaned_data["email"]):
            transaction.on_commit(lambda pk=user.pk: send_password_reset.delay(pk))


class PasswordResetView(auth_views.PasswordResetView):
    """Rate-limited per address and per client (429 with the form again); the answer does not depend on whether
    the address has an account."""

    form_class = PasswordResetForm
    template_name = "registration/password_reset_form.html"
    success_url = reverse_lazy("password_reset_done")

    def form_valid(self, form):
        limited = ratelimits.password_reset_limited(self.request, form.cleaned_data["email"])
        if limited:
            form.add_error(None, limited)
            return self.render_to_response(self.get_context_data(form=form), status=429)
        return super().form_valid(form)


password_reset = PasswordResetView.as_view()
password_reset_done = auth_views.PasswordResetDoneView.as_view(
    template_name="registration/password_reset_done.html"
)
password_reset_confirm = auth_views.PasswordResetConfirmView.as_view(
    template_name="registration/password_reset_confirm.html",
    success_url=reverse_lazy("password_reset_complete"),
)
password_reset_complete = auth_views.PasswordResetCompleteView.as_view(
    template_name="registration/password_reset_complete.html"
)


urlpatterns = [
    path("", home, name="home"),
    path("accounts/login/", LoginView.as_view(), name="login"),
    path("accounts/logout/", auth_views.LogoutView.as_view(), name="logout"),
    path("accounts/signup/", signup, name="signup"),
    path("accounts/signup/sent/", signup_sent, name="signup_sent"),
    path("accounts/signup/confirm/<str:token>/", signup_confirm, name="signup_confirm"),
    path("accounts/password-reset/", password_reset, name="password_reset"),
    path("accounts/password-reset/sent/", password_reset_done, name="password_reset_done"),
    path("accounts/reset/<uidb64>/<token>/", password_reset_confirm, name="password_reset_confirm"),
    path("accounts/reset/done/", password_reset_complete, name="password_reset_complete"),
    path("invitations/<uuid:token>/", accept_invitation, name="accept_invitation"),
    path("t/<slug:slug>/team/", team, name="team"),
    path("t/<slug:slug>/team/members/<uuid:member_uuid>/", member_update, name="member_update"),
    path(
        "t/<slug:slug>/team/invitations/<uuid:token>/withdraw/", revoke_invitation, name="revoke_invitation"
    ),
    path("t/<slug:slug>/team/invitations/<uuid:token>/resend/", resend_invitation, name="resend_invitation"),
]


def healthz(request):
    """Database and broker health (onboarding.health); normally answered by its middleware before this view."""
    return check(request)


urlpatterns.append(path("healthz", healthz, name="healthz"))
