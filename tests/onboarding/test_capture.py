"""cw_capture: a partner's ConnectWise read into a scenario, served by the sandbox, verifies the same.

The round trip of issue 11: capture from the sandbox serving broken.json, serve the capture, and verifying it
gives the same findings as verifying the original. Also: read-only, keys never written, --anonymize consistent.
"""

from __future__ import annotations

import functools
import io
import json
from collections import Counter
from pathlib import Path

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from connectwise.checks.registry import STEP_KEYS
from connectwise.client import ConnectWiseClient
from connectwise.sandbox import SandboxApp, load_scenario, sandbox_transport
from onboarding import cw
from onboarding.models import BillingCustomer, Tenant

SCENARIOS = Path(__file__).resolve().parents[2] / "connectwise" / "sandbox" / "scenarios"
BROKEN_PRIVATE = "brokenpriv-0123456789"

pytestmark = pytest.mark.django_db


@pytest.fixture
def serve(settings, monkeypatch):
    """Point the product at an in-process sandbox serving the given scenario files; returns the app."""
    settings.CONNECTWISE_SANDBOX_URL = "http://sandbox.test"
    monkeypatch.setattr(cw, "ConnectWiseClient", functools.partial(ConnectWiseClient, sleep=lambda s: None))

    def start(*paths: Path) -> SandboxApp:
        app = SandboxApp([load_scenario(p) for p in paths])
        monkeypatch.setattr(cw, "TRANSPORT_FACTORY", lambda: sandbox_transport(app))
        return app

    return start


def run(*args) -> str:
    out = io.StringIO()
    call_command(*args, stdout=out, stderr=io.StringIO())
    return out.getvalue()


def connect(monkeypatch, slug: str, company: str, public: str, private: str) -> Tenant:
    monkeypatch.setenv("CW_PRIVATE_KEY", private)
    run("tenant_connect", slug, "--site", "sandbox.test", "--company", company, "--public-key", public)
    run("tenant_customers", slug, "--csv", str(SCENARIOS / "broken-customers.csv"))
    tenant = Tenant.objects.get(slug=slug)
    for name in ("Contoso Limited", "Fourth Coffee"):
        BillingCustomer.objects.create(tenant=tenant, name=name, normalized=name.lower())
    return tenant


def findings(slug: str) -> dict[str, tuple[str, Counter]]:
    """Per step: its status and how many findings of each code."""
    result = json.loads(run("verify_tenant", slug, "--json"))
    return {s["key"]: (s["status"], Counter(f["code"] for f in s["findings"])) for s in result["steps"]}


def capture_to(path: Path, *args: str) -> tuple[dict, str]:
    out = run("cw_capture", *args, "--out", str(path))
    return json.loads(path.read_text()), out


def placeholder(scenario: dict) -> tuple[str, str]:
    member = scenario["apiMembers"][0]
    return member["publicKey"], member["privateKey"]


def test_capture_of_broken_serves_the_same_findings(serve, monkeypatch, tmp_path):
    original = serve(SCENARIOS / "broken.json")
    connect(monkeypatch, "broken", "brokenco", "brokenpub", BROKEN_PRIVATE)
    expected = findings("broken")
    assert expected["agreements"][0] == "fail" and len(expected) == len(STEP_KEYS)

    original.clear_requests()
    scenario, out = capture_to(tmp_path / "capture.json", "broken")
    writes = [k for k in original.request_counts("brokenco")["brokenco"] if not k.startswith("GET")]
    assert writes == []  # read-only

    text = (tmp_path / "capture.json").read_text()
    assert BROKEN_PRIVATE not in text and "brokenpub" not in text  # the partner's keys are never written
    public, private = placeholder(scenario)
    assert public in out and private in out  # printed so the user can connect

    serve(tmp_path / "capture.json")
    connect(monkeypatch, "copy", scenario["company"]["id"], public, private)
    assert findings("copy") == expected


def test_anonymized_capture_replaces_names_consistently_and_still_verifies_the_same(
    serve, monkeypatch, tmp_path
):
    serve(SCENARIOS / "broken.json")
    connect(monkeypatch, "broken", "brokenco", "brokenpub", BROKEN_PRIVATE)
    expected = findings("broken")
    original = json.loads((SCENARIOS / "broken.json").read_text())

    scenario, _ = capture_to(tmp_path / "anon.json", "broken", "--anonymize")
    text = json.dumps(scenario)
    for company in original["records"]["company/companies"]:
        assert company["name"] not in text and f'"{company["identifier"]}"' not in text
    for agreement in original["records"]["finance/agreements"]:
        assert f'"{agreement["name"]}"' not in text or agreement["name"] in {
            t["name"] for t in original["records"]["finance/agreements/types"]
        }
    assert original["company"]["name"] not in text and scenario["company"]["id"] == "anonymized"
    companies = {c["id"]: c for c in scenario["records"]["company/companies"]}
    for agreement in scenario["records"]["finance/agreements"]:
        ref = agreement["company"]
        assert ref.get("name", companies[ref["id"]]["name"]) == companies[ref["id"]]["name"]
        assert agreement["name"] == f"Agreement {agreement['id']}"
    # "Contoso Ltd" and "Contoso Limited" stay the same customer under their new names.
    assert companies[1]["name"].split()[:2] == companies[2]["name"].split()[:2]

    serve(tmp_path / "anon.json")
    public, private = placeholder(scenario)
    connect(monkeypatch, "anon", "anonymized", public, private)
    got = findings("anon")
    # Billing customers are names from the partner's billing side: under new company names they match nothing.
    for step in expected:
        if step != "customers":
            assert got[step] == expected[step], step
    assert got["customers"][1] - Counter({"customers.unmatched": 9}) == expected["customers"][1] - Counter(
        {"customers.unmatched": 9}
    )


def test_capture_with_site_and_keys_from_the_environment(serve, monkeypatch, tmp_path):
    serve(SCENARIOS / "broken.json")
    monkeypatch.setenv("CW_PRIVATE_KEY", BROKEN_PRIVATE)
    scenario, _ = capture_to(
        tmp_path / "direct.json",
        "--site",
        "sandbox.test",
        "--company",
        "brokenco",
        "--public-key",
        "brokenpub",
    )
    assert scenario["company"]["id"] == "brokenco"
    assert len(scenario["records"]["company/companies"]) == len(
        json.loads((SCENARIOS / "broken.json").read_text())["records"]["company/companies"]
    )
    assert not Tenant.objects.exists()  # nothing stored


@pytest.mark.parametrize(
    "args, message",
    [
        ([], "Give SLUG, or all of"),
        (["nobody"], "No tenant with slug"),
        (["x", "--site", "sandbox.test"], "not both"),
        (["--site", "sandbox.test", "--company", "brokenco"], "Give SLUG, or all of"),
        (["--site", "10.0.0.1", "--company", "c", "--public-key", "p"], "Connection refused"),
    ],
)
def test_bad_arguments_are_clear_errors(serve, monkeypatch, tmp_path, args, message):
    serve(SCENARIOS / "broken.json")
    monkeypatch.setenv("CW_PRIVATE_KEY", "whatever-123456")
    with pytest.raises(CommandError, match=message):
        run("cw_capture", *args, "--out", str(tmp_path / "x.json"))
    assert not (tmp_path / "x.json").exists()


def test_a_failed_read_writes_nothing_and_says_why(serve, monkeypatch, tmp_path):
    app = serve(SCENARIOS / "broken.json")
    connect(monkeypatch, "broken", "brokenco", "brokenpub", BROKEN_PRIVATE)
    app.set_faults(
        {
            "paths": ["finance/agreements"],
            "rates": {"500": 1.0},
            "errorBody": {
                "code": "ConnectWiseApi",
                "message": "String was not recognized as a valid Boolean.",
            },
        }
    )
    with pytest.raises(CommandError, match="String was not recognized"):
        run("cw_capture", "broken", "--out", str(tmp_path / "x.json"))
    assert not (tmp_path / "x.json").exists()


def test_an_existing_file_is_not_overwritten_without_force(serve, monkeypatch, tmp_path):
    serve(SCENARIOS / "broken.json")
    connect(monkeypatch, "broken", "brokenco", "brokenpub", BROKEN_PRIVATE)
    target = tmp_path / "x.json"
    target.write_text("keep")
    with pytest.raises(CommandError, match="--force"):
        run("cw_capture", "broken", "--out", str(target))
    assert target.read_text() == "keep"
    run("cw_capture", "broken", "--out", str(target), "--force")
    assert json.loads(target.read_text())["company"]["id"] == "brokenco"


def test_capture_of_a_ready_tenant_is_ready_too(serve, monkeypatch, tmp_path):
    serve(SCENARIOS / "healthy.json")
    choices = tmp_path / "choices.csv"
    choices.write_text(
        "company,motion,agreement\n"
        + "".join(f"{i},{'annual' if i == 7 else 'azure' if i == 2 else 'monthly'},\n" for i in range(1, 13))
    )

    def connect_ready(slug: str, company: str, public: str, private: str) -> dict:
        monkeypatch.setenv("CW_PRIVATE_KEY", private)
        run("tenant_connect", slug, "--site", "sandbox.test", "--company", company, "--public-key", public)
        run("tenant_customers", slug, "--csv", str(choices))
        return json.loads(run("verify_tenant", slug, "--json"))

    original = connect_ready("acme", "acme", "acmepub", "acmepriv-0123456789")
    assert original["ready"] is True
    scenario, _ = capture_to(tmp_path / "healthy-capture.json", "acme", "--anonymize")
    serve(tmp_path / "healthy-capture.json")
    copy = connect_ready("copy", "anonymized", *placeholder(scenario))
    assert copy["ready"] is True
    assert [(s["key"], s["status"]) for s in copy["steps"]] == [
        (s["key"], s["status"]) for s in original["steps"]
    ]


def test_a_role_with_inquire_level_my_sees_the_same_records_in_the_capture(serve, monkeypatch, tmp_path):
    # Inquire level "My" shows the API member only the records it entered (_info.enteredBy, the sandbox's
    # ownership rule): the capture keeps _info and gives the placeholder member that identifier.
    data = json.loads((SCENARIOS / "broken.json").read_text())
    role = next(r for r in data["securityRoles"] if r["name"] == "Billing Sync")
    agreements_row = next(s for s in role["settings"] if s["moduleFunctionName"] == "Agreements")
    agreements_row["inquireLevel"] = "My"
    for i, agreement in enumerate(data["records"]["finance/agreements"]):
        # The agreements the choices name explicitly stay visible (tenant_customers checks them).
        mine = i % 2 == 0 or agreement["id"] in (10, 11, 114)
        agreement["_info"] = {"enteredBy": "billingsync" if mine else "someone.else"}
    variant = tmp_path / "broken-my.json"
    variant.write_text(json.dumps(data))

    serve(variant)
    connect(monkeypatch, "broken", "brokenco", "brokenpub", BROKEN_PRIVATE)
    expected = findings("broken")
    scenario, _ = capture_to(tmp_path / "capture.json", "broken")
    visible = [a for a in data["records"]["finance/agreements"] if a["_info"]["enteredBy"] == "billingsync"]
    assert len(scenario["records"]["finance/agreements"]) == len(visible)
    assert scenario["apiMembers"][0]["identifier"] == "billingsync"
    anonymized, _ = capture_to(tmp_path / "anon.json", "broken", "--anonymize")
    assert anonymized["apiMembers"][0]["identifier"] == "member1"
    assert {a["_info"]["enteredBy"] for a in anonymized["records"]["finance/agreements"]} == {"member1"}

    serve(tmp_path / "capture.json")
    connect(monkeypatch, "copy", "brokenco", *placeholder(scenario))
    assert findings("copy") == expected


def test_capture_keeps_the_agreement_additions_so_existing_billing_finds_the_same(
    serve, monkeypatch, tmp_path
):
    serve(SCENARIOS / "billing.json")
    customers = tmp_path / "customers.csv"
    customers.write_text("company,motion\n" + "".join(f"{i},monthly\n" for i in range(1, 7)))

    def connect_billing(slug: str, company: str, public: str, private: str) -> None:
        monkeypatch.setenv("CW_PRIVATE_KEY", private)
        run("tenant_connect", slug, "--site", "sandbox.test", "--company", company, "--public-key", public)
        run("tenant_customers", slug, "--csv", str(customers))

    connect_billing("billco", "billco", "billpub", "billpriv-0123456789")
    expected = findings("billco")
    assert expected["existing_billing"][0] == "warn"
    scenario, _ = capture_to(tmp_path / "capture.json", "billco")
    additions = scenario["records"]["finance/agreements/additions"]
    assert sorted(a["id"] for a in additions) == [1, 2, 3, 4, 5, 6, 7]
    assert all(isinstance(a["agreementId"], int) for a in additions)
    serve(tmp_path / "capture.json")
    public, private = placeholder(scenario)
    connect_billing("copy", scenario["company"]["id"], public, private)
    assert findings("copy")["existing_billing"] == expected["existing_billing"]
