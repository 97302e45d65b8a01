import secrets

from django.core.management.base import BaseCommand, CommandError

from accounts import services
from accounts.errors import TierwiseError


class Command(BaseCommand):
    help = "Create a tenant and its owner; prints the owner's login."

    def add_arguments(self, parser):
        parser.add_argument("--name", required=True)
        parser.add_argument("--slug", required=True)
        parser.add_argument("--owner-email", required=True)
        parser.add_argument("--owner-password", help="Generated and printed when omitted.")

    def handle(self, *, name, slug, owner_email, owner_password=None, **options):
        password = owner_password or secrets.token_urlsafe(12)
        try:
            tenant, owner = services.create_tenant(
                name=name, slug=slug, owner_email=owner_email, owner_password=password
            )
        except TierwiseError as exc:
            raise CommandError(f"{exc.message} {exc.details or ''}".strip()) from exc
        self.stdout.write(f"Tenant {tenant.name} ({tenant.slug}) created.")
        if owner.check_password(password):
            self.stdout.write(f"Owner login: {owner.email} / {password}  at /admin/")
        else:
            self.stdout.write(f"Owner {owner.email} already existed; their password is unchanged.")
