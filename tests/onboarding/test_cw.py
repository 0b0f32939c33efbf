"""onboarding.cw: the one place a ConnectWise client is built from a tenant's stored connection."""

from __future__ import annotations

from unittest import mock

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from connectwise.client import ConnectWiseClient
from onboarding import cw
from onboarding.models import Connection
from tests.onboarding.wizard_helpers import PRIVATE_KEY, connection_a_fixture  # noqa: F401 (fixture)

pytestmark = pytest.mark.django_db


def test_a_tenant_without_a_connection_gets_no_client(tenant_a):
    with pytest.raises(cw.NoConnection, match="Save a ConnectWise connection first."):
        cw.tenant_client(tenant_a)


def test_a_refused_host_gets_no_client_and_says_why(tenant_a, connection_a):
    Connection.objects.filter(pk=connection_a.pk).update(site="cw.partner.example")
    tenant_a.refresh_from_db()
    with pytest.raises(cw.HostRefused, match="not a ConnectWise cloud host"):
        cw.tenant_client(tenant_a)


def test_an_allowed_connection_gets_a_client_for_its_api_host_and_key(tenant_a, connection_a):
    connection, decision = cw.connect(tenant_a)
    assert connection == connection_a and decision.api_host == "api-na.myconnectwise.net"
    with mock.patch.object(cw, "ConnectWiseClient", wraps=ConnectWiseClient) as built:
        with cw.tenant_client(tenant_a) as client:
            assert isinstance(client, ConnectWiseClient)
    creds = built.call_args.args[0]
    assert creds.origin == "https://api-na.myconnectwise.net"
    assert creds.private_key == PRIVATE_KEY and creds.company_id == "acme"


@pytest.mark.parametrize("command", ["repair_tenant", "tenant_customers"])
def test_the_commands_keep_their_words_for_no_connection_and_a_refused_host(
    tenant_a, admin_a, command, tmp_path
):
    extra = ["--csv", str(tmp_path / "x.csv")] if command == "tenant_customers" else []
    (tmp_path / "x.csv").write_text("company,motion\nACME,monthly\n")
    with pytest.raises(CommandError, match="Tenant tenant-a has no connection; run tenant_connect first."):
        call_command(command, tenant_a.slug, *extra)
    connection = Connection(
        tenant=tenant_a, site="cw.partner.example", company_id="acme", public_key="pub", updated_by=admin_a
    )
    connection.set_private_key(PRIVATE_KEY)
    connection.save()
    with pytest.raises(
        CommandError, match="Connection refused: cw.partner.example is not a ConnectWise cloud"
    ):
        call_command(command, tenant_a.slug, *extra)
