"""create_manager [--username NAME]: a manager login for the demo, printed once made."""

import secrets

from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group, Permission
from django.core.management.base import BaseCommand
from django.db import transaction

MANAGERS = "Managers"
READABLE_APPS = ["retention", "loyalty", "surveys", "offers"]


class Command(BaseCommand):
    help = (
        "Create (or find) a staff user in the Managers group and print its login. The "
        "password is generated once and kept in var/manager-password.txt, so every "
        "`make run` prints the same one."
    )

    def add_arguments(self, parser):
        parser.add_argument("--username", default="manager")
        parser.add_argument("--url", default="http://127.0.0.1:8000/", help="Where the site runs.")

    @transaction.atomic
    def handle(self, *args, username, url, **options):
        password_file = settings.VAR_DIR / f"{username}-password.txt"
        User = get_user_model()
        user, created = User.objects.get_or_create(
            username=username, defaults={"is_staff": True, "email": f"{username}@localhost"}
        )
        if created or not password_file.exists():
            password = secrets.token_urlsafe(12)
            user.set_password(password)
            user.is_staff = True
            user.save()
            password_file.parent.mkdir(parents=True, exist_ok=True)
            password_file.write_text(password + "\n")
            password_file.chmod(0o600)
        else:
            password = password_file.read_text().strip()
        group, _ = Group.objects.get_or_create(name=MANAGERS)
        # Managers read everything and change nothing in the admin; staff roles edit.
        group.permissions.add(*Permission.objects.filter(
            codename__startswith="view_", content_type__app_label__in=READABLE_APPS
        ))
        user.groups.add(group)
        self.stdout.write(
            self.style.SUCCESS(f"Manager login: {username} / {password}")
            + f"  ({url.rstrip('/')}/admin/; password kept in {password_file})"
        )
