"""Accounts: sign up (a new tenant and its first admin) with its e-mailed confirmation, sign in and out with
throttling, password reset through Django's views, the home redirect and ``healthz``. The team page and
invitations are in ``onboarding.views.team``.
"""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth import forms as auth_forms
from django.contrib.auth import get_user_model, login
from django.contrib.auth import views as auth_views
from django.contrib.auth.decorators import login_required
from django.core import signing
from django.db import IntegrityError, transaction
from django.db.models import Q
from django.shortcuts import redirect, render
from django.urls import path, reverse_lazy
from django.views.decorators.http import require_GET

from .. import ratelimits
from ..forms import SignupForm
from ..health import healthz as check
from ..mail import SIGNUP_MAX_AGE, SIGNUP_SALT, signup_confirm_url  # noqa: F401 (signup_confirm_url: tests)
from ..models import AuditEvent, Membership, Tenant
from ..tasks import send_password_reset, send_signup_mail
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


# Password reset ----------------------------------------------------------------------------------------------


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
]


def healthz(request):
    """Database and broker health (onboarding.health); normally answered by its middleware before this view."""
    return check(request)


urlpatterns.append(path("healthz", healthz, name="healthz"))
