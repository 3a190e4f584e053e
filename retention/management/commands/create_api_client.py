"""create_api_client NAME: the sales platform's API user and its token.

Creates (or finds) user NAME, active, with no usable password, in the
"Platform" group that `retention.permissions.IsPlatformOrStaff` lets in, and
its DRF token; prints the token. Running it again prints the same token, so a
deployment script can call it every time.
"""

from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError
from django.db import transaction
from rest_framework.authtoken.models import Token

from retention.permissions import PLATFORM_GROUP


class Command(BaseCommand):
    help = (
        "Create or reuse the API user NAME (no password, in the Platform group) and print its "
        "token. Running it again prints the same token."
    )

    def add_arguments(self, parser):
        parser.add_argument("name", help="Username of the API client, e.g. sales-platform")

    def handle(self, *args, name, **options):
        user_model = get_user_model()
        try:
            user_model._meta.get_field(user_model.USERNAME_FIELD).run_validators(name)
        except ValidationError as exc:
            raise CommandError(f"{name!r} cannot be a username: {' '.join(exc.messages)}") from None

        with transaction.atomic():
            user, created = user_model.objects.get_or_create(
                **{user_model.USERNAME_FIELD: name}, defaults={"is_active": True}
            )
            if created:
                user.set_unusable_password()
                user.save(update_fields=["password"])
            elif user.has_usable_password() or user.is_staff or user.is_superuser:
                # A person's account: giving it a token would let the token act as them.
                raise CommandError(
                    f"user {name!r} exists and is a person's login (it has a password or is "
                    "staff); choose another name for the API client."
                )
            elif not user.is_active:
                raise CommandError(
                    f"user {name!r} exists but is deactivated, perhaps on purpose; reactivate "
                    "it in the admin or choose another name."
                )
            user.groups.add(Group.objects.get_or_create(name=PLATFORM_GROUP)[0])
            token, _created = Token.objects.get_or_create(user=user)

        if options["verbosity"] > 1:
            self.stderr.write(f"{'created' if created else 'reused'} API user {name!r}")
        self.stdout.write(token.key)
