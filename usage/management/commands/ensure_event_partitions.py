from django.core.management.base import BaseCommand
from django.utils import timezone

from usage.partitions import ensure_partitions_around


class Command(BaseCommand):
    help = "Create missing monthly partitions of the events table (PostgreSQL only; a no-op elsewhere)."

    def add_arguments(self, parser):
        parser.add_argument("--months-back", type=int, default=3)
        parser.add_argument("--months-ahead", type=int, default=3)

    def handle(self, *, months_back, months_ahead, **options):
        created = ensure_partitions_around(timezone.now().date(), months_back=months_back, months_ahead=months_ahead)
        self.stdout.write("Created: " + (", ".join(created) if created else "nothing (all present)"))
