"""The customers page: the cached company directory (search, filters, paging, select), the refresh job, and the
billing CSV import with match suggestions."""

from __future__ import annotations

from unittest import mock

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse

from onboarding.models import AuditEvent, BillingCustomer, CheckRun, CompanyChoice
from tests.onboarding.wizard_helpers import (  # noqa: F401 (fixtures)
    agreement,
    clean_cache_fixture,
    connection_a_fixture,
    directory_row,
)

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _no_worker():
    with mock.patch("onboarding.tasks.run_checks.delay") as delay:
        yield delay


@pytest.fixture
def directory(tenant_a):
    """120 companies: every third inactive, every other one with an active agreement; plus two Contosos."""
    rows = []
    for i in range(1, 121):
        agreements = [agreement(1000 + i, "Managed")] if i % 2 == 0 else []
        rows.append(
            directory_row(tenant_a, i, f"Company {i:03d}", inactive=i % 3 == 0, agreements=agreements)
        )
    rows.append(
        directory_row(tenant_a, 501, "Contoso Ltd", identifier="CONTOSO", agreements=[agreement(9, "O365")])
    )
    rows.append(directory_row(tenant_a, 502, "CONTOSO LIMITED", identifier="CONTOSO2"))
    rows.append(directory_row(tenant_a, 503, "Fabrikam Inc", identifier="FAB"))
    return rows


def _page(client, tenant, **params):
    return client.get(reverse("step", args=[tenant.slug, "customers"]), params)


def _ids(response) -> list[int]:
    return [r["c"].cw_company_id for r in response.context["rows"]]


# The directory -----------------------------------------------------------------------------------------------


def test_empty_directory_explains_how_to_fill_it(client, admin_a, tenant_a, connection_a):
    client.force_login(admin_a)
    html = _page(client, tenant_a).content.decode()
    assert "We have not read your company list yet" in html
    assert "Refresh company list" in html


def test_directory_is_paged_by_fifty(client, member_a, tenant_a, directory):
    client.force_login(member_a)
    first = _page(client, tenant_a)
    assert len(first.context["rows"]) == 50
    assert first.context["page"].paginator.count == 123
    last = _page(client, tenant_a, page=3)
    assert len(last.context["rows"]) == 23
    assert "Page 3 of 3" in last.content.decode()


def test_search_matches_name_or_identifier(client, member_a, tenant_a, directory):
    client.force_login(member_a)
    assert sorted(_ids(_page(client, tenant_a, q="contoso"))) == [501, 502]
    assert _ids(_page(client, tenant_a, q="FAB")) == [503]
    html = _page(client, tenant_a, q="zzz").content.decode()
    assert "No company matches these filters" in html


def test_filter_by_status_and_agreement(client, member_a, tenant_a, directory):
    client.force_login(member_a)
    inactive = _page(client, tenant_a, status="inactive", q="Company")
    assert inactive.context["page"].paginator.count == 40
    assert all(r["c"].inactive for r in inactive.context["rows"])
    with_agreement = _page(client, tenant_a, agreement="yes", status="active", q="Company")
    ids = [r["c"].cw_company_id for r in with_agreement.context["rows"]]
    assert ids and all(i % 2 == 0 and i % 3 != 0 for i in ids)
    without = _page(client, tenant_a, agreement="no")
    assert 501 not in _ids(without) and 502 in [
        r["c"].cw_company_id for r in _page(client, tenant_a, agreement="no", q="contoso").context["rows"]
    ]


def test_filters_are_kept_in_paging_links(client, member_a, tenant_a, directory):
    client.force_login(member_a)
    html = _page(client, tenant_a, q="Company", status="active").content.decode()
    assert "?q=Company&amp;status=active&amp;page=2" in html


def test_each_company_shows_status_agreement_and_duplicates(client, member_a, tenant_a, directory):
    client.force_login(member_a)
    response = _page(client, tenant_a, q="contoso")
    html = response.content.decode()
    assert all(r["duplicate"] for r in response.context["rows"])
    assert "Duplicate name" in html
    assert "Yes (1)" in html and "None" in html


def test_admin_adds_selected_companies_with_identifier_and_name(client, admin_a, tenant_a, directory):
    client.force_login(admin_a)
    back = reverse("step", args=[tenant_a.slug, "customers"]) + "?q=contoso"
    response = client.post(
        reverse("customers_select", args=[tenant_a.slug]),
        {"action": "add", "company": ["501", "503", "999999"], "next": back},
    )
    assert response.status_code == 302 and response.url == back
    choices = {c.cw_company_id: c for c in CompanyChoice.objects.filter(tenant=tenant_a)}
    assert set(choices) == {501, 503}  # an id that is not in the directory is ignored
    assert choices[501].identifier == "CONTOSO" and choices[501].name == "Contoso Ltd"
    assert AuditEvent.objects.filter(tenant=tenant_a, kind=AuditEvent.Kind.CUSTOMERS_CHANGED).count() == 1
    # adding again changes nothing
    client.post(reverse("customers_select", args=[tenant_a.slug]), {"action": "add", "company": ["501"]})
    assert CompanyChoice.objects.filter(tenant=tenant_a).count() == 2
    html = _page(client, tenant_a).content.decode()
    assert "Chosen for the sync (2)" in html


def test_admin_removes_chosen_companies(client, admin_a, tenant_a, directory):
    CompanyChoice.objects.create(tenant=tenant_a, cw_company_id=501, name="Contoso Ltd")
    CompanyChoice.objects.create(tenant=tenant_a, cw_company_id=503, name="Fabrikam Inc")
    client.force_login(admin_a)
    client.post(reverse("customers_select", args=[tenant_a.slug]), {"action": "remove", "company": ["501"]})
    assert list(CompanyChoice.objects.filter(tenant=tenant_a).values_list("cw_company_id", flat=True)) == [
        503
    ]
    assert AuditEvent.objects.filter(tenant=tenant_a, kind=AuditEvent.Kind.CUSTOMERS_CHANGED).exists()


def test_page_has_select_all_for_admins_only(client, admin_a, member_a, tenant_a, directory):
    client.force_login(admin_a)
    assert 'data-select-all="company"' in _page(client, tenant_a).content.decode()
    client.force_login(member_a)
    html = _page(client, tenant_a).content.decode()
    assert 'data-select-all="company"' not in html and "Add selected" not in html


def test_selecting_is_403_for_a_member_and_404_for_an_outsider(
    client, member_a, outsider_b, tenant_a, directory
):
    url = reverse("customers_select", args=[tenant_a.slug])
    client.force_login(member_a)
    assert client.post(url, {"action": "add", "company": ["501"]}).status_code == 403
    client.force_login(outsider_b)
    assert client.post(url, {"action": "add", "company": ["501"]}).status_code == 404
    assert client.get(reverse("step", args=[tenant_a.slug, "customers"])).status_code == 404
    assert not CompanyChoice.objects.exists()


def test_refresh_starts_a_customers_run_and_never_calls_connectwise(client, admin_a, tenant_a, connection_a):
    client.force_login(admin_a)
    with mock.patch("onboarding.cw.client_for", side_effect=AssertionError("views never call ConnectWise")):
        response = client.post(reverse("customers_refresh", args=[tenant_a.slug]))
    assert response.status_code == 302
    run = CheckRun.objects.get(tenant=tenant_a)
    assert run.steps == ["customers"] and run.status == CheckRun.Status.QUEUED


def test_refresh_without_a_connection_says_what_to_do(client, admin_a, tenant_a):
    client.force_login(admin_a)
    response = client.post(reverse("customers_refresh", args=[tenant_a.slug]), follow=True)
    assert "Save your ConnectWise connection first" in response.content.decode()
    assert not CheckRun.objects.exists()


def test_refresh_is_403_for_a_member_and_404_for_an_outsider(
    client, member_a, outsider_b, tenant_a, connection_a
):
    client.force_login(member_a)
    assert client.post(reverse("customers_refresh", args=[tenant_a.slug])).status_code == 403
    client.force_login(outsider_b)
    assert client.post(reverse("customers_refresh", args=[tenant_a.slug])).status_code == 404
    assert not CheckRun.objects.exists()


# CSV import --------------------------------------------------------------------------------------------------


def _upload(client, tenant, content: bytes, name="customers.csv"):
    return client.post(
        reverse("customers_import", args=[tenant.slug]),
        {"file": SimpleUploadedFile(name, content, content_type="text/csv")},
    )


def test_import_reads_the_name_column_and_suggests_matches(client, admin_a, tenant_a, directory):
    client.force_login(admin_a)
    csv = b"id,name,seats\n1,Contoso,10\n2,Fabrikam Incorporated,3\n3,Nobody Here,1\n4,contoso,2\n"
    response = _upload(client, tenant_a, csv)
    assert response.status_code == 302
    names = sorted(BillingCustomer.objects.filter(tenant=tenant_a).values_list("name", flat=True))
    assert names == ["Contoso", "Fabrikam Incorporated", "Nobody Here"]  # repeats dropped
    assert BillingCustomer.objects.get(name="Fabrikam Incorporated").normalized == "fabrikam"
    assert AuditEvent.objects.filter(tenant=tenant_a, kind=AuditEvent.Kind.CUSTOMERS_CHANGED).exists()

    page = _page(client, tenant_a)
    rows = {r["b"].name: r for r in page.context["billing_rows"]}
    assert {s.company_id for s in rows["Contoso"]["suggestions"] if s.exact} == {501, 502}
    assert rows["Contoso"]["duplicate"]  # two companies share the normalised name
    assert [s.company_id for s in rows["Fabrikam Incorporated"]["suggestions"]][:1] == [503]
    assert not rows["Nobody Here"]["suggestions"]
    html = page.content.decode()
    assert "Several companies have this name" in html and "No company with a similar name" in html


def test_import_uses_the_first_column_without_a_name_header(client, admin_a, tenant_a):
    client.force_login(admin_a)
    _upload(client, tenant_a, "Customer\nÆrø Fisk ApS\nContoso Ltd\n\n".encode())
    assert sorted(BillingCustomer.objects.values_list("name", flat=True)) == ["Contoso Ltd", "Ærø Fisk ApS"]


def test_import_of_headerless_names(client, admin_a, tenant_a):
    client.force_login(admin_a)
    _upload(client, tenant_a, b"Contoso Ltd\nFabrikam Inc\n")
    assert BillingCustomer.objects.count() == 2


@pytest.mark.parametrize(
    "content, name, message",
    [
        (b"", "empty.csv", "empty"),
        (b"name\n\n  \n", "blank.csv", "no customer names"),
        (b"\x89PNG\r\n\x1a\n\x00\x00\x00", "picture.csv", "does not look like a CSV"),
        (b"name\nContoso\n", "customers.xlsx", "Choose a .csv file"),
    ],
)
def test_a_bad_file_is_refused_and_nothing_is_lost(client, admin_a, tenant_a, content, name, message):
    BillingCustomer.objects.create(tenant=tenant_a, name="Kept Ltd", normalized="kept", cw_company_id=7)
    client.force_login(admin_a)
    response = _upload(client, tenant_a, content, name=name)
    assert response.status_code == 400
    assert message in response.content.decode()
    assert list(BillingCustomer.objects.values_list("name", "cw_company_id")) == [("Kept Ltd", 7)]


def test_a_file_over_one_megabyte_is_refused(client, admin_a, tenant_a):
    client.force_login(admin_a)
    big = b"name\n" + b"Contoso Ltd\n" * 100_000
    response = _upload(client, tenant_a, big)
    assert response.status_code == 400
    assert "the limit is 1 MB" in response.content.decode()
    assert not BillingCustomer.objects.exists()


def test_reimport_keeps_accepted_matches(client, admin_a, tenant_a, directory):
    BillingCustomer.objects.create(
        tenant=tenant_a, name="Fabrikam Inc", normalized="fabrikam", cw_company_id=503
    )
    client.force_login(admin_a)
    _upload(client, tenant_a, b'name\n"Fabrikam, Inc."\nContoso\n')
    assert BillingCustomer.objects.get(name="Fabrikam, Inc.").cw_company_id == 503
    assert BillingCustomer.objects.get(name="Contoso").cw_company_id is None


def test_import_is_403_for_a_member_and_404_for_an_outsider(client, member_a, outsider_b, tenant_a):
    client.force_login(member_a)
    assert _upload(client, tenant_a, b"name\nContoso\n").status_code == 403
    client.force_login(outsider_b)
    assert _upload(client, tenant_a, b"name\nContoso\n").status_code == 404
    assert not BillingCustomer.objects.exists()


def test_accepting_a_suggestion_matches_and_chooses_the_company(client, admin_a, tenant_a, directory):
    customer = BillingCustomer.objects.create(tenant=tenant_a, name="Contoso", normalized="contoso")
    client.force_login(admin_a)
    response = client.post(
        reverse("billing_match", args=[tenant_a.slug]),
        {"customer": customer.pk, "company": 502, "action": "match"},
    )
    assert response.status_code == 302
    customer.refresh_from_db()
    assert customer.cw_company_id == 502
    choice = CompanyChoice.objects.get(tenant=tenant_a, cw_company_id=502)
    assert choice.name == "CONTOSO LIMITED" and choice.identifier == "CONTOSO2"
    assert AuditEvent.objects.filter(tenant=tenant_a, kind=AuditEvent.Kind.CUSTOMERS_CHANGED).exists()
    # unmatch leaves the company chosen
    client.post(
        reverse("billing_match", args=[tenant_a.slug]), {"customer": customer.pk, "action": "unmatch"}
    )
    customer.refresh_from_db()
    assert customer.cw_company_id is None
    assert CompanyChoice.objects.filter(tenant=tenant_a, cw_company_id=502).exists()


def test_accepting_a_company_outside_the_directory_is_refused(client, admin_a, tenant_a, directory):
    customer = BillingCustomer.objects.create(tenant=tenant_a, name="Contoso", normalized="contoso")
    client.force_login(admin_a)
    client.post(reverse("billing_match", args=[tenant_a.slug]), {"customer": customer.pk, "company": 424242})
    customer.refresh_from_db()
    assert customer.cw_company_id is None
    assert not CompanyChoice.objects.exists()


def test_accept_all_exact_matches_skips_duplicates(client, admin_a, tenant_a, directory):
    BillingCustomer.objects.create(tenant=tenant_a, name="Contoso", normalized="contoso")
    BillingCustomer.objects.create(tenant=tenant_a, name="Fabrikam", normalized="fabrikam")
    client.force_login(admin_a)
    client.post(reverse("billing_match", args=[tenant_a.slug]), {"action": "exact"})
    assert BillingCustomer.objects.get(name="Fabrikam").cw_company_id == 503
    assert BillingCustomer.objects.get(name="Contoso").cw_company_id is None  # two Contosos: the admin picks
    assert list(CompanyChoice.objects.values_list("cw_company_id", flat=True)) == [503]


def test_matching_is_403_for_a_member_and_404_for_an_outsider(
    client, member_a, outsider_b, tenant_a, directory
):
    customer = BillingCustomer.objects.create(tenant=tenant_a, name="Contoso", normalized="contoso")
    url = reverse("billing_match", args=[tenant_a.slug])
    client.force_login(member_a)
    assert client.post(url, {"customer": customer.pk, "company": 501}).status_code == 403
    client.force_login(outsider_b)
    assert client.post(url, {"customer": customer.pk, "company": 501}).status_code == 404
    customer.refresh_from_db()
    assert customer.cw_company_id is None


@pytest.mark.parametrize(
    "content",
    [
        "name\nCafé Nord Ltd\nFabrikam\n".encode(),
        "name\nCafé Nord Ltd\nFabrikam\n".encode("utf-8-sig"),
        "name\nCafé Nord Ltd\nFabrikam\n".encode("utf-16"),  # with a BOM, as Excel's "Unicode text"
        "name\nCafé Nord Ltd\nFabrikam\n".encode("utf-16-le"),  # without one
        "name\nCafé Nord Ltd\nFabrikam\n".encode("cp1252"),  # Excel's CSV on Windows
        "id;name;seats\n1;Café Nord Ltd;3\n2;Fabrikam;1\n".encode("cp1252"),  # semicolons (European Excel)
    ],
    ids=["utf8", "utf8-bom", "utf16-bom", "utf16le", "cp1252", "semicolon-cp1252"],
)
def test_import_reads_the_usual_encodings_and_separators(client, admin_a, tenant_a, content):
    client.force_login(admin_a)
    response = _upload(client, tenant_a, content)
    assert response.status_code == 302
    assert sorted(BillingCustomer.objects.values_list("name", flat=True)) == ["Café Nord Ltd", "Fabrikam"]


@pytest.mark.parametrize(
    "content, line",
    [
        (b"name\nContoso\n" + b"x" * 200_000 + b"\nFabrikam\n", 3),  # beyond the csv module's field limit
        (b'name\nContoso\n"' + b"y" * 140_000 + b'"\n', 3),
        (b"name\nContoso\nFabrikam\n" + b"z" * 201 + b"\n", 4),  # longer than a name may be
    ],
    ids=["200k", "quoted-140k", "201"],
)
def test_an_over_long_field_is_refused_naming_its_line(client, admin_a, tenant_a, content, line):
    BillingCustomer.objects.create(tenant=tenant_a, name="Kept Ltd", normalized="kept", cw_company_id=7)
    client.force_login(admin_a)
    response = _upload(client, tenant_a, content)
    assert response.status_code == 400
    assert f"Line {line}:" in response.content.decode()
    assert list(BillingCustomer.objects.values_list("name", "cw_company_id")) == [("Kept Ltd", 7)]


def test_control_characters_in_imported_names_become_spaces(client, admin_a, tenant_a):
    client.force_login(admin_a)
    _upload(client, tenant_a, b"name\nContoso\x1bLtd\n\x07\nFabrikam\tInc\n")
    assert sorted(BillingCustomer.objects.values_list("name", flat=True)) == ["Contoso Ltd", "Fabrikam Inc"]


def test_an_unmatched_billing_customer_is_matched_by_hand_through_the_picker(
    client, admin_a, tenant_a, directory
):
    client.force_login(admin_a)
    _upload(client, tenant_a, b"name\nZeta Holdings\n")
    customer = BillingCustomer.objects.get(tenant=tenant_a, name="Zeta Holdings")
    page = _page(client, tenant_a).content.decode()
    assert f'id="pick-{customer.pk}"' in page  # every unmatched customer has a picker

    html = _page(client, tenant_a, pick=customer.pk, pq="fabri").content.decode()
    assert "Match Zeta Holdings to Fabrikam Inc" in html
    assert "Company 001" not in html.split("picker-results", 1)[1].split("</ul>", 1)[0]
    nothing = _page(client, tenant_a, pick=customer.pk, pq="no such thing").content.decode()
    assert "No company" in nothing and "contains “no such thing”" in nothing

    client.post(
        reverse("billing_match", args=[tenant_a.slug]),
        {"action": "match", "customer": str(customer.pk), "company": "503"},
    )
    customer.refresh_from_db()
    assert customer.cw_company_id == 503
    assert CompanyChoice.objects.filter(tenant=tenant_a, cw_company_id=503).exists()


def test_the_picker_is_not_offered_to_a_read_only_member(client, member_a, admin_a, tenant_a, directory):
    client.force_login(admin_a)
    _upload(client, tenant_a, b"name\nZeta Holdings\n")
    customer = BillingCustomer.objects.get(tenant=tenant_a, name="Zeta Holdings")
    client.force_login(member_a)
    html = _page(client, tenant_a, pick=customer.pk, pq="fabri").content.decode()
    assert f'id="pick-{customer.pk}"' not in html and "Match Zeta Holdings" not in html


@pytest.mark.parametrize("pick", ["x", "-1", "99999999999999999999999", "1 2"])
def test_a_bad_picker_value_only_closes_the_picker(client, admin_a, tenant_a, directory, pick):
    client.force_login(admin_a)
    response = _page(client, tenant_a, pick=pick, pq="fabri")
    assert response.status_code == 200 and "picker-results" not in response.content.decode()
