"""No answer is a 5xx, whatever anyone sends: every URL of the URL configuration, as every member of the cast.

The walker of tests/onboarding/test_isolation.py knows every URL pattern and how to fill its parameters; for each
one this test sends generated bad input with hypothesis (non-numeric, huge, negative, empty, very long, control
characters, NUL, non-UTF-8 bytes, missing and repeated fields, odd uploads) to the fields the page's forms and POST
handlers read, and asserts that

- no answer is a 5xx (an exception in a view is a 500 through Django's handler: ``raise_request_exception`` is
  off so that the status is what a visitor would see);
- a refused request (4xx) changed nothing (the isolation test's fingerprint of the database).

``FIELDS`` lists what each URL reads; a URL missing from it fails ``test_every_url_has_fuzz_fields`` so that a new
form cannot escape the walk. The seed is fixed (``derandomize``), so a failure repeats.
"""

from __future__ import annotations

import sys

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.core.signals import got_request_exception
from django.test import Client
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from .test_isolation import ACCESS, ROUTES, fill, fingerprint, world  # noqa: F401 (world is a fixture)

# What each URL reads from the query string (GET) and the form (POST). Names with {id} are per chosen company.
FIELDS: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] = {
    "login": ((), ("username", "password", "next")),
    "logout": ((), ("next",)),
    "signup": ((), ("organisation", "name", "email", "password1", "password2")),
    "signup_sent": ((), ()),
    "signup_confirm": ((), ()),
    "password_reset": ((), ("email",)),
    "password_reset_done": ((), ()),
    "password_reset_confirm": ((), ("new_password1", "new_password2")),
    "password_reset_complete": ((), ()),
    "accept_invitation": ((), ("name", "password1", "password2")),
    "healthz": ((), ()),
    "home": ((), ()),
    "team": ((), ("email", "role", "action")),
    "member_update": ((), ("action",)),
    "revoke_invitation": ((), ()),
    "resend_invitation": ((), ()),
    "tenant_home": ((), ()),
    "step": (
        ("q", "status", "agreement", "page", "cpage", "bpage", "pick", "pq"),
        ("region", "onprem_host", "company_id", "public_key", "private_key"),
    ),  # fmt: skip
    "replace_key": ((), ("new_private_key",)),
    "run_check": ((), ("step", "next")),
    "run_status": ((), ()),
    "summary": ((), ()),
    "audit": (("kind", "page"), ()),
    "customers_refresh": ((), ("next",)),
    "customers_select": ((), ("company", "action", "next")),
    "customers_import": ((), ("file",)),
    "billing_match": ((), ("action", "customer", "company", "next")),
    "billing_cutover": ((), ("cutover", "addition")),
    "previews": ((), ("file",)),
    "preview": ((), ()),
    "preview_export": ((), ()),
    # support's API tokens and webhooks (session pages)
    "support_api_tokens": ((), ("name", "scope", "expires_days")),
    "support_revoke_token": ((), ()),
    "support_webhooks": ((), ("url", "events", "name")),
    "support_webhook": (("status", "page"), ()),
    "support_webhook_toggle": ((), ("action",)),
    "support_webhook_redeliver": ((), ()),
    # /api/v1/: token only, so every session role is refused; its own tests fuzz it with a token (h15)
    "api:docs": ((), ()),
    "api:schema": ((), ()),
    "api:not_found": ((), ()),
    "api:tenants": (("ready", "updated_since", "cursor", "page", "page_size", "q"), ()),
    "api:tenant": ((), ()),
    "api:mapping": ((), ()),
    "api:runs": (("page", "cursor"), ("steps",)),
    "api:run": ((), ()),
    "agreement_defaults_save": (
        (),
        tuple(f"{m}_{f}" for m in ("monthly", "azure", "annual") for f in ("type", "name")),
    ),
    "agreements_save": (
        (),
        ("action", "company", "bulk_motion", "row", "motion-{id}", "agreement-{id}", "next"),
    ),
    "plan_build": ((), ()),
    "plan_build_status": ((), ()),
    "plan": ((), ()),
    "plan_status": ((), ()),
    "plan_approve": ((), ()),
    "plan_discard": ((), ()),
    "plan_retry": ((), ()),
    "demo_connect": ((), ("company",)),
    "demo_sandbox_change": ((), ("finding", "code")),
    "dashboard": (("q", "show", "step", "sort", "page"), ()),
    "support_export": (("q", "show", "step", "sort"), ()),
    "support_api_tenants": (("q", "show", "step", "sort", "page"), ()),
    "support_bulk_recheck": ((), ("tenant", "next")),
    "support_recheck_progress": ((), ()),  # reads only the session
    "support_hosts": (("hostname", "tenant"), ("hostname", "note", "tenant")),
    "support_tenant": (("run", "against"), ()),
    "support_recheck": ((), ("next",)),
    "support_audit": (("kind", "page"), ()),
    "support_staff": ((), ("email", "action")),
}
CHOSEN_ID = "2"  # the company tenant A has chosen (test_isolation._tenant_objects)

BAD_VALUES = [
    "",
    " ",
    "abc",
    "0",
    "-1",
    "2",
    "1.5",
    "1e3",
    "0x10",
    "²",  # isdigit() but not int()
    "١٢",  # Arabic-Indic digits: int() accepts them
    "9" * 25,
    "-" + "9" * 25,
    str(2**31),
    str(2**63),
    "a\nb",
    "Example Org\r\nBcc: x@example.test",
    "\x00",
    "a\x00b",
    "\x1b[31m",
    "\u202e",
    "x" * 5000,
    "add",
    "remove",
    "bulk",
    "save",
    "match",
    "unmatch",
    "exact",
    "clear",
    "admin",
    "member",
    "monthly",
    "annual",
    "catalog",
    "connection",
    "invitee@example.test",
    "a@b",
    "//evil.example/",
    "https://evil.example/",
    "00000000-0000-0000-0000-000000000000",
    "tenant-a",
]
# Values a handler accepts, so that the bad value of another field reaches the code that parses it.
PLAUSIBLE = {
    "role": ["member", "admin"],
    "bulk_motion": ["monthly", "azure", "annual"],
    "motion-{id}": ["monthly", "annual"],
    "company": [CHOSEN_ID],
    "row": [CHOSEN_ID],
    "customer": ["1"],
    "email": ["invitee@example.test", "Invitee@Example.Test"],
    "organisation": ["Example Org"],
    "name": ["Pat Partner"],
    "region": ["api-na.myconnectwise.net", "onprem"],
    "step": ["catalog"],
    "tenant": ["tenant-a"],
}  # fmt: skip
# The actions each handler knows, so that the other fields reach their parsers.
ACTIONS = {
    "customers_select": ["add", "remove"],
    "agreements_save": ["save", "bulk"],
    "billing_match": ["match", "unmatch", "exact", "clear"],
    "member_update": ["admin", "member", "remove"],
    "support_staff": ["invite", "deactivate"],
    "support_webhook_toggle": ["enable", "disable"],
}
BAD = st.one_of(st.sampled_from(BAD_VALUES), st.text(max_size=40))
# Ids are where parsing goes wrong: beyond 64 and 32 bits, negative, non-numeric, digits int() reads oddly.
BAD_ID = st.sampled_from(["9" * 25, "-" + "9" * 25, str(2**63), str(2**31), "abc", "", "-1", "²", "١٢",
                          "1.5", "\x00"])  # fmt: skip
ID_FIELDS = {"company", "row", "customer", "pick", "finding", "agreement-{id}", "page", "cpage", "bpage", "user", "addition",
             "expires_days", "page_size", "monthly_type", "azure_type", "annual_type"}  # fmt: skip


def bad_values(name: str):
    """A bad value, once or repeated; ids get the values that break integer parsing more often."""
    value = st.one_of(BAD_ID, BAD_ID, BAD) if name in ID_FIELDS else BAD
    return st.lists(value, min_size=1, max_size=3)


def good_value(route_name: str, name: str):
    """A value the handler accepts, so that the bad value of another field reaches the code that parses it."""
    if name == "action":
        return st.sampled_from(ACTIONS.get(route_name, ["save"]))
    return st.sampled_from(PLAUSIBLE.get(name, ["1"] if name in ID_FIELDS else ["x"]))


CSV_FILES = [
    ("big.csv", b"name\n" + b"x" * 200_000 + b"\n"),
    ("quoted.csv", b'name\n"' + b"y" * 140_000 + b'"\n'),
    ("utf16.csv", "name\nContoso Ltd\nFabrikam\n".encode("utf-16")),
    ("utf16le.csv", "name\nContoso Ltd\n".encode("utf-16-le")),
    ("bin.csv", bytes(range(256))),
    ("empty.csv", b""),
    ("nul.csv", b"name\nA\x00B\n"),
    ("semi.csv", b"name;note\nContoso;x\n"),
    ("cp1252.csv", "name\nCaf\u00e9 \u2013 Ltd\n".encode("cp1252")),
    ("ctrl.csv", b"name\nA\x1bB\n\x07\n"),
    ("notes.txt", b"name\n" + b"z" * 300 + b"\n"),
    ("x.exe", b"MZ"),
]
UPLOAD = st.one_of(st.sampled_from(CSV_FILES), st.tuples(st.just("r.csv"), st.binary(max_size=300)))


@st.composite
def form_data(draw, route_name: str, names: tuple[str, ...]) -> dict:
    """One or two fields bad (missing, repeated, or with a bad value), the others plausible."""
    data: dict = {}
    targets = draw(st.sets(st.sampled_from(names), min_size=1, max_size=2)) if names else set()
    for name in names:
        if name == "file":
            filename, content = draw(UPLOAD if name in targets else st.sampled_from(CSV_FILES[2:4]))
            data["file"] = SimpleUploadedFile(filename, content, content_type="text/csv")
            continue
        odd_key = st.sampled_from([CHOSEN_ID, CHOSEN_ID, "abc", "9" * 25])
        key = name.replace("{id}", draw(odd_key) if name in targets else CHOSEN_ID)
        if name not in targets:
            data[key] = [draw(good_value(route_name, name))]
        elif draw(st.integers(0, 5)) == 0:
            continue  # missing
        else:
            data[key] = draw(bad_values(name))
    return data


def _routes(method: str) -> list:
    selected = []
    for route in ROUTES:
        spec = ACCESS.get(route.name)
        if spec is not None and (spec.get if method == "get" else spec.post) is not None:
            selected.append(route)
    return selected


ROLES = ["admin", "support", "member", "outsider", "anonymous"]
# The admin and support staff reach every handler; the others are refused early, so fewer examples do.
EXAMPLES = {"admin": 30, "support": 20, "member": 5, "outsider": 5, "anonymous": 6}
# Handlers that parse ids or files are where the 500s were (issue 12, items 3 to 5): many more examples there.
DEEP = {"admin": 150, "support": 40}


def _examples(route_name: str, role: str, fields: tuple[str, ...]) -> int:
    deep = "file" in fields or any(f in ID_FIELDS for f in fields)
    return DEEP.get(role, EXAMPLES[role]) if deep else EXAMPLES[role]


def _fuzz(world, route, role: str, method: str):  # noqa: F811 (world is the fixture's value)
    url = fill(route, world)
    fields = FIELDS[route.name][0 if method == "get" else 1]
    client = Client(raise_request_exception=False)
    if role != "anonymous":
        client.force_login(world.users[role])

    # Every kind of failure is collected (not only the first, which hypothesis would stop at and shrink): one
    # line per distinct exception or status, with the first input that caused it.
    failures: dict[str, str] = {}
    raised: list[str] = []

    def on_exception(sender, request=None, **kwargs):
        exc = sys.exc_info()[1]
        raised.append(f"{type(exc).__name__}: {str(exc)[:80]}")

    @settings(
        max_examples=_examples(route.name, role, fields),
        derandomize=True,
        database=None,
        deadline=None,
        suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
    )
    @given(data=form_data(route.name, fields), raw=st.integers(0, 5).map(lambda n: n == 0))
    def run(data, raw):
        before = fingerprint()
        raised.clear()
        if method == "post" and raw and "file" not in data:
            # Non-UTF-8 bytes in a form body, as a broken client would send them.
            body = b"&".join(
                f"{k}=".encode() + b"%FF%FE" + str(v[0]).encode("utf-8", "surrogatepass")[:50]
                for k, v in data.items()
            )
            response = client.post(url, body, content_type="application/x-www-form-urlencoded")
        else:
            response = getattr(client, method)(url, data)
        where = f"{method.upper()} {url} as {role} with {_short(data)}"
        if response.status_code >= 500:
            kind = raised[0].split(":", 1)[0] if raised else str(response.status_code)
            failures.setdefault(kind, f"{where}: {response.status_code} {raised[:1]}")
        elif response.status_code >= 400 and fingerprint() != before:
            failures.setdefault("half-saved", f"{where}: answered {response.status_code} but changed data")

    got_request_exception.connect(on_exception)
    try:
        run()
    finally:
        got_request_exception.disconnect(on_exception)
    assert not failures, "\n".join(failures.values())


def _short(data: dict) -> str:
    return repr({k: (v if not isinstance(v, list) else [str(x)[:60] for x in v]) for k, v in data.items()})[
        :600
    ]


@pytest.mark.parametrize("role", ROLES)
@pytest.mark.parametrize("route", _routes("post"), ids=lambda r: r.name)
def test_no_post_answers_5xx(world, route, role):  # noqa: F811
    _fuzz(world, route, role, "post")


@pytest.mark.parametrize("role", ["admin", "support"])
@pytest.mark.parametrize(
    "route", [r for r in _routes("get") if FIELDS.get(r.name, ((),))[0]], ids=lambda r: r.name
)
def test_no_get_answers_5xx(world, route, role):  # noqa: F811
    _fuzz(world, route, role, "get")


def test_every_url_has_fuzz_fields():
    missing = sorted(r.name for r in ROUTES if r.name not in FIELDS)
    assert not missing, f"add these URLs to FIELDS in {__name__} with what their forms read: {missing}"
