from __future__ import annotations

import threading

import pytest

from connectwise.checks.context import RESOURCES, ResourceError, RunContext
from connectwise.checks.runner import TenantChoices
from connectwise.errors import Forbidden

from .fakes import healthy_client


def test_it_fetches_a_resource_once():
    client = healthy_client()
    ctx = RunContext(client, TenantChoices())
    first = ctx.get("uoms")
    assert ctx.get("uoms") is first
    assert client.calls_to("GET", "procurement/unitOfMeasures") == 1


def test_it_asks_only_for_the_fields_and_misc_items_it_needs():
    client = healthy_client()
    seen = {}
    original_list, original_get = client.list, client.get

    def spy_list(path, **kw):
        seen[path] = kw
        return original_list(path, **kw)

    def spy_get(path, **kw):
        seen[path] = kw
        return original_get(path, **kw)

    client.list, client.get = spy_list, spy_get
    RunContext(client, TenantChoices()).prefetch(["misc_catalog", "companies"])
    catalog = seen["procurement/catalog"]
    assert catalog["params"]["conditions"] == 'identifier like "misc%"'
    assert "inactiveFlag" not in catalog["params"]["conditions"]  # every status
    assert "inactiveFlag" in catalog["fields"]
    assert seen["company/companies"]["page_size"] == 1000
    assert "status/name" in seen["company/companies"]["fields"]


def test_a_small_table_is_one_call_and_a_full_page_falls_back_to_paging():
    client = healthy_client()
    RunContext(client, TenantChoices()).get("uoms")
    assert client.calls == [("GET", "procurement/unitOfMeasures")]

    client.records["procurement/unitOfMeasures"] = [{"id": i, "name": f"U{i}"} for i in range(1, 1202)]
    client.calls.clear()
    rows = RunContext(client, TenantChoices()).get("uoms")
    assert len(rows) == 1201
    assert client.calls_to("GET", "procurement/unitOfMeasures/count") == 1


def test_it_keeps_a_failed_read_and_raises_it_with_the_guarding_role():
    client = healthy_client(forbidden=("finance/",))
    ctx = RunContext(client, TenantChoices())
    ctx.prefetch(["agreements"])
    with pytest.raises(ResourceError) as info:
        ctx.get("agreements")
    assert isinstance(info.value.cause, Forbidden)
    assert info.value.resource.needed_role == "Finance > Agreements: Inquire"
    assert isinstance(ctx.error_of("agreements"), Forbidden)
    assert client.calls_to("GET", "finance/agreements") == 1


def test_it_prefetches_independent_resources_concurrently():
    client = healthy_client()
    keys = ["categories", "subcategories", "product_types", "uoms"]
    barrier = threading.Barrier(len(keys), timeout=5)  # breaks (and fails the test) unless all run at once
    original = client.list

    def waiting(path, **kw):
        barrier.wait()
        return original(path, **kw)

    client.list = waiting
    ctx = RunContext(client, TenantChoices())
    ctx.prefetch(keys)
    assert all(ctx.error_of(k) is None for k in keys)


def test_my_security_is_one_get_of_a_full_page():
    client = healthy_client()
    params = {}
    original = client.get

    def spy(path, **kw):
        params[path] = kw.get("params")
        return original(path, **kw)

    client.get = spy
    RunContext(client, TenantChoices()).get("my_security")
    assert params == {"system/mySecurity": {"pageSize": 1000}}
    assert not RESOURCES["my_security"].countable
