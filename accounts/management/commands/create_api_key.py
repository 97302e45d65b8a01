from django.core.management.base import BaseCommand, CommandError

from accounts import selectors, services
from accounts.errors import TierwiseError


class Command(BaseCommand):
    help = "Create an API key for a tenant. The key is printed alone on the last line, once."

    def add_arguments(self, parser):
        parser.add_argument("--tenant", required=True, help="Tenant slug")
        parser.add_argument("--scopes", required=True, help="Comma separated: ingest,read,write")
        parser.add_argument("--name", default="CLI key")

    def handle(self, *, tenant, scopes, name, **options):
        try:
            tenant_obj = selectors.get_tenant_by_slug(tenant)
            key, secret = services.create_api_key(
                tenant_obj, name=name, scopes=[s.strip() for s in scopes.split(",") if s.strip()], actor="cli"
            )
        except TierwiseError as exc:
            raise CommandError(exc.message) from exc
        self.stdout.write(f"API key {key.name!r} for {tenant_obj.slug} with scopes {','.join(key.scopes)}:")
        self.stdout.write(secret)
