"""``onboarding.envparse``: each parser returns the value or fails naming the variable (the settings read through
them; ``test_settings.py`` starts Django with whole environments)."""

from __future__ import annotations

import ipaddress

import pytest
from cryptography.fernet import Fernet
from django.core.exceptions import ImproperlyConfigured

from onboarding import envparse


@pytest.mark.parametrize(
    ("raw", "expected"), [("", True), ("yes", True), (" OFF ", False), ("1", True), ("0", False)]
)
def test_strict_bool_reads_the_usual_words_and_defaults_when_empty(monkeypatch, raw, expected):
    monkeypatch.setenv("X_FLAG", raw)
    assert envparse.strict_bool("X_FLAG", default=True) is expected


def test_strict_bool_and_int_name_the_variable_they_refuse(monkeypatch):
    monkeypatch.setenv("X_FLAG", "maybe")
    with pytest.raises(ImproperlyConfigured, match="X_FLAG must be true or false, not 'maybe'"):
        envparse.strict_bool("X_FLAG", default=False)
    monkeypatch.setenv("X_COUNT", "3")
    assert envparse.strict_int("X_COUNT", 9, minimum=1) == 3
    monkeypatch.setenv("X_COUNT", "0")
    with pytest.raises(ImproperlyConfigured, match="X_COUNT must be at least 1, not 0"):
        envparse.strict_int("X_COUNT", 9, minimum=1)
    monkeypatch.setenv("X_COUNT", "ten")
    with pytest.raises(ImproperlyConfigured, match="X_COUNT must be a whole number"):
        envparse.strict_int("X_COUNT", 9)
    monkeypatch.delenv("X_COUNT")
    assert envparse.strict_int("X_COUNT", 9) == 9


def test_strict_rate_takes_django_ratelimit_rates_only(monkeypatch):
    monkeypatch.delenv("X_RATE", raising=False)
    assert envparse.strict_rate("X_RATE", "5/h") == "5/h"
    monkeypatch.setenv("X_RATE", "5/15m")
    assert envparse.strict_rate("X_RATE", "5/h") == "5/15m"
    monkeypatch.setenv("X_RATE", "5 per hour")
    with pytest.raises(ImproperlyConfigured, match="X_RATE must be a rate like 5/h"):
        envparse.strict_rate("X_RATE", "5/h")


def test_a_secret_comes_from_the_variable_or_its_file_not_both(monkeypatch, tmp_path):
    monkeypatch.delenv("X_SECRET", raising=False)
    monkeypatch.delenv("X_SECRET_FILE", raising=False)
    assert envparse.secret("X_SECRET") is None
    (tmp_path / "s").write_text("from-file\n")
    monkeypatch.setenv("X_SECRET_FILE", str(tmp_path / "s"))
    assert envparse.secret("X_SECRET") == "from-file"
    monkeypatch.setenv("X_SECRET", "inline")
    with pytest.raises(ImproperlyConfigured, match="Set X_SECRET or X_SECRET_FILE, not both"):
        envparse.secret("X_SECRET")


def test_a_generated_secret_is_made_once_and_kept_private(tmp_path):
    made = envparse.generated(tmp_path / "var", "key", lambda: "first")
    again = envparse.generated(tmp_path / "var", "key", lambda: "second")
    assert made == again == "first"
    assert (tmp_path / "var" / "key").stat().st_mode & 0o777 == 0o600


def test_lists_keys_networks_and_pem_files(monkeypatch, tmp_path):
    assert envparse.csv_list(" a, ,b ,") == ["a", "b"]
    key = Fernet.generate_key().decode()
    assert envparse.fernet_keys("X_KEYS", f"{key}, {key}") == [key, key]
    with pytest.raises(ImproperlyConfigured, match=r"X_KEYS: key #2 is not a Fernet key"):
        envparse.fernet_keys("X_KEYS", f"{key},nope")
    monkeypatch.setenv("X_NETS", "10.20.0.1/16, ,fd00::/8")
    assert envparse.networks("X_NETS") == [
        ipaddress.ip_network("10.20.0.0/16"),
        ipaddress.ip_network("fd00::/8"),
    ]
    monkeypatch.setenv("X_NETS", "nonsense")
    with pytest.raises(ImproperlyConfigured, match="X_NETS: 'nonsense' is not a network"):
        envparse.networks("X_NETS")
    monkeypatch.delenv("X_PEM", raising=False)
    assert envparse.pem_file("X_PEM") is None
    (tmp_path / "ca.pem").write_text("-----BEGIN CERTIFICATE-----\n...\n")
    monkeypatch.setenv("X_PEM", str(tmp_path / "ca.pem"))
    assert envparse.pem_file("X_PEM") == str(tmp_path / "ca.pem")
    (tmp_path / "not.pem").write_text("hello")
    monkeypatch.setenv("X_PEM", str(tmp_path / "not.pem"))
    with pytest.raises(ImproperlyConfigured, match="holds no PEM certificate"):
        envparse.pem_file("X_PEM")
