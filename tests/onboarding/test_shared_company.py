"""Two tenants connected to the same ConnectWise company are told so (issue 14): on the connection page and on
the support dashboard, since one tenant's repairs change the other's results."""

from __future__ import annotations

import pytest
from django.urls import reverse

from onboarding.connections import company_key, shared_companies
from onboarding.models import Connection, Tenant

pytestmark = pytest.mark.django_db


def _connect(tenant, site, company_id):
    conn = Connection(tenant=tenant, site=site, company_id=company_id, public_key="pub")
    conn.set_private_key("private-0123456789")
    conn.save()
    return conn


def test_company_key_folds_case_and_the_browser_host():
    assert company_key("na.myconnectwise.net", " Acme ") == company_key("api-na.myconnectwise.net", "acme")
    assert company_key("api-eu.myconnectwise.net", "acme") != company_key("api-na.myconnectwise.net", "acme")


def test_tenants_on_one_company_are_told_on_the_connection_page(client, admin_a, tenant_a, tenant_b):
    _connect(tenant_a, "api-na.myconnectwise.net", "acme")
    _connect(tenant_b, "na.myconnectwise.net", "ACME")
    other = Tenant.objects.create(slug="tenant-c", name="Tenant C")
    _connect(other, "api-eu.myconnectwise.net", "acme")  # another site: another company
    assert shared_companies([tenant_a.pk, other.pk]) == {
        tenant_a.pk: [{"name": "Tenant B", "slug": "tenant-b"}]
    }
    client.force_login(admin_a)
    html = client.get(reverse("step", args=[tenant_a.slug, "connection"])).content.decode()
    assert "data-shared-company" in html and "Tenant B is connected to company acme too" in html
    assert "Tenant C" not in html


def test_a_tenant_alone_on_its_company_gets_no_warning(client, admin_a, tenant_a, tenant_b):
    _connect(tenant_a, "api-na.myconnectwise.net", "acme")
    _connect(tenant_b, "api-na.myconnectwise.net", "other")
    client.force_login(admin_a)
    html = client.get(reverse("step", args=[tenant_a.slug, "connection"])).content.decode()
    assert "data-shared-company" not in html


def test_support_sees_the_shared_company_on_the_dashboard_and_tenant_page(
    client, support, tenant_a, tenant_b
):
    _connect(tenant_a, "api-na.myconnectwise.net", "acme")
    _connect(tenant_b, "api-na.myconnectwise.net", "acme")
    client.force_login(support)
    html = client.get(reverse("dashboard")).content.decode()
    assert "Shares its ConnectWise with Tenant B" in html and "Shares its ConnectWise with Tenant A" in html
    page = client.get(reverse("support_tenant", args=[tenant_a.slug])).content.decode()
    assert "Shared ConnectWise company." in page and reverse("support_tenant", args=["tenant-b"]) in page
