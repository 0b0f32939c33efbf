from __future__ import annotations

import base64
import gc
import json
import logging
import random
import threading
import time
import traceback

import httpx
import pytest
import respx

from connectwise import errors
from connectwise.callstats import CallStats
from connectwise.client import ConnectWiseClient, Credentials
from connectwise.query import cond
from connectwise.transport import ACCEPT, DEFAULT_TIMEOUT, parse_retry_after

ORIGIN = "https://api-na.myconnectwise.net"
BASE = f"{ORIGIN}/v4_6_release/apis/3.0/"
CANARY = "PRIVKEY-canary-7f3a9c"
CREDS = Credentials(
    origin=ORIGIN, company_id="acme", public_key="pub123", private_key=CANARY, client_id="guid-1"
)
COMPANYINFO = f"{ORIGIN}/login/companyinfo/acme"
BASIC = "Basic " + base64.b64encode(f"acme+pub123:{CANARY}".encode()).decode()


def info(codebase="v4_6_release/"):
    return {
        "CompanyName": "Acme MSP",
        "Codebase": codebase,
        "VersionCode": "v2025.8",
        "VersionNumber": "v4.6.12345",
        "CompanyID": "acme",
        "IsCloud": True,
        "SiteUrl": "na.myconnectwise.net",
        "AllowAccessToAnything": "ignored",
    }


class UpperRandom(random.Random):
    """Full jitter drawn at its ceiling, so the exponential schedule is visible."""

    def uniform(self, a, b):
        return b


@pytest.fixture
def sleeps():
    return []


@pytest.fixture
def mock():
    with respx.mock(assert_all_called=False, assert_all_mocked=True) as router:
        yield router


def make(sleeps, **kw):
    kw.setdefault("codebase", "v4_6_release/")
    kw.setdefault("rng", random.Random(1))
    return ConnectWiseClient(CREDS, sleep=sleeps.append, **kw)


@pytest.fixture
def cw(sleeps):
    with make(sleeps) as client:
        yield client


def records(start, n):
    return [{"id": i, "name": f"Company {i}"} for i in range(start, start + n)]


# -- requests as sent --------------------------------------------------------------------------------------------


def test_it_sends_basic_auth_client_id_and_the_pinned_version(cw, mock):
    route = mock.get(f"{BASE}company/companies/5").respond(200, json={"id": 5})
    assert cw.get("company/companies/5") == {"id": 5}
    req = route.calls.last.request
    assert req.headers["Authorization"] == BASIC
    assert req.headers["clientId"] == "guid-1"
    assert req.headers["Accept"] == ACCEPT == "application/vnd.connectwise.com+json; version=2025.8"
    assert "Content-Type" not in req.headers


def test_create_posts_json_with_content_type(cw, mock):
    route = mock.post(f"{BASE}procurement/categories").respond(201, json={"id": 9, "name": "Zoë"})
    assert cw.create("procurement/categories", {"name": "Zoë"}) == {"id": 9, "name": "Zoë"}
    req = route.calls.last.request
    assert req.headers["Content-Type"] == "application/json"
    assert json.loads(req.content) == {"name": "Zoë"}


def test_patch_sends_the_operation_array(cw, mock):
    route = mock.patch(f"{BASE}procurement/catalog/12").respond(200, json={"id": 12, "inactiveFlag": False})
    ops = [{"op": "replace", "path": "inactiveFlag", "value": False}]
    assert cw.patch("procurement/catalog/12", ops)["inactiveFlag"] is False
    assert json.loads(route.calls.last.request.content) == ops
    assert route.calls.last.request.headers["Content-Type"] == "application/json"
    with pytest.raises(TypeError):
        cw.patch("procurement/catalog/12", {"op": "replace"})


def test_put_and_delete(cw, mock):
    put = mock.put(f"{BASE}company/companies/2").respond(200, json={"id": 2})
    delete = mock.delete(f"{BASE}system/securityroles/4").respond(204)
    assert cw.put("company/companies/2", {"id": 2, "name": "x"}) == {"id": 2}
    assert json.loads(put.calls.last.request.content) == {"id": 2, "name": "x"}
    assert cw.delete("system/securityroles/4") is None
    assert delete.called


def test_trailing_slash_of_a_spec_path_is_kept(cw, mock):
    route = mock.get(f"{BASE}procurement/subcategories/").respond(200, json=[])
    assert cw.get("/procurement/subcategories/") == []
    assert route.called


@pytest.mark.parametrize("path", ["https://evil.example/x", "company/companies?conditions=x", "../login", ""])
def test_it_refuses_paths_that_are_not_api_paths(cw, path):
    with pytest.raises(ValueError):
        cw.get(path)


def test_client_always_has_a_timeout_and_never_follows_redirects(sleeps):
    with make(sleeps, timeout=None) as c:
        assert c._http.timeout == DEFAULT_TIMEOUT
        assert c._http.follow_redirects is False
    t = httpx.Timeout(5.0, connect=2.0)
    with make(sleeps, timeout=t) as c:
        assert c._http.timeout == t


def test_system_info(cw, mock):
    mock.get(f"{BASE}system/info").respond(200, json={"version": "v2025.8", "isCloud": True})
    assert cw.system_info()["version"] == "v2025.8"


# -- discovery ---------------------------------------------------------------------------------------------------


def test_it_discovers_the_codebase_once_without_credentials(sleeps, mock):
    disc = mock.get(COMPANYINFO).respond(200, json=info("v2025_1/"))
    api = mock.get(f"{ORIGIN}/v2025_1/apis/3.0/system/info").respond(200, json={"version": "v"})
    with make(sleeps, codebase=None) as c:
        assert c.codebase is None
        c.system_info()
        c.system_info()
        assert c.codebase == "v2025_1/"
        assert c.base_url == f"{ORIGIN}/v2025_1/apis/3.0/"
        assert c.company_info.company_name == "Acme MSP"
    assert disc.call_count == 1
    assert api.call_count == 2
    assert "Authorization" not in disc.calls.last.request.headers


def test_discover_returns_company_info(cw, mock):
    mock.get(COMPANYINFO).respond(200, json=info())
    got = cw.discover()
    assert (got.codebase, got.company_name, got.version_code, got.is_cloud, got.site_url) == (
        "v4_6_release/",
        "Acme MSP",
        "v2025.8",
        True,
        "na.myconnectwise.net",
    )


def test_a_null_companyinfo_is_an_unknown_company(cw, mock):
    mock.get(COMPANYINFO).respond(200, content=b"null", headers={"content-type": "application/json"})
    with pytest.raises(errors.UnknownCompany, match="does not know the company id 'acme'"):
        cw.discover()


def test_company_id_is_escaped_in_the_discovery_path(sleeps, mock):
    creds = Credentials(origin=ORIGIN, company_id="a/b c", public_key="p", private_key=CANARY, client_id="g")
    route = mock.get(f"{ORIGIN}/login/companyinfo/a%2Fb%20c").respond(200, json=info())
    with ConnectWiseClient(creds, sleep=sleeps.append) as c:
        c.discover()
    assert route.called


@pytest.mark.parametrize("codebase", ["../../", "//evil.example/", "", None])
def test_a_companyinfo_without_a_usable_codebase_is_unexpected(cw, mock, codebase):
    mock.get(COMPANYINFO).respond(200, json={**info(), "Codebase": codebase})
    with pytest.raises(errors.UnexpectedResponse):
        cw.discover()


def test_a_404_after_a_codebase_change_rediscovers_and_retries_once(cw, mock):
    old = mock.get(f"{BASE}company/companies/5").respond(404, json={"code": "NotFound", "message": "gone"})
    disc = mock.get(COMPANYINFO).respond(200, json=info("v2025_2/"))
    new = mock.get(f"{ORIGIN}/v2025_2/apis/3.0/company/companies/5").respond(200, json={"id": 5})
    assert cw.get("company/companies/5") == {"id": 5}
    assert (old.call_count, disc.call_count, new.call_count) == (1, 1, 1)
    assert cw.codebase == "v2025_2/"


def test_a_404_with_the_same_codebase_is_not_found(cw, mock):
    api = mock.get(f"{BASE}company/companies/5").respond(404, json={"code": "NotFound", "message": "gone"})
    disc = mock.get(COMPANYINFO).respond(200, json=info())
    with pytest.raises(errors.NotFound):
        cw.get("company/companies/5")
    assert (api.call_count, disc.call_count) == (1, 1)


# -- errors ------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("status", "cls"),
    [
        (400, errors.BadRequest),
        (401, errors.AuthFailed),
        (403, errors.Forbidden),
        (418, errors.ConnectWiseError),
    ],
)
def test_statuses_become_typed_errors(cw, mock, status, cls):
    mock.get(f"{BASE}company/companies").respond(
        status, json={"code": "X", "message": "m"}, headers={"x-cw-request-id": "rid-9"}
    )
    with pytest.raises(cls) as exc_info:
        cw.get("company/companies")
    assert type(exc_info.value) is cls
    assert exc_info.value.status == status
    assert exc_info.value.request_id == "rid-9"


def test_a_duplicate_create_is_recognisable(cw, mock):
    body = {
        "code": "InvalidObject",
        "message": "invalid",
        "errors": [{"code": "ObjectExists", "field": "name"}],
    }
    mock.post(f"{BASE}procurement/categories").respond(400, json=body)
    with pytest.raises(errors.BadRequest) as exc_info:
        cw.create("procurement/categories", {"name": "Miscellaneous"})
    assert exc_info.value.object_exists


def test_a_redirect_is_refused_not_followed(cw, mock):
    mock.get(f"{BASE}system/info").respond(302, headers={"Location": "http://169.254.169.254/latest"})
    target = mock.get("http://169.254.169.254/latest").respond(200, json={})
    with pytest.raises(errors.RedirectRefused, match="redirects are refused") as exc_info:
        cw.system_info()
    assert isinstance(exc_info.value, errors.ConnectionFailed)
    assert not exc_info.value.transient
    assert not target.called


def test_a_non_json_success_is_an_unexpected_response(cw, mock):
    mock.get(f"{BASE}system/info").respond(
        200, text="<html>login</html>", headers={"content-type": "text/html"}
    )
    with pytest.raises(
        errors.UnexpectedResponse, match="unexpected response: HTTP 200 with a body that is not JSON"
    ):
        cw.system_info()


def test_no_error_message_or_log_line_holds_the_private_key(cw, mock, caplog):
    caplog.set_level(logging.DEBUG, logger="connectwise")
    echo = {
        "code": "ConnectWiseApi",
        "message": "UserNotAuthenticated",
        "errors": [{"message": f"{BASIC} {CANARY}"}],
    }
    mock.get(f"{BASE}system/info").respond(401, json=echo)
    mock.get(f"{BASE}company/companies").mock(side_effect=httpx.ConnectError(f"boom {CANARY}"))
    raised = []
    for call in (cw.system_info, lambda: cw.get("company/companies")):
        with pytest.raises(errors.ConnectWiseError) as exc_info:
            call()
        raised.append(exc_info.value)
    assert isinstance(raised[0], errors.AuthFailed)
    assert isinstance(raised[1], errors.ConnectionFailed)
    token = BASIC.split()[1]
    for exc in raised:
        text = str(exc) + repr(exc) + repr(vars(exc)) + "".join(traceback.format_exception(exc))
        assert CANARY not in text
        assert token not in text
        assert "Authorization" not in text
    logged = "\n".join(r.getMessage() for r in caplog.records)
    assert logged and CANARY not in logged and token not in logged
    assert CANARY not in repr(CREDS) and CANARY not in repr(cw)


def test_it_logs_method_path_status_request_id_but_not_the_query(cw, mock, caplog):
    caplog.set_level(logging.DEBUG, logger="connectwise")
    mock.get(f"{BASE}company/companies").respond(200, json=[], headers={"x-cw-request-id": "rid-42"})
    cw.get("company/companies", params={"conditions": 'name = "Secret Customer"'})
    (line,) = [r.getMessage() for r in caplog.records]
    assert line.startswith("connectwise GET company/companies -> 200 request_id=rid-42 ")
    assert "Secret" not in line


# -- retries -----------------------------------------------------------------------------------------------------


def test_get_retries_5xx_with_exponential_full_jitter(sleeps, mock):
    route = mock.get(f"{BASE}system/info").mock(
        side_effect=[
            httpx.Response(500),
            httpx.Response(502),
            httpx.Response(504),
            httpx.Response(200, json={}),
        ]
    )
    with make(sleeps, rng=UpperRandom(), backoff_base=0.5) as c:
        c.system_info()
        stats = c.stats
    assert route.call_count == 4
    assert sleeps == [0.5, 1.0, 2.0]
    assert (stats.calls, stats.retries, stats.errors) == (4, 3, 3)


def test_jitter_stays_under_the_exponential_ceiling(sleeps, mock):
    mock.get(f"{BASE}system/info").mock(
        side_effect=[httpx.Response(500)] * 3 + [httpx.Response(200, json={})]
    )
    with make(sleeps, rng=random.Random(7), backoff_base=1.0, backoff_max=3.0) as c:
        c.system_info()
    assert len(sleeps) == 3
    assert all(0 <= s <= ceiling for s, ceiling in zip(sleeps, [1.0, 2.0, 3.0], strict=True))


def test_it_gives_up_after_max_attempts(sleeps, mock):
    route = mock.get(f"{BASE}system/info").respond(500)
    with make(sleeps, max_attempts=3) as c, pytest.raises(errors.ServerError) as exc_info:
        c.system_info()
    assert route.call_count == 3
    assert exc_info.value.transient


@pytest.mark.parametrize("method", ["POST", "PATCH"])
def test_non_idempotent_writes_are_not_retried_on_500(cw, mock, sleeps, method):
    route = mock.route(method=method, url=f"{BASE}procurement/catalog").respond(500)
    with pytest.raises(errors.ServerError):
        if method == "POST":
            cw.create("procurement/catalog", {"identifier": "misc"})
        else:
            cw.patch("procurement/catalog", [])
    assert route.call_count == 1
    assert sleeps == []


def test_put_is_retried_on_502(cw, mock, sleeps):
    route = mock.put(f"{BASE}company/companies/2").mock(
        side_effect=[httpx.Response(502), httpx.Response(200, json={})]
    )
    cw.put("company/companies/2", {})
    assert route.call_count == 2
    assert len(sleeps) == 1


def test_post_is_retried_on_429_honouring_retry_after(cw, mock, sleeps):
    route = mock.post(f"{BASE}procurement/categories").mock(
        side_effect=[httpx.Response(429, headers={"Retry-After": "2"}), httpx.Response(201, json={"id": 1})]
    )
    assert cw.create("procurement/categories", {"name": "x"}) == {"id": 1}
    assert route.call_count == 2
    assert sleeps == [2.0]
    assert route.calls[0].request.content == route.calls[1].request.content


def test_retry_after_above_the_cap_is_not_retried_early(cw, mock, sleeps):
    # Issue 11 item 9: asked to wait 60 s, the client used to retry after its 30 s cap and was refused again.
    route = mock.get(f"{BASE}company/companies").mock(
        side_effect=[
            httpx.Response(429, headers={"Retry-After": "60", "x-cw-request-id": "rq-9"}),
            httpx.Response(200, json=[]),
        ]
    )
    with pytest.raises(errors.RateLimited) as exc_info:
        cw.get("company/companies")
    assert route.call_count == 1
    assert sleeps == []
    error = exc_info.value
    assert error.retry_after == 60.0 and error.attempts == 1
    assert "rate limited by ConnectWise for 60 s" in str(error)
    assert error.detail()["retry_after"] == 60 and error.detail()["request_id"] == "rq-9"


def test_a_503_asking_for_more_than_the_cap_is_not_retried_either(cw, mock, sleeps):
    route = mock.patch(f"{BASE}procurement/catalog/1").mock(
        side_effect=[
            httpx.Response(503, headers={"Retry-After": "3600"}),
            httpx.Response(200, json={"id": 1}),
        ]
    )
    with pytest.raises(errors.ServerError) as exc_info:
        cw.patch("procurement/catalog/1", [])
    assert route.call_count == 1 and sleeps == []
    assert exc_info.value.retry_after == 3600.0


def test_retry_after_up_to_the_cap_is_honoured(cw, mock, sleeps):
    route = mock.patch(f"{BASE}procurement/catalog/1").mock(
        side_effect=[
            httpx.Response(503, headers={"Retry-After": "30"}),
            httpx.Response(200, json={"id": 1}),
        ]
    )
    cw.patch("procurement/catalog/1", [])
    assert route.call_count == 2
    assert sleeps == [30.0]


def test_a_repeating_server_error_keeps_connectwise_message_path_and_request_id(cw, mock, sleeps):
    body = {"code": "ConnectWiseApi", "message": "String was not recognized as a valid Boolean."}
    route = mock.get(f"{BASE}company/companies").respond(500, json=body, headers={"x-cw-request-id": "abc-1"})
    with pytest.raises(errors.ServerError) as exc_info:
        cw.get("company/companies", params={"conditions": 'name="Contoso"'})
    assert route.call_count == 4
    detail = exc_info.value.detail()
    assert exc_info.value.attempts == 4
    assert detail == {
        "kind": "ServerError",
        "status": 500,
        "code": "ConnectWiseApi",
        "message": "String was not recognized as a valid Boolean.",
        "method": "GET",
        "path": "company/companies",
        "request_id": "abc-1",
        "transient": True,
        "retry_after": None,
    }


def test_rate_limited_surfaces_retry_after_when_attempts_run_out(sleeps, mock):
    mock.get(f"{BASE}system/info").respond(429, headers={"Retry-After": "5"})
    with make(sleeps, max_attempts=2) as c, pytest.raises(errors.RateLimited) as exc_info:
        c.system_info()
    assert exc_info.value.retry_after == 5.0
    assert sleeps == [5.0]


def test_get_is_retried_on_connection_errors_and_timeouts(cw, mock, sleeps):
    route = mock.get(f"{BASE}system/info").mock(
        side_effect=[httpx.ReadError("reset"), httpx.ReadTimeout("slow"), httpx.Response(200, json={})]
    )
    cw.system_info()
    assert route.call_count == 3
    assert len(sleeps) == 2


def test_timeouts_become_timeout_errors(sleeps, mock):
    mock.get(f"{BASE}system/info").mock(side_effect=httpx.ReadTimeout("slow"))
    with make(sleeps, max_attempts=2) as c, pytest.raises(errors.Timeout) as exc_info:
        c.system_info()
    assert exc_info.value.transient
    assert c.stats.calls == 2


def test_post_is_not_retried_after_a_reset_once_sent(cw, mock, sleeps):
    route = mock.post(f"{BASE}procurement/categories").mock(side_effect=httpx.ReadError("connection reset"))
    with pytest.raises(errors.ConnectionFailed, match="ReadError: connection reset"):
        cw.create("procurement/categories", {"name": "x"})
    assert route.call_count == 1
    assert sleeps == []


def test_post_is_retried_when_the_connection_never_opened(cw, mock, sleeps):
    route = mock.post(f"{BASE}procurement/categories").mock(
        side_effect=[httpx.ConnectError("refused"), httpx.Response(201, json={"id": 3})]
    )
    assert cw.create("procurement/categories", {"name": "x"}) == {"id": 3}
    assert route.call_count == 2


@pytest.mark.parametrize(
    ("header", "expected"),
    [("7", 7.0), ("1.5", 1.5), ("-3", 0.0), ("soon", None), (None, None), ("nan", None)],
)
def test_parse_retry_after(header, expected):
    assert parse_retry_after(header) == expected


def test_parse_retry_after_http_date():
    assert parse_retry_after("Wed, 21 Oct 2015 07:28:10 GMT", now=1445412480.0) == 10.0


# -- paging with list() ------------------------------------------------------------------------------------------


def pager(total_records, *, ignore_page=False, count=None, counter=None):
    """A server side for list(): /count and numbered pages over `total_records` records."""
    data = records(1, total_records)

    def count_handler(request):
        return httpx.Response(200, json={"count": len(data) if count is None else count})

    def page_handler(request):
        page = 1 if ignore_page else int(request.url.params["page"])
        size = int(request.url.params["pageSize"])
        return httpx.Response(200, json=data[(page - 1) * size : page * size])

    return count_handler, page_handler


def mount(mock, path, total, **kw):
    count_handler, page_handler = pager(total, **kw)
    count = mock.get(f"{BASE}{path}/count").mock(side_effect=count_handler)
    pages = mock.get(f"{BASE}{path}").mock(side_effect=page_handler)
    return count, pages


def test_list_of_nothing(cw, mock):
    count, pages = mount(mock, "company/companies", 0)
    assert cw.list("company/companies") == []
    assert (count.call_count, pages.call_count) == (1, 1)


def test_list_of_exactly_one_full_page_makes_no_extra_call(cw, mock):
    count, pages = mount(mock, "company/companies", 1000)
    got = cw.list("company/companies")
    assert [r["id"] for r in got] == list(range(1, 1001))
    assert (count.call_count, pages.call_count) == (1, 1)
    assert cw.stats.calls == 2


def test_list_of_1001_fetches_a_second_page(cw, mock):
    count, pages = mount(mock, "company/companies", 1001)
    got = cw.list("company/companies")
    assert [r["id"] for r in got] == list(range(1, 1002))
    assert sorted(int(c.request.url.params["page"]) for c in pages.calls) == [1, 2]


def test_read_pages_are_freed_without_the_cyclic_collector(sleeps):
    # runner.run_steps pauses the cyclic collector during a run; httpx binds each response and its stream in a
    # cycle, which kept every page's body alive until the run ended (issue 16: about 5 MB in benchmark verify).
    def answer(request):
        if request.url.path.endswith("/count"):
            return httpx.Response(200, json={"count": 2500})
        page = int(request.url.params["page"])
        return httpx.Response(200, json=records(1000 * (page - 1) + 1, 1000 if page < 3 else 500))

    def responses_alive():
        # type(), not isinstance(): a dead weakref proxy among the objects raises on __class__
        return sum(type(o) is httpx.Response for o in gc.get_objects())

    with make(sleeps, transport=httpx.MockTransport(answer)) as client:
        gc.collect()
        gc.disable()
        try:
            before = responses_alive()
            got = client.list("company/companies")
            after = responses_alive()
        finally:
            gc.enable()
    assert len(got) == 2500
    assert after == before


def test_list_keeps_page_order(cw, mock):
    mount(mock, "finance/agreements", 2345)
    got = cw.list("finance/agreements", page_size=500)
    assert [r["id"] for r in got] == list(range(1, 2346))


def test_list_sends_filters_to_count_and_pages(cw, mock):
    count, pages = mount(mock, "finance/agreements", 3)
    conditions = cond.and_(cond.eq("agreementStatus", "Active"), cond.eq("company/name", 'Acme "Ltd" & Zoë'))
    cw.list(
        "finance/agreements",
        conditions=conditions,
        fields="id,name,company/id",
        order_by="id asc",
        child_conditions="types/id = 3",
    )
    page_params = pages.calls.last.request.url.params
    assert page_params["conditions"] == 'agreementStatus = "Active" and company/name = "Acme \\"Ltd\\" & Zoë"'
    assert page_params["fields"] == "id,name,company/id"
    assert page_params["orderBy"] == "id asc"
    assert page_params["childConditions"] == "types/id = 3"
    assert (page_params["page"], page_params["pageSize"]) == ("1", "1000")
    count_params = count.calls.last.request.url.params
    assert dict(count_params) == {"conditions": page_params["conditions"], "childConditions": "types/id = 3"}


def test_list_fetches_count_and_first_page_concurrently(cw, mock):
    barrier = threading.Barrier(2, timeout=5)
    count_handler, page_handler = pager(10)

    def meet(handler):
        def wrapped(request):
            barrier.wait()  # a sequential client would break the barrier here
            return handler(request)

        return wrapped

    mock.get(f"{BASE}company/companies/count").mock(side_effect=meet(count_handler))
    mock.get(f"{BASE}company/companies").mock(side_effect=meet(page_handler))
    assert len(cw.list("company/companies")) == 10


def test_list_refuses_a_server_that_ignores_page(cw, mock):
    mount(mock, "company/companies", 2500, ignore_page=True)
    with pytest.raises(errors.RepeatedPage):
        cw.list("company/companies")


def test_list_stops_at_a_short_page_when_the_count_shrank(cw, mock):
    count, pages = mount(mock, "company/companies", 1200, count=3000)
    got = cw.list("company/companies")
    assert len(got) == 1200
    assert count.call_count == 1


def test_list_stops_at_the_count_when_it_grew(cw, mock):
    count, pages = mount(mock, "company/companies", 2500, count=2000)
    assert len(cw.list("company/companies")) == 2000
    assert pages.call_count == 2


@pytest.mark.parametrize("size", [0, 1001, -1])
def test_page_size_is_between_1_and_1000(cw, size):
    with pytest.raises(ValueError):
        cw.list("company/companies", page_size=size)
    with pytest.raises(ValueError):
        list(cw.iter_pages("company/companies", page_size=size))


def test_count(cw, mock):
    route = mock.get(f"{BASE}procurement/subcategories/count").respond(200, json={"count": 4})
    assert cw.count("procurement/subcategories/", conditions="inactiveFlag = false") == 4
    assert route.calls.last.request.url.params["conditions"] == "inactiveFlag = false"
    mock.get(f"{BASE}company/companies/count").respond(200, json={"total": 4})
    with pytest.raises(errors.UnexpectedResponse):
        cw.count("company/companies")


# -- paging with iter_pages() ------------------------------------------------------------------------------------


def link(url_page, rel="next", host="na.myconnectwise.net"):
    return f'<https://{host}/v4_6_release/apis/3.0/company/companies?pageSize=2&page={url_page}>; rel="{rel}"'


def test_iter_pages_follows_next_onto_our_origin(cw, mock):
    def handler(request):
        page = int(request.url.params["page"])
        rows = records(page * 10, 2 if page < 3 else 1)
        headers = (
            {"Link": ", ".join([link(page + 1), link(3, "last")])} if page < 3 else {"Link": link(1, "first")}
        )
        return httpx.Response(200, json=rows, headers=headers)

    route = mock.get(f"{BASE}company/companies").mock(side_effect=handler)
    pages = list(cw.iter_pages("company/companies", page_size=2, conditions="id > 0"))
    assert [[r["id"] for r in p] for p in pages] == [[10, 11], [20, 21], [30]]
    assert [c.request.url.host for c in route.calls] == ["api-na.myconnectwise.net"] * 3
    assert all(c.request.headers["Authorization"] == BASIC for c in route.calls)
    assert route.calls[0].request.url.params["conditions"] == "id > 0"


def test_iter_pages_never_follows_a_foreign_host(cw, mock):
    mock.get(f"{BASE}company/companies").respond(
        200, json=records(1, 2), headers={"Link": link(2, host="evil.example")}
    )
    foreign = mock.get(host="evil.example").respond(200, json=[])
    it = cw.iter_pages("company/companies", page_size=2)
    assert len(next(it)) == 2
    with pytest.raises(errors.HostNotAllowed, match="evil.example"):
        next(it)
    assert not foreign.called


def test_iter_pages_refuses_a_link_back_to_a_page_already_read(cw, mock):
    def handler(request):
        page = int(request.url.params["page"])
        return httpx.Response(200, json=records(page * 10, 2), headers={"Link": link(1 if page == 2 else 2)})

    route = mock.get(f"{BASE}company/companies").mock(side_effect=handler)
    with pytest.raises(errors.RepeatedPage):
        list(cw.iter_pages("company/companies", page_size=2))
    assert route.call_count == 2


def test_iter_pages_refuses_a_page_with_a_record_already_seen_first(cw, mock):
    def handler(request):
        page = int(request.url.params["page"])
        return httpx.Response(200, json=records(1, 2), headers={"Link": link(page + 1)})

    mock.get(f"{BASE}company/companies").mock(side_effect=handler)
    with pytest.raises(errors.RepeatedPage):
        list(cw.iter_pages("company/companies", page_size=2))


def test_iter_pages_forward_only(cw, mock):
    def handler(request):
        after = int(request.url.params.get("pageId", 0))
        rows = [r for r in records(1, 5) if r["id"] > after][:2]
        headers = {}
        if rows and rows[-1]["id"] < 5:
            headers["Link"] = (
                f"<https://na.myconnectwise.net/v4_6_release/apis/3.0/company/companies?pageSize=2"
                f'&pageId={rows[-1]["id"]}>; rel="next"'
            )
        return httpx.Response(200, json=rows, headers=headers)

    route = mock.get(f"{BASE}company/companies").mock(side_effect=handler)
    pages = list(cw.iter_pages("company/companies", page_size=2, forward_only=True))
    assert [[r["id"] for r in p] for p in pages] == [[1, 2], [3, 4], [5]]
    assert all(c.request.headers["pagination-type"] == "forward-only" for c in route.calls)
    assert "page" not in route.calls[0].request.url.params


def test_iter_pages_without_link_headers_pages_by_number(cw, mock):
    _, page_handler = pager(5)
    route = mock.get(f"{BASE}company/companies").mock(side_effect=page_handler)
    pages = list(cw.iter_pages("company/companies", page_size=2))
    assert [len(p) for p in pages] == [2, 2, 1]
    assert route.call_count == 3


def test_iter_pages_of_nothing(cw, mock):
    mock.get(f"{BASE}company/companies").respond(200, json=[])
    assert list(cw.iter_pages("company/companies")) == []


# -- concurrency and accounting ----------------------------------------------------------------------------------


def test_map_concurrent_keeps_order_and_bounds_requests_in_flight(sleeps, mock):
    lock = threading.Lock()
    state = {"now": 0, "max": 0}
    release = threading.Event()

    def handler(request):
        with lock:
            state["now"] += 1
            state["max"] = max(state["max"], state["now"])
            if state["max"] >= 3:
                release.set()
        release.wait(timeout=2)
        with lock:
            state["now"] -= 1
        return httpx.Response(200, json={"id": int(request.url.path.rsplit("/", 1)[1])})

    mock.get(url__regex=rf"{BASE}company/companies/\d+").mock(side_effect=handler)
    with make(sleeps, max_in_flight=3) as c:
        got = c.map_concurrent(lambda i: c.get(f"company/companies/{i}")["id"], range(1, 21))
    assert got == list(range(1, 21))
    assert state["max"] == 3


def test_map_concurrent_raises_the_first_error(cw):
    def fn(i):
        if i == 3:
            raise errors.Forbidden("no")
        return i

    with pytest.raises(errors.Forbidden):
        cw.map_concurrent(fn, range(6))
    assert cw.map_concurrent(fn, []) == []


def test_nested_fan_out_does_not_deadlock_and_stays_bounded(sleeps, mock):
    lock = threading.Lock()
    state = {"now": 0, "max": 0}

    def tracked(handler):
        def wrapped(request):
            with lock:
                state["now"] += 1
                state["max"] = max(state["max"], state["now"])
            try:
                time.sleep(0.002)
                return handler(request)
            finally:
                with lock:
                    state["now"] -= 1

        return wrapped

    for path in ("a/x", "b/x", "c/x", "d/x"):
        count_handler, page_handler = pager(25)
        mock.get(f"{BASE}{path}/count").mock(side_effect=tracked(count_handler))
        mock.get(f"{BASE}{path}").mock(side_effect=tracked(page_handler))
    with make(sleeps, max_in_flight=2) as c:
        got = c.map_concurrent(lambda p: len(c.list(p, page_size=10)), ["a/x", "b/x", "c/x", "d/x"])
    assert got == [25, 25, 25, 25]
    assert state["max"] == 2


def test_stats_count_calls_per_endpoint_template(cw, mock):
    mock.get(url__regex=rf"{BASE}company/companies/\d+").respond(200, json={})
    mock.get(f"{BASE}company/companies/count").respond(200, json={"count": 0})
    mock.get(f"{BASE}company/companies").respond(200, json=[])
    mock.post(f"{BASE}procurement/categories").mock(
        side_effect=[httpx.Response(429, headers={"Retry-After": "0"}), httpx.Response(201, json={})]
    )
    cw.get("company/companies/1")
    cw.get("company/companies/2")
    cw.list("company/companies")
    cw.create("procurement/categories", {})
    stats = cw.stats
    assert stats.by_endpoint == {
        ("GET", "company/companies/{id}"): 2,
        ("GET", "company/companies/count"): 1,
        ("GET", "company/companies"): 1,
        ("POST", "procurement/categories"): 2,
    }
    assert (stats.calls, stats.retries, stats.errors) == (6, 1, 1)
    assert stats.elapsed_ms > 0
    assert stats.as_dict()["by_endpoint"]["POST procurement/categories"] == 2
    assert isinstance(stats, CallStats)


def test_last_digest_keys_the_pages_a_list_read(cw, mock):
    """Issue 16: the company list's source key uses the digest the client took of each page as it arrived."""
    assert cw.last_digest("company/companies") is None
    mount(mock, "company/companies", 1500)
    cw.list("company/companies", page_size=1000)
    first = cw.last_digest("company/companies")
    assert isinstance(first, str) and len(first) == 32
    cw.list("company/companies", page_size=1000)
    assert cw.last_digest("company/companies") == first  # the same answers, the same key
    # per path and filters
    assert cw.last_digest("company/companies", conditions="deletedFlag = false") is None


def test_last_digest_changes_when_a_record_changes(cw, mock):
    mount(mock, "company/companies", 1500)
    cw.list("company/companies")
    before = cw.last_digest("company/companies")
    mock.reset()
    changed = [{**r, "name": "Renamed"} if r["id"] == 1200 else r for r in records(1, 1500)]
    mock.get(f"{BASE}company/companies/count").mock(return_value=httpx.Response(200, json={"count": 1500}))

    def page(request):
        number = int(request.url.params["page"])
        return httpx.Response(200, json=changed[(number - 1) * 1000 : number * 1000])

    mock.get(f"{BASE}company/companies").mock(side_effect=page)
    cw.list("company/companies")
    assert cw.last_digest("company/companies") not in (None, before)
