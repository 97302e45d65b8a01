"""`manage.py evaluate_rules --tenant SLUG [--account EXTERNAL_ID]`: evaluate the live rules now,
through the same service the workers call, and print what fired."""

from django.core.management.base import BaseCommand, CommandError

from accounts.models import CustomerAccount, Tenant
from upgrades.rules import services


class Command(BaseCommand):
    help = "Evaluate a tenant's live trigger rules now (all accounts, or one) and print the signals that fired."

    def add_arguments(self, parser):
        parser.add_argument("--tenant", required=True, help="Tenant slug.")
        parser.add_argument("--account", help="One account's external id (default: every account).")

    def handle(self, *, tenant: str, account: str | None = None, **options):
        found = Tenant.objects.filter(slug=tenant).first()
        if found is None:
            raise CommandError(f"No tenant with slug {tenant!r}.")
        ids = None
        if account is not None:
            acc = CustomerAccount.objects.for_tenant(found).filter(external_id=account).first()
            if acc is None:
                raise CommandError(f"No account {account!r} in tenant {tenant}.")
            ids = [acc.pk]
        report = services.evaluate_rules(found, accounts=ids)
        self.stdout.write(f"Evaluated {report.rules} live rule(s) for {report.evaluated_accounts} account(s).")
        for key, n in sorted(report.matched.items()):
            self.stdout.write(f"  rule {key}: matches {n} account(s) now")
        if not report.fired:
            self.stdout.write("No new signals (matches inside their cooldown were skipped).")
        for fired in report.fired:
            self.stdout.write(f"  fired {fired.kind:<20} {fired.external_id:<16} {fired.rule_key}: {fired.sentence}")
        self.stdout.write(f"{len(report.fired)} signal(s) fired.")
