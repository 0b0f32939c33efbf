"""No Docker engine runs here: check that docker-compose.yml parses and names the services the README documents."""

from __future__ import annotations

from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[2]


def test_compose_file_names_the_deployment_services_with_health_checks():
    compose = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    services = compose["services"]
    assert {"postgres", "redis", "web", "worker", "beat"} <= set(services)
    assert services["web"]["command"][0] == "gunicorn"
    assert services["worker"]["command"][:4] == ["celery", "-A", "onboarding", "worker"]
    assert services["beat"]["command"][:4] == ["celery", "-A", "onboarding", "beat"]
    for name in ("postgres", "redis", "web", "worker"):
        assert "healthcheck" in services[name], name
    readme = (ROOT / "README.md").read_text()
    for name in ("web", "worker", "beat", "PostgreSQL", "Redis"):
        assert name in readme


def test_example_env_file_lists_every_production_secret():
    text = (ROOT / "deploy.env.example").read_text()
    for var in (
        "SECRET_KEY",
        "FIELD_ENCRYPTION_KEYS",
        "ALLOWED_HOSTS",
        "DATABASE_URL",
        "REDIS_URL",
        "CONNECTWISE_CLIENT_ID",
    ):
        assert f"{var}=" in text
