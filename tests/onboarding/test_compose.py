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


# The compose file and the production smoke test cannot drift (tests/e2e/production_stack.py) ----------------


def test_only_the_proxy_publishes_ports_and_the_app_waits_for_migrate():
    services = yaml.safe_load((ROOT / "docker-compose.yml").read_text())["services"]
    published = {name for name, service in services.items() if service.get("ports")}
    assert published == {"caddy"}
    assert services["caddy"]["ports"] == ["80:80", "443:443", "443:443/udp"]
    assert "./Caddyfile:/etc/caddy/Caddyfile:ro" in services["caddy"]["volumes"]
    for name in ("web", "worker", "beat"):
        depends = services[name]["depends_on"]
        assert depends["migrate"] == {"condition": "service_completed_successfully"}, name
        assert depends["postgres"] == depends["redis"] == {"condition": "service_healthy"}, name
    assert services["caddy"]["depends_on"] == {"web": {"condition": "service_healthy"}}
    assert "/healthz" in " ".join(services["web"]["healthcheck"]["test"])
    assert "inspect ping --destination celery@$$HOSTNAME" in services["worker"]["healthcheck"]["test"][1]
    for name in ("migrate", "web", "worker", "beat", "postgres"):
        assert services[name]["env_file"] == "deploy.env", name


def test_the_proxy_gets_only_its_own_two_settings_never_the_apps_secrets():
    import re

    from tests.e2e import production_stack as ps

    caddy = yaml.safe_load((ROOT / "docker-compose.yml").read_text())["services"]["caddy"]
    assert caddy["env_file"] == "caddy.env"
    assert "environment" not in caddy
    assert ps.example_variables(ps.CADDY_ENV_EXAMPLE) == ["DOMAIN", "CADDY_TLS"]
    # The app's file no longer carries them, and the proxy's carries nothing of the app's.
    assert not {"DOMAIN", "CADDY_TLS"} & set(ps.example_variables())
    # Every variable the Caddyfile needs without a default is one caddy.env sets.
    caddyfile = (ROOT / "Caddyfile").read_text()
    required = {
        name for name, default in re.findall(r"\{\$([A-Z_]+)(?::([^}]*))?\}", caddyfile) if not default
    }
    assert required == {"DOMAIN", "CADDY_TLS"}


def test_the_smoke_test_runs_every_compose_command_with_only_the_declared_changes():
    from tests.e2e import production_stack as ps

    services = ps.compose()["services"]
    smoke = (ROOT / "tests" / "e2e" / "test_smoke_production.py").read_text()
    for name in ps.ALL_SERVICES:
        compose_argv = services[name]["command"]
        replacements = {old: f"<{name}-{i}>" for i, old in enumerate(ps.LOCALIZED.get(name, {}))}
        argv = ps.service_command(name, **replacements)
        # every declared change replaces an argument the compose command really has, and nothing else differs
        changed = [i for i, (a, b) in enumerate(zip(compose_argv, argv, strict=True)) if a != b]
        assert [compose_argv[i] for i in changed] == list(replacements), name
        assert f'ps.service_command("{name}"' in smoke, f"the smoke test does not start {name}"
    for name in ("web", "worker"):
        assert f'ps.healthcheck_command("{name}"' in smoke, f"the smoke test does not wait for {name}'s check"
        test = " ".join(services[name]["healthcheck"]["test"][1:])
        for old in ps.HEALTHCHECK_LOCALIZED.get(name, {}):
            assert old in test, (name, old)
    # The image's build step the smoke test repeats (static files) is the Dockerfile's.
    assert "python manage.py collectstatic --noinput" in (ROOT / "Dockerfile").read_text()


def test_the_smoke_deploy_env_sets_exactly_the_example_variables_plus_declared_extras(tmp_path):
    import re

    from tests.e2e import production_stack as ps
    from tests.e2e.test_smoke_production import deploy_env

    ports = dict.fromkeys(("web", "https", "http", "admin", "sandbox", "sandbox_https"), 1)
    values, extra = deploy_env(ports, "postgres://u:p@h:5432/smoke_x", "redis://h:6379/3", tmp_path, tmp_path)
    app_vars, caddy_vars = set(ps.example_variables()), set(ps.example_variables(ps.CADDY_ENV_EXAMPLE))
    assert set(values) == app_vars | caddy_vars and not app_vars & caddy_vars
    assert set(extra) <= set(ps.SMOKE_ONLY)
    # Every variable the Caddyfile reads is one caddy.env.example lists, or has a default and goes to caddy.env.
    caddyfile = (ROOT / "Caddyfile").read_text()
    for name, default in re.findall(r"\{\$([A-Z_]+)(?::([^}]*))?\}", caddyfile):
        assert name in caddy_vars or (default and name in ps.CADDY_SMOKE_ONLY), name
    # Written and read back in compose's env_file format, the values survive unchanged, each in its own file.
    app_extra = {k: v for k, v in extra.items() if k not in ps.CADDY_SMOKE_ONLY}
    caddy_extra = {k: v for k, v in extra.items() if k in ps.CADDY_SMOKE_ONLY}
    written = ps.write_env_file(tmp_path / "deploy.env", values, app_extra)
    assert written == {**{k: values[k] for k in app_vars}, **app_extra}
    written = ps.write_env_file(tmp_path / "caddy.env", values, caddy_extra, example=ps.CADDY_ENV_EXAMPLE)
    assert written == {**{k: values[k] for k in caddy_vars}, **caddy_extra}


def test_the_readme_deployment_steps_are_the_ones_the_smoke_test_runs():
    readme = (ROOT / "README.md").read_text()
    section = readme.split("## Deployment", 1)[1].split("\n## ", 1)[0]
    smoke = (ROOT / "tests" / "e2e" / "test_smoke_production.py").read_text()
    for step in ("deploy.env.example", "docker compose up -d", "manage.py support_user add", "/accounts/signup/",
                 "CADDY_TLS=internal", "pg_dump", "docker compose run --rm migrate", "make smoke"):  # fmt: skip
        assert step in section, step
    assert (
        '"support_user", "add"' in smoke
        and "/accounts/signup/" in smoke
        and '"CADDY_TLS": "internal"' in smoke
    )
