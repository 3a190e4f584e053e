"""create_manager [--username NAME] [--url URL]: a manager login for the demo, printed."""

import secrets

from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group, Permission
from django.contrib.auth.validators import UnicodeUsernameValidator
from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError
from django.db import transaction

from retention.permissions import MANAGERS_GROUP, PLATFORM_GROUP

READABLE_APPS = ["retention", "loyalty", "surveys", "offers"]


class Command(BaseCommand):
    help = (
        "Create (or find) a staff user in the Managers group, who may view but not change the "
        "domain tables, and print its login. The password is generated once and kept in "
        "RETENTION_VAR_DIR/NAME-password.txt, so every `make run` prints the same one."
    )

    def add_arguments(self, parser):
        parser.add_argument("--username", default="manager")
        parser.add_argument("--url", default="http://127.0.0.1:8000/", help="Where the site runs.")

    @transaction.atomic
    def handle(self, *args, username, url, **options):
        try:
            UnicodeUsernameValidator()(username)
        except ValidationError as exc:
            raise CommandError(f"{username!r}: {' '.join(exc.messages)}") from None
        User = get_user_model()
        user = User.objects.filter(username=username).first()
        if user and user.groups.filter(name=PLATFORM_GROUP).exists():
            raise CommandError(
                f"{username!r} is the API client of the sales platform; choose another name."
            )
        password_file = settings.VAR_DIR / f"{username}-password.txt"
        if user is None or not password_file.exists():
            user = user or User(username=username, email=f"{username}@localhost")
            password = secrets.token_urlsafe(12)
            user.set_password(password)
            user.is_staff = True
            user.save()
            password_file.parent.mkdir(parents=True, exist_ok=True)
            password_file.write_text(password + "\n")
            password_file.chmod(0o600)
        else:
            password = password_file.read_text().strip()

        group, _ = Group.objects.get_or_create(name=MANAGERS_GROUP)
        # Managers read everything and change nothing; staff roles with change
        # permissions (or superusers, `manage.py createsuperuser`) edit.
        group.permissions.add(*Permission.objects.filter(
            codename__startswith="view_", content_type__app_label__in=READABLE_APPS
        ))
        # One exception: the at-risk list is where managers hand out work, so they may
        # assign follow-ups and put customers on re-engagement lists.
        group.permissions.add(*Permission.objects.filter(
            content_type__app_label="retention",
            codename__in=["add_followup", "change_followup", "add_reengagementlist",
                          "add_reengagementmember"]))
        user.groups.add(group)

        admin_url = f"{url.rstrip('/')}/metrics/"
        if user.check_password(password):
            login = f"Manager login: {username} / {password}"
            self.stdout.write(self.style.SUCCESS(login) + f"  ({admin_url}; kept in {password_file})")
        else:
            self.stdout.write(
                f"Manager login: {username} (its password was changed after it was generated; "
                f"use the new one) at {admin_url}"
            )
