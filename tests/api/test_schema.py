"""The published OpenAPI document: it validates, and a property-based run of schemathesis over every operation
(bounded examples, fixed seed, in-process through WSGI) finds no 5xx and nothing that contradicts the document
(status codes, content types, headers, bodies)."""

from __future__ import annotations

import pytest
import schemathesis
from django.core import signals
from django.db import close_old_connections
from hypothesis import HealthCheck, given, settings
from schemathesis.generation.modes import GenerationMode
from schemathesis.specs.openapi.checks import negative_data_rejection

from tests.api.test_api import finding, make_tenant, store_run

SCHEMA_URL = "/api/v1/schema/?format=json"


@pytest.mark.django_db
def test_the_openapi_document_validates(client):
    from openapi_spec_validator import validate

    response = client.get(SCHEMA_URL)
    assert response.status_code == 200
    document = response.json()
    validate(document)
    operations = {(p, m) for p, item in document["paths"].items() for m in item}
    assert operations == {
        ("/api/v1/tenants/", "get"),
        ("/api/v1/tenants/{slug}/", "get"),
        ("/api/v1/tenants/{slug}/mapping/", "get"),
        ("/api/v1/tenants/{slug}/runs/", "post"),
        ("/api/v1/runs/{uuid}/", "get"),
    }
    assert document["components"]["securitySchemes"]["apiToken"] == {
        "type": "http",
        "scheme": "bearer",
        "description": "An API token made by support staff.",
    }


@pytest.fixture
def api_world(db, monkeypatch, django_capture_on_commit_callbacks):
    """Data for the generated requests to reach: a connected tenant with results and a chosen customer."""
    from onboarding.api import tokens
    from onboarding.api.auth import PerTokenThrottle
    from onboarding.models import CompanyChoice
    from tests.onboarding.wizard_helpers import agreement, directory_row

    monkeypatch.setattr(PerTokenThrottle, "THROTTLE_RATES", {"token": "100000/min"})
    tenant = make_tenant("acme", step_statuses={"catalog": "fail"}, first_open_step="catalog")
    run = store_run(tenant, {"catalog": ("fail", [finding("catalog.misc_missing")])})
    directory_row(tenant, 2, "Contoso", agreements=[agreement(10, "O365")])
    CompanyChoice.objects.create(tenant=tenant, cw_company_id=2, name="Contoso")
    _, secret = tokens.create("schemathesis", "read+verify", by="test")
    # Requests go through the WSGI handler, which closes the database connection when a request ends; inside
    # the test's transaction that would close it under the test (Django's test client disconnects it too).
    signals.request_started.disconnect(close_old_connections)
    signals.request_finished.disconnect(close_old_connections)
    yield {"secret": secret, "run": str(run.uuid)}
    signals.request_started.connect(close_old_connections)
    signals.request_finished.connect(close_old_connections)


def _load_schema():
    """The document as the running app publishes it, loaded through WSGI (no database needed for it)."""
    from onboarding.wsgi import application

    return schemathesis.openapi.from_wsgi(SCHEMA_URL, application)


SCHEMA = _load_schema()
OPERATIONS = [(op.path, op.method) for op in (r.ok() for r in SCHEMA.get_all_operations())]
# Every operation with generated path ids, and those with path parameters once more with real ones.
RUNS = [(p, m, False) for p, m in OPERATIONS] + [(p, m, True) for p, m in OPERATIONS if "{" in p]


# Schemathesis' own pytest loader does not work with pytest 9 (it sets a private node attribute), so each
# operation gets a plain Hypothesis run over schemathesis' strategy: valid (positive) and invalid (negative)
# requests, once with generated path ids and once with the ids of real records.
@pytest.mark.parametrize("mode", [GenerationMode.POSITIVE, GenerationMode.NEGATIVE])
@pytest.mark.parametrize(
    ("path", "method", "real_ids"),
    RUNS,
    ids=[f"{m.upper()} {p}{' real ids' if r else ''}" for p, m, r in RUNS],
)
def test_every_operation_conforms_and_never_fails(
    path, method, mode, real_ids, api_world, django_capture_on_commit_callbacks
):
    operation = SCHEMA[path][method]
    fixed = {}
    if real_ids:
        fixed = {k: v for k, v in {"slug": "acme", "uuid": api_world["run"]}.items() if "{" + k + "}" in path}
    auth = {"Authorization": f"Bearer {api_world['secret']}"}

    @given(case=operation.as_strategy(generation_mode=mode, path_parameters=fixed or None))
    @settings(
        max_examples=15,
        derandomize=True,  # a fixed seed: CI runs the same examples every time
        deadline=None,
        database=None,
        suppress_health_check=list(HealthCheck),
    )
    def run(case):
        with django_capture_on_commit_callbacks(execute=False):  # started runs stay queued: no worker here
            # Negative requests must not break anything (no 5xx, answers as documented), but "was it refused?"
            # is not asked of them: the API ignores unknown query parameters on purpose (links keep working),
            # and the token this test adds back would make a request generated without one look "accepted".
            # Refusing bad values is asserted one by one in test_api.py.
            case.call_and_validate(headers=auth, excluded_checks=[negative_data_rejection])

    run()
