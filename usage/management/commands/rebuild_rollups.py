from django.core.management.base import BaseCommand, CommandError

from accounts import selectors
from accounts.errors import TierwiseError
from accounts.models import Tenant
from accounts.tenancy import tenant_context
from catalog.models import Meter
from usage import services


class Command(BaseCommand):
    help = "Recompute usage rollups from raw events (all tenants, or one with --tenant; one meter with --meter)."

    def add_arguments(self, parser):
        parser.add_argument("--tenant", help="Tenant slug (default: every tenant)")
        parser.add_argument("--meter", help="Meter key (needs --tenant)")

    def handle(self, *, tenant=None, meter=None, **options):
        if meter and not tenant:
            raise CommandError("--meter needs --tenant.")
        try:
            tenants = [selectors.get_tenant_by_slug(tenant)] if tenant else list(Tenant.objects.order_by("slug"))
        except TierwiseError as exc:
            raise CommandError(exc.message) from exc
        for item in tenants:
            with tenant_context(item):  # row-level security: each tenant's rows are read inside it
                meter_ids = None
                if meter:
                    found = Meter.objects.for_tenant(item).filter(key=meter).values_list("id", flat=True).first()
                    if found is None:
                        raise CommandError(f"No meter {meter!r} in {item.slug}.")
                    meter_ids = [found]
                written = services.rebuild_rollups(item, meter_ids=meter_ids)
            self.stdout.write(f"{item.slug}: {written} rollup rows rebuilt")
