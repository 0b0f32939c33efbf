"""benchmark verify measures its worker as deployed: only the project's runtime dependencies importable."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from onboarding.bench.deployed import runtime_distributions, undeployed_modules

ROOT = Path(__file__).resolve().parents[2]


def test_the_runtime_closure_is_the_install_without_extras():
    runtime = runtime_distributions()
    assert {
        "cw-onboarding",
        "django",
        "httpx",
        "httpcore",
        "h11",
        "celery",
        "kombu",
        "psycopg-binary",
    } <= runtime
    assert not {"pytest", "schemathesis", "rich", "playwright", "locust", "respx"} & runtime
    hidden = undeployed_modules()
    assert {"pytest", "rich", "pygments", "schemathesis"} <= hidden
    assert not {"django", "httpx", "celery", "orjson", "redis"} & hidden


def test_a_worker_as_deployed_loads_the_product_without_the_test_extras():
    """The product's worker modules import with every test extra hidden (as in the Docker image), and a hidden one
    fails to import as an absent one would."""
    code = """
import os, sys
from onboarding.bench.deployed import hide_undeployed
hide_undeployed()
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "onboarding.settings")
import django
django.setup()
import onboarding.celery, onboarding.tasks, onboarding.runs  # noqa: E401
try:
    import rich
except ModuleNotFoundError:
    print("rich hidden")
print(sorted(m for m in ("rich", "pygments", "pytest", "jinja2") if m in sys.modules))
"""
    done = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.split("\n")[:2] == ["rich hidden", "[]"]


def test_the_walk_ends_on_requirements_that_ask_for_each_other_with_extras(monkeypatch):
    """a -> b[x] -> c[y] -> b[x]: each distribution is walked once per set of extras, so the walk ends."""
    from types import SimpleNamespace

    from onboarding.bench import deployed

    requires = {
        "a": ["b[x]"],
        "b": ['c[y]; extra == "x"'],
        "c": ['b[x]; extra == "y"', 'd; extra == "z"'],
    }

    def distribution(name):
        if name not in requires:
            raise deployed.metadata.PackageNotFoundError(name)
        return SimpleNamespace(requires=requires[name])

    monkeypatch.setattr(deployed.metadata, "distribution", distribution)
    assert deployed.runtime_distributions("a") == {"a", "b", "c"}
