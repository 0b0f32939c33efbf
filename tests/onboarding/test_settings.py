"""Settings parse the environment strictly: a bad value stops the process with the variable's name."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def load_settings(tmp_path, **env):
    base = {
        k: v
        for k, v in os.environ.items()
        if k not in {"DATABASE_URL", "REDIS_URL", "CONNECTWISE_SANDBOX_URL"}
    }
    base.update({"ONBOARDING_VAR_DIR": str(tmp_path), "DJANGO_SETTINGS_MODULE": "onboarding.settings"})
    base.update(env)
    return subprocess.run(
        [
            sys.executable,
            "-c",
            "import django; django.setup(); from django.conf import settings; print(settings.DEBUG)",
        ],
        cwd=ROOT,
        env=base,
        capture_output=True,
        text=True,
    )


def test_development_defaults_start_without_any_setting(tmp_path):
    result = load_settings(tmp_path)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "True"
    assert (tmp_path / "secret_key").exists() and (tmp_path / "field_encryption_key").exists()


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"DEBUG": "maybe"}, "DEBUG must be true or false"),
        ({"CHECK_RUN_TIME_LIMIT": "ten"}, "CHECK_RUN_TIME_LIMIT must be a whole number"),
        ({"REDIS_URL": "http://localhost"}, "REDIS_URL must start with redis://"),
        ({"FIELD_ENCRYPTION_KEYS": "not-a-key"}, "FIELD_ENCRYPTION_KEYS: key #1 is not a Fernet key"),
        ({"CONNECTWISE_SANDBOX_URL": "localhost:8765"}, "CONNECTWISE_SANDBOX_URL must look like"),
        ({"ONBOARDING_PROFILE": "staging"}, "ONBOARDING_PROFILE must be"),
        ({"DATABASE_URL": "nosuchdb://x"}, "DATABASE_URL"),
    ],
)
def test_a_bad_value_fails_loudly_naming_the_variable(tmp_path, env, message):
    result = load_settings(tmp_path, **env)
    assert result.returncode != 0
    assert message in result.stderr


def test_production_refuses_to_start_without_its_secrets(tmp_path):
    result = load_settings(tmp_path, ONBOARDING_PROFILE="production")
    assert result.returncode != 0
    assert "SECRET_KEY (or SECRET_KEY_FILE) is required in production" in result.stderr
    assert not (tmp_path / "secret_key").exists()


def test_production_with_everything_set_is_hardened(tmp_path):
    from cryptography.fernet import Fernet

    result = subprocess.run(
        [
            sys.executable,
            "-c",
            "import django; django.setup(); from django.conf import settings as s; "
            "print(s.DEBUG, s.SESSION_COOKIE_SECURE, s.CSRF_COOKIE_SECURE, s.SECURE_HSTS_SECONDS > 0)",
        ],
        cwd=ROOT,
        env={
            **{k: v for k, v in os.environ.items() if k != "CONNECTWISE_SANDBOX_URL"},
            "ONBOARDING_VAR_DIR": str(tmp_path),
            "ONBOARDING_PROFILE": "production",
            "SECRET_KEY": "x" * 60,
            "FIELD_ENCRYPTION_KEYS": Fernet.generate_key().decode(),
            "ALLOWED_HOSTS": "readiness.example.com",
            "CONNECTWISE_CLIENT_ID": "11111111-2222-3333-4444-555555555555",
        },
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["False", "True", "True", "True"]


def test_secret_from_a_file(tmp_path):
    secret = tmp_path / "key.txt"
    secret.write_text("s" * 60 + "\n")
    result = subprocess.run(
        [
            sys.executable,
            "-c",
            "import django; django.setup(); from django.conf import settings; print(len(settings.SECRET_KEY))",
        ],
        cwd=ROOT,
        env={**os.environ, "ONBOARDING_VAR_DIR": str(tmp_path), "SECRET_KEY_FILE": str(secret)},
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "60"
