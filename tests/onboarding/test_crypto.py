"""Private keys are encrypted at rest with Fernet, and keys rotate without losing a secret."""

from __future__ import annotations

import pytest
from cryptography.fernet import Fernet
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import connection as db

from onboarding import crypto
from onboarding.models import AuditEvent, Connection

SECRET = "priv-canary-7f3a9c"


@pytest.fixture
def conn(tenant_a):
    c = Connection(tenant=tenant_a, site="api-na.myconnectwise.net", company_id="acme", public_key="pub")
    c.set_private_key(SECRET)
    c.save()
    return c


def raw_column(pk):
    with db.cursor() as cur:
        cur.execute("SELECT private_key_encrypted FROM onboarding_connection WHERE id = %s", [pk])
        return cur.fetchone()[0]


def test_the_database_holds_only_ciphertext(conn):
    stored = raw_column(conn.pk)
    assert SECRET not in stored
    assert Connection.objects.get(pk=conn.pk).get_private_key() == SECRET
    assert conn.private_key_masked.endswith("") and SECRET not in conn.private_key_masked


def test_rotation_re_encrypts_with_the_newest_key_and_old_keys_can_then_go(conn, settings):
    old_keys = list(settings.FIELD_ENCRYPTION_KEYS)
    new_key = Fernet.generate_key().decode()
    settings.FIELD_ENCRYPTION_KEYS = [new_key, *old_keys]
    before = raw_column(conn.pk)
    call_command("rotate_keys")
    after = raw_column(conn.pk)
    assert after != before
    settings.FIELD_ENCRYPTION_KEYS = [new_key]  # the old key is removed
    assert Connection.objects.get(pk=conn.pk).get_private_key() == SECRET
    assert AuditEvent.objects.filter(kind=AuditEvent.Kind.KEYS_ROTATED).exists()


def test_a_key_removed_too_early_gives_a_clear_error_without_the_secret(conn, settings):
    settings.FIELD_ENCRYPTION_KEYS = [Fernet.generate_key().decode()]
    with pytest.raises(crypto.DecryptionError) as exc:
        Connection.objects.get(pk=conn.pk).get_private_key()
    assert SECRET not in str(exc.value)
    with pytest.raises(CommandError, match="tenant-a"):
        call_command("rotate_keys")


def test_audit_events_are_append_only(tenant_a):
    event = AuditEvent.record(AuditEvent.Kind.RUN_STARTED, tenant=tenant_a, actor="test")
    event.message = "changed"
    with pytest.raises(PermissionError):
        event.save()
    with pytest.raises(PermissionError):
        event.delete()
    with pytest.raises(PermissionError):
        AuditEvent.objects.filter(pk=event.pk).update(message="x")
    with pytest.raises(PermissionError):
        AuditEvent.objects.all().delete()
