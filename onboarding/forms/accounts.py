"""The account forms: sign-up (a new tenant and its first admin), inviting a teammate, and an invited teammate's
new account. New passwords are checked against each other and Django's password validators.
"""

from __future__ import annotations

from django import forms
from django.contrib.auth import get_user_model, password_validation

from ..inputs import validate_name


def _password_field(
    label: str, *, autocomplete: str = "new-password", help_text: str = ""
) -> forms.CharField:
    return forms.CharField(
        label=label,
        strip=False,
        help_text=help_text,
        widget=forms.PasswordInput(attrs={"autocomplete": autocomplete}),
    )


class _NewPasswordMixin:
    """Two password fields checked against each other and Django's password validators."""

    def _clean_passwords(self, user) -> None:
        p1, p2 = self.cleaned_data.get("password1"), self.cleaned_data.get("password2")
        if p1 and p2 and p1 != p2:
            self.add_error("password2", "The two passwords do not match.")
            return
        if p1:
            try:
                password_validation.validate_password(p1, user)
            except forms.ValidationError as exc:
                self.add_error("password1", exc)


class SignupForm(_NewPasswordMixin, forms.Form):
    """A new partner organisation (tenant) and its first admin."""

    organisation = forms.CharField(
        label="Organisation name", max_length=200, help_text="Your company, as your team knows it."
    )
    name = forms.CharField(
        label="Your name", max_length=150, widget=forms.TextInput(attrs={"autocomplete": "name"})
    )
    email = forms.EmailField(label="Work e-mail", widget=forms.EmailInput(attrs={"autocomplete": "email"}))
    password1 = _password_field(
        "Password", help_text="At least 10 characters; not a common or all-numeric one."
    )
    password2 = _password_field("Password again")

    def clean_organisation(self) -> str:
        return validate_name(self.cleaned_data["organisation"], what="The organisation name")

    def clean_name(self) -> str:
        return validate_name(self.cleaned_data["name"], what="Your name")

    def clean_email(self) -> str:
        # Whether the address has an account is deliberately not said here: sign-up answers the same either way
        # and the owner gets an e-mail (views.accounts.signup).
        return self.cleaned_data["email"].strip()

    def clean(self):
        data = super().clean()
        User = get_user_model()
        self._clean_passwords(
            User(email=data.get("email", ""), username=data.get("email", ""), first_name=data.get("name", ""))
        )
        return data


class InviteForm(forms.Form):
    """Invite a teammate by e-mail as a read-only member or a partner admin; refuses someone already a member."""

    email = forms.EmailField(
        label="Teammate's e-mail", widget=forms.EmailInput(attrs={"autocomplete": "off"})
    )
    role = forms.ChoiceField(
        label="Access",
        choices=[
            ("member", "Read-only member: sees every step and result, changes nothing"),
            ("admin", "Partner admin: can change the connection, customers and approve repairs"),
        ],
        initial="member",
        widget=forms.RadioSelect,
    )

    def __init__(self, *args, tenant=None, **kwargs):
        self.tenant = tenant
        super().__init__(*args, **kwargs)

    def clean_email(self) -> str:
        email = self.cleaned_data["email"].strip()
        if self.tenant is not None and self.tenant.memberships.filter(user__email__iexact=email).exists():
            raise forms.ValidationError("This person is already a member of your organisation.")
        return email


class AcceptInvitationForm(_NewPasswordMixin, forms.Form):
    """Create an account for an invited teammate; the e-mail address comes from the invitation."""

    name = forms.CharField(
        label="Your name", max_length=150, widget=forms.TextInput(attrs={"autocomplete": "name"})
    )
    password1 = _password_field(
        "Password", help_text="At least 10 characters; not a common or all-numeric one."
    )
    password2 = _password_field("Password again")

    def __init__(self, *args, email: str = "", **kwargs):
        self.email = email
        super().__init__(*args, **kwargs)

    def clean_name(self) -> str:
        return validate_name(self.cleaned_data["name"], what="Your name")

    def clean(self):
        data = super().clean()
        User = get_user_model()
        self._clean_passwords(User(email=self.email, username=self.email, first_name=data.get("name", "")))
        return data
