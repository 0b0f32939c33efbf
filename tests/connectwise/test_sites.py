"""Where a tenant's ConnectWise is (``connectwise.sites``): the cloud hosts, a typed site made an API host, the
credentials."""

from __future__ import annotations

import pytest

from connectwise.sites import CLOUD_HOSTS, Credentials, api_host_for

CANARY = "PRIVKEY-canary-7f3a9c"


@pytest.mark.parametrize(
    ("site", "expected"),
    [
        ("na.myconnectwise.net", ("api-na.myconnectwise.net", True)),
        ("  https://EU.MyConnectWise.net./v4_6_release/services ", ("api-eu.myconnectwise.net", True)),
        ("au.myconnectwise.net", ("api-au.myconnectwise.net", True)),
        ("aus.myconnectwise.net", ("api-aus.myconnectwise.net", True)),
        ("za.myconnectwise.net/", ("api-za.myconnectwise.net", True)),
        ("staging.connectwisedev.com", ("api-staging.connectwisedev.com", True)),
        ("api-na.myconnectwise.net", ("api-na.myconnectwise.net", False)),
        ("cw.partner.example:8443", ("cw.partner.example:8443", False)),
        ("xx.myconnectwise.net", ("xx.myconnectwise.net", False)),
        ("", ("", False)),
        ("   ", ("", False)),
    ],
)
def test_api_host_for(site, expected):
    assert api_host_for(site) == expected


@pytest.mark.parametrize("site", ["user:pw@na.myconnectwise.net", "bad host!", "host:99999", "a..b"])
def test_api_host_for_refuses_what_is_not_a_host(site):
    with pytest.raises(ValueError):
        api_host_for(site)


def test_cloud_hosts_are_the_reference_list():
    assert CLOUD_HOSTS == (
        "api-na.myconnectwise.net",
        "api-eu.myconnectwise.net",
        "api-au.myconnectwise.net",
        "api-aus.myconnectwise.net",
        "api-za.myconnectwise.net",
        "api-staging.connectwisedev.com",
    )


def test_credentials_normalise_the_origin_and_hide_the_key():
    creds = Credentials("HTTP://127.0.0.1:8765/", "acme", "pub", CANARY, "g")
    assert creds.origin == "http://127.0.0.1:8765"
    assert CANARY not in repr(creds) and CANARY not in str(creds)


@pytest.mark.parametrize(
    "origin", ["ftp://x", "https://x/path", "https://u:p@x", "x.example", "https://x?q=1"]
)
def test_credentials_refuse_an_origin_that_is_not_one(origin):
    with pytest.raises(ValueError):
        Credentials(origin, "acme", "pub", CANARY, "g")
