"""Manage the distributor's support-staff accounts from the command line.

    python manage.py support_user add EMAIL      # new account: an e-mailed link to choose a password
    python manage.py support_user remove EMAIL   # deactivate: no more sign-ins, open sessions end
    python manage.py support_user list

No password is ever taken on the command line. See SECURITY.md.
"""

from __future__ import annotations

from django.core.management.base import BaseCommand, CommandError

from ...support_accounts import SupportAccountError, add_support_user, remove_support_user, support_users

OPERATOR = "operator (command line)"


class Command(BaseCommand):
    help = "Add, remove (deactivate) or list support-staff accounts. New accounts get an e-mailed set-password link."

    def add_arguments(self, parser):
        parser.add_argument("action", choices=["add", "remove", "list"])
        parser.add_argument("email", nargs="?", help="the support person's e-mail address (add, remove)")

    def handle(self, *args, action, email=None, **options):
        if action == "list":
            if email:
                raise CommandError("list takes no e-mail address.")
            rows = list(support_users())
            for user in rows:
                state = "active" if user.is_active else "deactivated"
                last = user.last_login.strftime("%Y-%m-%d %H:%M") if user.last_login else "never signed in"
                self.stdout.write(f"{user.email}\t{state}\t{last}")
            if not rows:
                self.stdout.write("No support accounts yet. Add one with: support_user add EMAIL")
            return
        if not email:
            raise CommandError(f"{action} needs an e-mail address: support_user {action} EMAIL")
        try:
            if action == "add":
                result = add_support_user(email, by=OPERATOR)
            else:
                changed = remove_support_user(email, by=OPERATOR)
        except SupportAccountError as exc:
            raise CommandError(str(exc)) from None
        except OSError as exc:  # smtplib and socket errors: the account is saved, the e-mail is not
            raise CommandError(
                f"The account for {email.strip().lower()} is saved, but the set-password e-mail could not be "
                f"sent ({exc.__class__.__name__}). Fix the e-mail settings (EMAIL_URL) and run add again."
            ) from None
        if action == "add":
            if result.action == "already":
                self.stdout.write(
                    f"{result.user.email} is already an active support account; nothing changed."
                )
            elif result.action == "resent":
                self.stdout.write(
                    f"{result.user.email} has not chosen a password yet: a new link to choose one has been e-mailed."
                )
            else:
                self.stdout.write(
                    f"Support account {result.action}: {result.user.email}. "
                    "A link to choose a password has been e-mailed."
                )
            if result.action != "already":
                self.stdout.write(
                    "The e-mail is sent by the worker, retried while the mail server is unreachable; "
                    "run add again to send a new link until a password is chosen."
                )
        elif changed:
            self.stdout.write(f"Support account deactivated: {email.strip().lower()}.")
        else:
            self.stdout.write(f"{email.strip().lower()} was already deactivated; nothing changed.")
