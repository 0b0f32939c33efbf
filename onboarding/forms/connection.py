"""Forms. Every form renders through crispy-forms (Bootstrap 5); errors in plain language next to the field."""

from __future__ import annotations

import codecs
import csv
import io

from crispy_forms.helper import FormHelper
from crispy_forms.layout import Field, Layout, Submit
from django import forms
from django.conf import settings
from django.contrib.auth import get_user_model, password_validation

from connectwise.checks import agreement_defaults
from connectwise.checks.choices import MOTION_LABELS
from connectwise.sites import CLOUD_HOSTS

from ..connections import ConnectionRefused, save_connection
from ..hosts import decide
from ..inputs import single_line, validate_name
from ..models import Connection

REGION_LABELS = {
    "api-na.myconnectwise.net": "North America (na.myconnectwise.net)",
    "api-eu.myconnectwise.net": "Europe (eu.myconnectwise.net)",
    "api-au.myconnectwise.net": "Australia (au.myconnectwise.net)",
    "api-aus.myconnectwise.net": "Australia South (aus.myconnectwise.net)",
    "api-za.myconnectwise.net": "South Africa (za.myconnectwise.net)",
    "api-staging.connectwisedev.com": "ConnectWise staging (connectwisedev.com)",
}
ONPREM = "onprem"
SANDBOX = "sandbox"


def region_choices() -> list[tuple[str, str]]:
    choices = [(h, REGION_LABELS.get(h, h)) for h in CLOUD_HOSTS]
    if settings.CONNECTWISE_SANDBOX_URL:
        choices.insert(0, (SANDBOX, f"Sandbox ConnectWise (demo, {settings.CONNECTWISE_SANDBOX_URL})"))
    choices.append((ONPREM, "On-premise server (your own host name)"))
    return choices


class ConnectionForm(forms.Form):
    """Step 1. The private key is write-only: left empty on an existing connection, the stored key is kept."""

    region = forms.ChoiceField(
        label="ConnectWise site", choices=(), help_text="Where your ConnectWise is hosted."
    )
    onprem_host = forms.CharField(
        label="On-premise host name",
        required=False,
        max_length=253,
        help_text="Only for on-premise servers, e.g. cw.example.com. Our support team must approve it first.",
    )
    company_id = forms.CharField(
        label="Company ID",
        max_length=100,
        help_text="The company name you type on ConnectWise's sign-in page.",
        widget=forms.TextInput(attrs={"autocomplete": "off", "spellcheck": "false"}),
    )
    public_key = forms.CharField(
        label="Public key",
        max_length=100,
        widget=forms.TextInput(attrs={"autocomplete": "off", "spellcheck": "false"}),
    )
    private_key = forms.CharField(
        label="Private key",
        max_length=100,
        required=False,
        strip=True,
        widget=forms.PasswordInput(attrs={"autocomplete": "new-password"}, render_value=False),
    )

    def __init__(self, *args, connection: Connection | None = None, **kwargs):
        self.connection = connection
        initial = kwargs.setdefault("initial", {})
        if connection is not None:
            initial.setdefault("company_id", connection.company_id)
            initial.setdefault("public_key", connection.public_key)
            decision = decide(connection.site)
            if decision.kind == "sandbox":
                initial.setdefault("region", SANDBOX)
            elif decision.api_host in CLOUD_HOSTS:
                initial.setdefault("region", decision.api_host)
            else:
                initial.setdefault("region", ONPREM)
                initial.setdefault("onprem_host", connection.site)
        super().__init__(*args, **kwargs)
        self.fields["region"].choices = region_choices()
        # app.js hides the on-premise host field unless "On-premise server" is chosen; without JS it stays visible.
        self.fields["region"].widget.attrs["data-onprem-toggle"] = ONPREM
        if connection is not None:
            self.fields["private_key"].help_text = (
                f"Stored encrypted, shown masked: {connection.private_key_masked}. To replace it, paste the new "
                "key; leave empty to keep it."
            )
        else:
            self.fields["private_key"].required = True
            self.fields[
                "private_key"
            ].help_text = "Shown once by ConnectWise when you create the API key. Stored encrypted."
        self.helper = FormHelper()
        self.helper.form_id = "connection-form"
        self.helper.layout = Layout(
            Field("region"),
            Field("onprem_host", wrapper_class="onprem-only"),
            Field("company_id"),
            Field("public_key"),
            Field("private_key"),
            Submit("save", "Save and check connection", css_class="btn-primary"),
        )

    def site(self) -> str:
        region = self.cleaned_data["region"]
        if region == SANDBOX:
            return settings.CONNECTWISE_SANDBOX_URL.split("://", 1)[1]
        if region == ONPREM:
            return self.cleaned_data.get("onprem_host", "")
        return region

    def clean(self):
        data = super().clean()
        if self.errors:
            return data
        if data.get("region") == ONPREM and not data.get("onprem_host"):
            self.add_error("onprem_host", "Enter your on-premise ConnectWise host name.")
            return data
        decision = decide(self.site())
        if not decision.allowed:
            field = "onprem_host" if data.get("region") == ONPREM else "region"
            self.add_error(field, decision.refused)
        self.decision = decision
        return data

    def save(self, tenant, *, user) -> tuple[Connection, bool]:
        """Create or update the connection through the one code path it shares with ``tenant_connect`` (which
        also records the audit event); returns (connection, key_replaced). A refusal at that point (the host's
        approval was withdrawn meanwhile, say) becomes a form error and ``ConnectionRefused`` is re-raised."""
        try:
            return save_connection(
                tenant,
                site=self.site(),
                company_id=self.cleaned_data["company_id"],
                public_key=self.cleaned_data["public_key"],
                private_key=self.cleaned_data.get("private_key") or None,
                actor=user,
            )
        except ConnectionRefused as exc:
            self.add_error(None, str(exc))
            raise


class ReplaceKeyForm(forms.Form):
    """Replace only the stored private key (e.g. after rotating the API key in ConnectWise). The field has its own
    name so that it never collides with the connection form's optional private key on the same page."""

    new_private_key = forms.CharField(
        label="New private key",
        max_length=100,
        strip=True,
        help_text="Paste the new key. The old one is overwritten; neither is ever shown again.",
        widget=forms.PasswordInput(attrs={"autocomplete": "new-password"}, render_value=False),
    )


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


CSV_MAX_BYTES = 1024 * 1024
CSV_MAX_ROWS = 20000
_HEADER_WORDS = {"name", "customer", "customer name", "company", "company name", "client", "client name"}


class CustomerCsvForm(forms.Form):
    """The billing side's customer list: a CSV with a ``name`` column, or names in the first column."""

    file = forms.FileField(
        label="Billing customer list (CSV)",
        help_text="A .csv file up to 1 MB with a column called 'name', or the names in the first column.",
        widget=forms.ClearableFileInput(attrs={"accept": ".csv,text/csv"}),
    )

    def clean_file(self):
        f = self.cleaned_data["file"]
        if f.size > CSV_MAX_BYTES:
            raise forms.ValidationError(
                f"This file is {f.size / 1024 / 1024:.1f} MB; the limit is 1 MB. Export only the customer names, "
                "or split the list. Nothing was imported."
            )
        name = (f.name or "").lower()
        if not (name.endswith(".csv") or name.endswith(".txt")):
            raise forms.ValidationError("Choose a .csv file (comma-separated values). Nothing was imported.")
        raw = f.read(CSV_MAX_BYTES + 1)
        text = decode_csv_bytes(raw)
        if text is None:
            raise forms.ValidationError(
                "This does not look like a CSV file (it contains binary data). Save the list as CSV "
                "(UTF-8, UTF-16 or Windows-1252) and try again. Nothing was imported."
            )
        try:
            self.names = parse_customer_names(text)
        except CsvProblem as exc:
            raise forms.ValidationError(f"{exc} Nothing was imported.") from None
        if not self.names:
            raise forms.ValidationError("The file has no customer names in it. Nothing was imported.")
        if len(self.names) > CSV_MAX_ROWS:
            raise forms.ValidationError(
                f"The file has more than {CSV_MAX_ROWS} names. Split it and try again."
            )
        return f


NAME_MAX_LENGTH = 200  # BillingCustomer.name


class CsvProblem(ValueError):
    """A customer list that cannot be imported; the message names the line."""


def decode_csv_bytes(raw: bytes) -> str | None:
    """The text of an uploaded CSV: UTF-8 (with or without BOM), UTF-16 (with a BOM, or without one when every
    other byte of ASCII text is NUL, as Excel's "Unicode text" writes it), else Windows-1252 (Excel's "CSV" on
    Windows). None when the bytes are not text in any of these (binary data, a NUL in the text)."""
    if raw.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        candidates = ["utf-16"]
    elif raw.startswith(codecs.BOM_UTF8):
        candidates = ["utf-8-sig"]
    else:
        candidates = ["utf-8", "cp1252"]
        sample = raw[:4096]
        if len(sample) >= 4 and sample[1::2].count(0) > len(sample) // 4:
            candidates.insert(0, "utf-16-le")
        elif len(sample) >= 4 and sample[0::2].count(0) > len(sample) // 4:
            candidates.insert(0, "utf-16-be")
    for encoding in candidates:
        try:
            text = raw.decode(encoding)
        except UnicodeDecodeError:
            continue
        if "\x00" in text:
            return None
        return text
    return None


def csv_problem(text: str) -> str | None:
    """Why the CSV reader cannot read ``text`` (a field over its 131,072-character limit, an unterminated quote),
    naming the line; None when every row reads. For imports whose rows another module parses."""
    try:
        dialect = csv.Sniffer().sniff(text[:4096], delimiters=",;\t")
    except csv.Error:
        dialect = csv.excel
    reader = csv.reader(io.StringIO(text), dialect)
    try:
        for _ in reader:
            pass
    except csv.Error as exc:
        detail = "a field is too long" if "field larger" in str(exc) else "it cannot be read as CSV"
        return f"Line {reader.line_num}: {detail}."
    return None


def parse_customer_names(text: str) -> list[str]:
    """Names from a CSV: the ``name`` column when there is one, else the first column; comma, semicolon or tab
    separated; blanks and repeats dropped; tabs and other control characters inside a name become spaces.

    Raises ``CsvProblem`` naming the line for a name longer than 200 characters or a field the CSV reader
    refuses (longer than its 131,072-character limit, or an unterminated quote)."""
    try:
        dialect = csv.Sniffer().sniff(text[:4096], delimiters=",;\t")
    except csv.Error:
        dialect = csv.excel
    reader = csv.reader(io.StringIO(text), dialect)
    rows: list[tuple[int, list[str]]] = []
    try:
        for row in reader:
            if any(c.strip() for c in row):
                rows.append((reader.line_num, row))
    except csv.Error as exc:
        detail = "a field is too long" if "field larger" in str(exc) else "it cannot be read as CSV"
        raise CsvProblem(f"Line {reader.line_num}: {detail}.") from None
    if not rows:
        return []
    header = [c.strip().lower() for c in rows[0][1]]
    column = 0
    if "name" in header:
        column, rows = header.index("name"), rows[1:]
    elif header and header[0] in _HEADER_WORDS:
        rows = rows[1:]
    seen: set[str] = set()
    names = []
    for line, row in rows:
        raw = row[column] if column < len(row) else ""
        if len(raw) > 10 * NAME_MAX_LENGTH:
            raise CsvProblem(
                f"Line {line}: the name is {len(raw):,} characters long; at most {NAME_MAX_LENGTH}."
            )
        value = single_line(raw, max_length=10 * NAME_MAX_LENGTH)
        if len(value) > NAME_MAX_LENGTH:
            raise CsvProblem(
                f"Line {line}: the name is {len(value):,} characters long; at most {NAME_MAX_LENGTH}."
            )
        if value and value.casefold() not in seen:
            seen.add(value.casefold())
            names.append(value)
    return names


class AgreementDefaultsForm(forms.Form):
    """Defaults for new agreements, per billing motion (issue 18). The type choices are the agreement types the
    latest agreements check read that the API member's role allows (``Tenant.agreement_types``); a motion left
    without a type has no defaults, so no agreement is created for it."""

    MOTIONS = tuple(MOTION_LABELS.items())  # (motion, label): connectwise.checks.choices

    def __init__(self, *args, tenant, **kwargs):
        super().__init__(*args, **kwargs)
        self.options = list(tenant.agreement_types or [])
        current = tenant.agreement_defaults or {}
        usable = agreement_defaults.selectable(self.options)
        for motion, label in self.MOTIONS:
            kinds = [o for o in usable if o["one_time"] == (motion == "annual")] or usable
            entry = current.get(motion) or {}
            self.fields[f"{motion}_type"] = forms.TypedChoiceField(
                label=f"{label}: agreement type",
                choices=[("", "No default: don't create")] + [(o["id"], o["name"]) for o in kinds],
                coerce=int,
                empty_value=None,
                required=False,
                initial=entry.get("type_id"),
                help_text="Only the types your API member's role allows (Access Allowed list).",
            )
            self.fields[f"{motion}_name"] = forms.CharField(
                label=f"{label}: name",
                max_length=200,
                required=False,
                initial=entry.get("name") or agreement_defaults.DEFAULT_NAMES[motion],
                help_text="{company} is the company's name, {identifier} its ID; never over 100 characters.",
            )
            self.fields[f"{motion}_start"] = forms.DateField(
                label=f"{label}: start date",
                required=False,
                initial=entry.get("start") or None,
                widget=forms.DateInput(attrs={"type": "date"}),
                help_text="Empty: the first day of the month the plan is built in.",
            )
        self.fields["annual_one_time"] = forms.BooleanField(
            label="Seat Based Annual: One-Time (Bill One Time under Recurring Invoice Parameters)",
            required=False,
            initial=(current.get("annual") or {}).get("one_time", True),
        )
        self.helper = FormHelper()
        self.helper.form_tag = False

    def clean(self):
        data = super().clean()
        raw = {}
        for motion, _ in self.MOTIONS:
            if data.get(f"{motion}_type") is None:
                continue
            start = data.get(f"{motion}_start")
            raw[motion] = {
                "type": data[f"{motion}_type"],
                "name": data.get(f"{motion}_name") or "",
                "start": start.isoformat() if start else "",
            }
            if motion == "annual":
                raw[motion]["one_time"] = bool(data.get("annual_one_time"))
        try:
            self.defaults = agreement_defaults.validate(raw, self.options)
        except agreement_defaults.DefaultsError as exc:
            for problem in exc.problems:
                where, _, text = problem.partition(": ")
                motion, _, key = where.partition(".")
                field = f"{motion}_{key}" if f"{motion}_{key}" in self.fields else None
                self.add_error(field, text or problem)
        return data
