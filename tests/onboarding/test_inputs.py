"""The strict input helpers (onboarding.inputs) and the views that parse ids with them: a bad value is a 400 that
names the field and changes nothing, never a 500."""

from __future__ import annotations

import pytest
from django import forms
from django.urls import reverse

from onboarding.inputs import (
    BadInput,
    control_characters,
    parse_choice,
    parse_id,
    parse_ids,
    parse_optional_id,
    single_line,
    validate_name,
)
from onboarding.models import AuditEvent, CompanyChoice, CompanyDirectory


@pytest.mark.parametrize("value", ["1", "42", "2147483647"])
def test_parse_id_accepts_positive_32_bit_ids(value):
    assert parse_id(value, field="company") == int(value)


@pytest.mark.parametrize(
    "value",
    [
        "",
        " 1",
        "1 ",
        "abc",
        "0",
        "-1",
        "+1",
        "1.5",
        "1e3",
        "0x10",
        "²",
        "١٢",
        "2147483648",
        "9" * 25,
        None,
        7,
    ],
)
def test_parse_id_refuses_everything_else_naming_the_field(value):
    with pytest.raises(BadInput, match="^company: "):
        parse_id(value, field="company")


def test_parse_id_takes_a_larger_maximum_for_our_own_primary_keys():
    assert parse_id(str(2**40), field="customer", maximum=2**63 - 1) == 2**40
    with pytest.raises(BadInput):
        parse_id(str(2**63), field="customer", maximum=2**63 - 1)


def test_parse_ids_optional_and_choice():
    assert parse_ids(["3", "1", "3"], field="company") == [3, 1]
    with pytest.raises(BadInput):
        parse_ids(["1", "x"], field="company")
    with pytest.raises(BadInput, match="at most 2"):
        parse_ids(["1", "2", "3"], field="company", limit=2)
    assert parse_optional_id("", field="agreement") is None
    assert parse_choice("", ["save", "bulk"], field="action", default="save") == "save"
    with pytest.raises(BadInput, match="action: 'nope' is not one of save, bulk"):
        parse_choice("nope", ["save", "bulk"], field="action")


def test_names_refuse_control_characters_and_subjects_are_one_line():
    assert control_characters("Example Org\nLine2\u202e\x00") == ["U+000A", "U+202E", "U+0000"]
    assert validate_name("  Example   Org ") == "Example Org"
    for bad in ["Example Org\nLine2", "Tab\there", "NUL\x00", "Esc\x1b[31m", "Bidi\u202eevil"]:
        with pytest.raises(forms.ValidationError, match="control characters"):
            validate_name(bad, what="The organisation name")
    assert single_line("Example Org\r\nBcc: x@example.test\x00") == "Example Org Bcc: x@example.test"
    assert len(single_line("x" * 500, max_length=100)) == 100


@pytest.fixture
def chosen(tenant_a):
    CompanyDirectory.objects.create(
        tenant=tenant_a, cw_company_id=2, identifier="Contoso", name="Contoso Ltd", normalized="contoso",
        agreements=[{"id": 10, "name": "O365", "active": True}],
    )  # fmt: skip
    return CompanyChoice.objects.create(
        tenant=tenant_a, cw_company_id=2, identifier="Contoso", name="Contoso Ltd"
    )


@pytest.mark.parametrize(
    "url_name, data, field",
    [
        # the item 3: a non-numeric agreement id
        ("agreements_save", {"row": "2", "agreement-2": "abc", "motion-2": "annual"}, "agreement-2"),
        # item 4: ids beyond 64 bits, positive and negative, on every form that takes ids
        ("agreements_save", {"row": "9" * 25}, "row"),
        ("agreements_save", {"row": "2", "agreement-2": "-" + "9" * 25}, "agreement-2"),
        ("agreements_save", {"action": "bulk", "company": "9" * 25, "bulk_motion": "annual"}, "company"),
        ("customers_select", {"action": "add", "company": "9999999999999999999999999"}, "company"),
        ("customers_select", {"action": "remove", "company": ["2", "-" + "9" * 25]}, "company"),
        ("billing_match", {"customer": "9" * 25, "company": "2"}, "customer"),
        ("billing_match", {"customer": "1", "company": "²"}, "company"),
    ],
)
def test_bad_ids_are_a_400_naming_the_field_and_change_nothing(
    client, admin_a, tenant_a, chosen, url_name, data, field
):
    client.force_login(admin_a)
    before = (
        list(CompanyChoice.objects.values_list("cw_company_id", "motion", "agreement_id")),
        AuditEvent.objects.count(),
    )
    response = client.post(reverse(url_name, args=[tenant_a.slug]), data)
    assert response.status_code == 400
    assert f"{field}: " in response.content.decode()
    after = (
        list(CompanyChoice.objects.values_list("cw_company_id", "motion", "agreement_id")),
        AuditEvent.objects.count(),
    )
    assert after == before


def test_a_nul_character_anywhere_is_a_400(client, admin_a, tenant_a):
    client.force_login(admin_a)
    response = client.get(reverse("step", args=[tenant_a.slug, "customers"]), {"q": "Con\x00toso"})
    assert response.status_code == 400
    assert "q: contains a NUL character" in response.content.decode()


@pytest.mark.parametrize(
    "next_url", ["/t/x/\nSet-Cookie: a=b", "//evil.example/", "https://evil.example/", "nope"]
)
def test_a_bad_next_falls_back_to_the_page_itself(client, admin_a, tenant_a, chosen, next_url):
    client.force_login(admin_a)
    response = client.post(
        reverse("customers_select", args=[tenant_a.slug]),
        {"action": "remove", "company": "2", "next": next_url},
    )
    assert response.status_code == 302
    assert response["Location"] == reverse("step", args=[tenant_a.slug, "customers"])


@pytest.mark.parametrize("field", ["company_id", "public_key", "private_key"])
def test_connection_values_with_control_characters_are_refused_on_the_web_and_the_cli(
    client, admin_a, tenant_a, monkeypatch, field
):
    from django.core.management import call_command
    from django.core.management.base import CommandError

    from onboarding.models import Connection, Tenant

    values = {"company_id": "acme", "public_key": "pub", "private_key": "private-0123456789"}
    values[field] = values[field][:2] + "\n" + values[field][2:]
    client.force_login(admin_a)
    response = client.post(
        reverse("step", args=[tenant_a.slug, "connection"]), {"region": "api-na.myconnectwise.net", **values}
    )
    assert response.status_code == 400 and "control characters" in response.content.decode()
    assert "private-0123456789" not in response.content.decode()
    monkeypatch.setenv("CW_PRIVATE_KEY", values["private_key"])
    with pytest.raises(CommandError, match="control characters"):
        call_command("tenant_connect", "newco", "--site", "api-na.myconnectwise.net", "--company",
                     values["company_id"], "--public-key", values["public_key"])  # fmt: skip
    assert not Connection.objects.exists() and not Tenant.objects.filter(slug="newco").exists()


@pytest.mark.parametrize(
    "content, message",
    [
        (
            b"customer,product,quantity\nContoso,x,1\n" + b"x" * 200_000 + b"\n",
            "Line 3: a field is too long.",
        ),
        (bytes(range(256)), "does not look like a CSV file"),
    ],
)
def test_the_subscription_preview_import_refuses_what_the_csv_reader_cannot_read(
    client, admin_a, tenant_a, content, message
):
    """The same kind of fault as item 5, in the first-sync preview's import: a form error, never a 500."""
    from django.core.files.uploadedfile import SimpleUploadedFile

    from onboarding.models import SyncPreview

    client.force_login(admin_a)
    response = client.post(
        reverse("previews", args=[tenant_a.slug]),
        {"file": SimpleUploadedFile("subs.csv", content, content_type="text/csv")},
    )
    assert response.status_code == 400 and message in response.content.decode()
    assert not SyncPreview.objects.exists()
