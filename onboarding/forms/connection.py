"""The connection step's forms: the ConnectWise site (cloud region, on-premise host or the demo sandbox), company
ID and API keys, and replacing only the private key. Rendered through crispy-forms (Bootstrap 5); errors in plain
language next to the field.
"""

from __future__ import annotations

from crispy_forms.helper import FormHelper
from crispy_forms.layout import Field, Layout, Submit
from django import forms
from django.conf import settings

from connectwise.sites import CLOUD_HOSTS

from ..connections import ConnectionRefused, save_connection
from ..hosts import decide
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
    """``[(value, label)]`` for the site field: the sandbox first when configured, the cloud hosts, on-premise."""
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
