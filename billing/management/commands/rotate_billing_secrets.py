"""Re-encrypt every tenant's Stripe secrets under the newest TIERWISE_ENCRYPTION_KEYS key (README: rotation)."""

from django.core.management.base import BaseCommand

from billing.services.stripe_accounts import rotate_stripe_secrets


class Command(BaseCommand):
    help = "Re-encrypt stored Stripe secrets with the first (newest) key in TIERWISE_ENCRYPTION_KEYS."

    def handle(self, **options):
        count = rotate_stripe_secrets()
        self.stdout.write(f"Re-encrypted the Stripe settings of {count} tenant(s).")
