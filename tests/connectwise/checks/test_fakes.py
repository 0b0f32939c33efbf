"""The checks' in-memory ConnectWise reads ``conditions`` with the sandbox's parser, not a third one of its own."""

from __future__ import annotations

import pytest

from connectwise.sandbox.conditions import ConditionError

from .fakes import company, healthy_client


def test_the_fake_reads_the_whole_conditions_language():
    client = healthy_client(records={"company/companies": [company(1, "Acme"), company(2, "Beta")]})
    assert [c["id"] for c in client.list("company/companies", conditions='not (name = "acme")')] == [2]
    assert [c["id"] for c in client.list("company/companies", conditions="id in (1, 3) or id > 5")] == [1]
    assert client.list("company/companies", conditions='name like "b*"')[0]["name"] == "Beta"


def test_the_fake_refuses_conditions_connectwise_would_refuse():
    with pytest.raises(ConditionError):
        healthy_client().list("company/companies", conditions="name = ")
