from __future__ import annotations

import pytest

from connectwise import errors
from connectwise.errors import (
    AuthFailed,
    BadRequest,
    ConnectionFailed,
    ConnectWiseError,
    Forbidden,
    NotFound,
    RateLimited,
    RedirectRefused,
    ServerError,
    Timeout,
    error_from_response,
)

CANARY = "PRIVKEY-canary-7f3a9c"


def build(status, body=None, **kw):
    return error_from_response(status, body, method="GET", path="company/companies", **kw)


@pytest.mark.parametrize(
    ("status", "cls"),
    [
        (400, BadRequest),
        (401, AuthFailed),
        (403, Forbidden),
        (404, NotFound),
        (429, RateLimited),
        (500, ServerError),
        (502, ServerError),
        (503, ServerError),
        (409, ConnectWiseError),
        (418, ConnectWiseError),
    ],
)
def test_it_maps_each_status_to_one_class(status, cls):
    err = build(status, {"code": "Whatever", "message": "nope"})
    assert type(err) is cls
    assert err.status == status
    assert err.code == "Whatever"
    assert str(err) == f"GET company/companies failed: HTTP {status} Whatever: nope"


@pytest.mark.parametrize(
    ("cls", "transient"),
    [
        (ConnectionFailed, True),
        (Timeout, True),
        (RateLimited, True),
        (ServerError, True),
        (RedirectRefused, False),
        (AuthFailed, False),
        (Forbidden, False),
        (NotFound, False),
        (BadRequest, False),
        (errors.UnknownCompany, False),
        (errors.RepeatedPage, False),
        (errors.HostNotAllowed, False),
        (errors.UnexpectedResponse, False),
    ],
)
def test_each_class_says_whether_it_is_transient(cls, transient):
    assert cls.transient is transient
    assert issubclass(cls, ConnectWiseError)


def test_bad_request_recognises_object_exists_among_nested_errors():
    body = {
        "code": "InvalidObject",
        "message": "catalogItem object is invalid",
        "errors": [
            {"code": "OutOfRange", "message": "too long", "resource": "catalogItem", "field": "description"},
            {
                "code": "ObjectExists",
                "message": "The identifier already exists",
                "resource": "catalogItem",
                "field": "identifier",
            },
        ],
    }
    err = build(400, body, request_id="req-1")
    assert isinstance(err, BadRequest)
    assert err.object_exists is True
    assert [e.code for e in err.errors] == ["OutOfRange", "ObjectExists"]
    assert err.errors[1].field == "identifier"
    assert err.errors[1].resource == "catalogItem"
    assert "ObjectExists (identifier) The identifier already exists" in str(err)
    assert err.request_id == "req-1"
    assert "(request id req-1)" in str(err)


def test_bad_request_without_object_exists_is_not_a_duplicate():
    err = build(400, {"code": "InvalidObject", "errors": [{"code": "OutOfRange"}]})
    assert err.object_exists is False


def test_user_not_authenticated_is_auth_failed_whatever_the_status():
    body = {"code": "ConnectWiseApi", "message": "UserNotAuthenticated"}
    assert type(build(401, body)) is AuthFailed
    assert type(build(500, body)) is AuthFailed


@pytest.mark.parametrize(
    "body", [None, "oops", ["a"], {"errors": "not a list"}, {"code": 5, "message": None}]
)
def test_it_survives_bodies_of_any_shape(body):
    err = build(500, body)
    assert type(err) is ServerError
    assert str(err) == "GET company/companies failed: HTTP 500"
    assert err.code is None


def test_rate_limited_carries_retry_after():
    err = build(429, None, retry_after=7.0)
    assert err.retry_after == 7.0


def test_redact_scrubs_what_the_server_echoes():
    body = {"code": "Unauthorized", "message": f"bad key {CANARY}", "errors": [{"message": CANARY}]}
    err = build(401, body, redact=lambda s: s.replace(CANARY, "***"))
    assert CANARY not in str(err)
    assert CANARY not in repr(err)
    assert CANARY not in repr(err.__dict__)
    assert "bad key ***" in str(err)


def test_repr_names_class_status_and_code():
    err = build(403, {"code": "Forbidden", "message": "no"})
    assert repr(err).startswith(
        "Forbidden('GET company/companies failed: HTTP 403 Forbidden: no', status=403"
    )
