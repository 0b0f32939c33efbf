"""Pages: a Content-Security-Policy without inline code, and no rendered page that needs inline code (it would
be blocked, or tempt someone to loosen the policy); other security headers."""

from __future__ import annotations

import re

import pytest
from django.core.cache import cache
from django.urls import reverse

from connectwise.checks.registry import STEP_KEYS

from .test_isolation import ACCESS, ROUTES, fill, world  # noqa: F401 (world is a fixture)

INLINE_SCRIPT = re.compile(r"<script\b(?![^>]*\bsrc\s*=)[^>]*>", re.I)
EVENT_HANDLER = re.compile(r"<[a-z][^>]*?\son[a-z]+\s*=", re.I)
STYLE_ATTRIBUTE = re.compile(r"<[a-z][^>]*?\sstyle\s*=", re.I)
STYLE_ELEMENT = re.compile(r"<style\b", re.I)
JS_URL = re.compile(r"""(?:href|src|action)\s*=\s*["']?\s*javascript:""", re.I)


def inline_code(html: str) -> list[str]:
    problems = []
    for name, pattern in [
        ("<script> without src", INLINE_SCRIPT),
        ("on*= event handler", EVENT_HANDLER),
        ("style= attribute", STYLE_ATTRIBUTE),
        ("<style> element", STYLE_ELEMENT),
        ("javascript: URL", JS_URL),
    ]:
        for m in pattern.finditer(html):
            start = max(0, m.start() - 10)
            problems.append(f"{name}: {html[start : m.end() + 60]!r}")
    return problems


@pytest.mark.parametrize(
    ("html", "found"),
    [
        ("<script>alert(1)</script>", True),
        ('<script src="/static/js/app.js" defer></script>', False),
        ('<button onclick="x()">', True),
        ('<div style="color:red">', True),
        ("<style>p{}</style>", True),
        ('<a href="javascript:void(0)">', True),
        ('<a href="/x" data-style="plain" class="onion">', False),
        ("<p>the style= of the day and onload= in prose</p>", False),
    ],
)
def test_the_inline_code_detector_itself(html, found):
    assert bool(inline_code(html)) is found


def test_the_policy_forbids_inline_scripts_and_framing(client, db):
    response = client.get(reverse("login"))
    policy = response["Content-Security-Policy"]
    directives = dict(d.strip().split(" ", 1) for d in policy.split(";"))
    assert directives["script-src"] == "'self'"
    assert directives["style-src"] == "'self'"
    assert directives["default-src"] == "'self'"
    assert directives["frame-ancestors"] == "'none'"
    assert directives["object-src"] == "'none'"
    assert "unsafe-inline" not in policy and "unsafe-eval" not in policy
    assert response["X-Frame-Options"] == "DENY"
    assert response["X-Content-Type-Options"] == "nosniff"
    assert response["Referrer-Policy"] == "same-origin"
    assert "camera=()" in response["Permissions-Policy"]


def _pages(world):  # noqa: F811
    """Every GET page of the URLconf with who may see it, plus each step page and the plan of tenant A."""
    pages = []
    for route in ROUTES:
        spec = ACCESS.get(route.name)
        if spec is None or spec.get is None:
            continue
        users = {
            "public": [None],
            "invitee": [None],
            "user": ["admin", "support"],
            "tenant": ["admin", "member", "support"],
            "api": [],  # token-only JSON (tests/api: every operation against the schema)
            "api404": [],
        }.get(spec.scope, ["support"])
        for role in users:
            pages.append((fill(route, world), role))
    for key in STEP_KEYS:
        for role in ("admin", "member", "support"):
            pages.append((reverse("step", args=[world.a.tenant.slug, key]), role))
    return pages


def test_no_rendered_page_contains_inline_code_and_every_page_has_the_policy(client, world):  # noqa: F811
    problems = []
    seen = 0
    for url, role in _pages(world):
        cache.clear()
        client.logout()
        if role:
            client.force_login(world.users[role])
        response = client.get(url)
        if response.status_code >= 400:
            problems.append(f"{url} as {role}: HTTP {response.status_code}")
            continue
        if response.status_code in (204, 302):
            continue
        assert response.get("Content-Security-Policy"), f"{url}: no Content-Security-Policy"
        body = b"".join(response.streaming_content) if response.streaming else response.content
        if "html" in response.get("Content-Type", ""):
            seen += 1
            problems += [f"{url} as {role}: {p}" for p in inline_code(body.decode())]
    assert seen >= 20, f"only {seen} HTML pages were rendered"
    assert not problems, "\n".join(problems)


def test_error_pages_carry_the_policy_too(client, outsider_b, tenant_a):
    client.force_login(outsider_b)
    response = client.get(reverse("tenant_home", args=[tenant_a.slug]))
    assert response.status_code == 404
    assert response["Content-Security-Policy"]
    assert not inline_code(response.content.decode())


def test_pages_for_a_signed_in_person_are_not_cached(client, admin_a, tenant_a):
    client.force_login(admin_a)
    response = client.get(reverse("tenant_home", args=[tenant_a.slug]))
    assert response.status_code == 200
    assert "no-store" in response["Cache-Control"]


def test_the_connection_form_never_renders_a_stored_private_key(client, world):  # noqa: F811
    client.force_login(world.users["admin"])
    response = client.get(reverse("step", args=[world.a.tenant.slug, "connection"]))
    html = response.content.decode()
    assert "private-tenant-a-0123456789" not in html
    assert re.search(r'<input[^>]+type="password"[^>]*>', html)
    assert not re.search(r'<input[^>]+type="password"[^>]+value="[^"]+"', html)
