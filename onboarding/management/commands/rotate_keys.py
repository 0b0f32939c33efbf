"""Re-encrypt every stored private key with the newest FIELD_ENCRYPTION_KEYS key.

Rotation: put a new key first in FIELD_ENCRYPTION_KEYS (keep the old ones after it), restart, run this command,
then remove the old keys. See SECURITY.md."""

from __future__ import annotations

from django.core.management.base import BaseCommand, CommandError
from django.db import transaction

from ...crypto import DecryptionError, rotate
from ...models import AuditEvent, Connection, WebhookEndpoint


class Command(BaseCommand):
    help = "Re-encrypt every stored ConnectWise private key with the newest encryption key."

    def handle(self, *args, **options):
        done, failed = 0, []
        for pk in Connection.objects.values_list("pk", flat=True).order_by("pk"):
            with transaction.atomic():
                conn = Connection.objects.select_for_update().select_related("tenant").get(pk=pk)
                try:
                    conn.private_key_encrypted = rotate(conn.private_key_encrypted)
                except DecryptionError:
                    failed.append(conn.tenant.slug)
                    continue
                conn.save(update_fields=["private_key_encrypted"])
                done += 1
        # Webhook signing secrets are encrypted with the same keys.
        hooks, failed_hooks = 0, []
        for pk in WebhookEndpoint.objects.values_list("pk", flat=True).order_by("pk"):
            with transaction.atomic():
                endpoint = WebhookEndpoint.objects.select_for_update().get(pk=pk)
                try:
                    endpoint.secret_encrypted = rotate(endpoint.secret_encrypted)
                except DecryptionError:
                    failed_hooks.append(endpoint.url)
                    continue
                endpoint.save(update_fields=["secret_encrypted"])
                hooks += 1
        AuditEvent.record(
            AuditEvent.Kind.KEYS_ROTATED,
            actor="operator (command line)",
            message=f"Re-encrypted {done} private key(s) with the newest key",
            count=done,
            failed=failed,
        )
        self.stdout.write(f"Re-encrypted {done} private key(s) with the newest key.")
        if hooks or failed_hooks:
            self.stdout.write(f"Re-encrypted {hooks} webhook signing secret(s).")
        if failed_hooks:
            self.stderr.write(
                f"{len(failed_hooks)} webhook secret(s) could not be decrypted: {', '.join(failed_hooks)}. "
                "Add those endpoints again on the Webhooks page (a new secret for the receiver)."
            )
        if failed:
            raise CommandError(
                f"{len(failed)} key(s) could not be decrypted with any configured key: {', '.join(failed)}. "
                "Their tenants must enter the private key again."
            )
