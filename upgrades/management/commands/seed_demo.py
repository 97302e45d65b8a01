"""Idempotent demo data: every capability the product has so far, ready to click through."""

from django.core.management.base import BaseCommand
from django.db import transaction

from accounts.demo import seed_tenant
from accounts.models import User
from billing.demo import seed_billing
from catalog.demo import seed_catalogs
from messaging.demo import seed_messaging_demo, seed_template_revision
from upgrades.analytics.demo import seed_analytics_demo
from upgrades.console.demo import seed_console_demo
from upgrades.experiments.demo import seed_experiments_demo
from upgrades.offers.demo import seed_offers_demo
from upgrades.portal.demo import seed_portal_demo
from upgrades.rules.demo import seed_rules
from usage.demo import seed_usage


class Command(BaseCommand):
    help = "Create (or top up) the demo tenant, a second look-alike tenant, and their data."

    def add_arguments(self, parser):
        parser.add_argument("--accounts", type=int, default=200)

    def handle(self, *, accounts: int, **options):
        with transaction.atomic():
            demo = seed_tenant(slug="acme", name="Acme Analytics", domain="acme.test", account_count=accounts, seed=7)
            other = seed_tenant(
                slug="globex", name="Globex Cloud", domain="globex.test", account_count=max(accounts // 10, 5), seed=11
            )
            # Each app adds its demo data below, in dependency order (catalog, billing, usage).
            seed_catalogs(demo, other)
            seed_billing(demo, other)
            seed_usage(demo, other)
            fired = seed_rules(demo, other)
            templates = seed_messaging_demo(demo.tenant)  # live before any offer is sent
            seed_template_revision(  # a template with a history: version 2 by one PM, approved by the other
                demo.tenant,
                author=User.objects.get(email="pm@acme.test"),
                approver=User.objects.get(email="pm2@acme.test"),
            )
            offers = seed_offers_demo(demo.tenant)
            experiments = seed_experiments_demo(demo.tenant)  # a running experiment with assignments
            offer_emails = seed_portal_demo(demo.tenant)  # the sent offers' emails, in the outbox
            console = seed_console_demo(demo.tenant)
            seed_analytics_demo(demo.tenant)  # months of revenue history behind today's licences
        self.stdout.write(f"Demo tenant: {demo.tenant.name} — slug: {demo.tenant.slug}")
        self.stdout.write(f"Trigger rules live; {fired} new signal(s) fired on the seeded history.")
        self.stdout.write(f"Messaging: {len(templates)} live templates (admin > Message templates).")
        slots = offers["slots"]
        self.stdout.write(f"Offers in {len(slots)} demo states; offer {slots.get('sent')} is sent, ready to accept.")
        self.stdout.write(f"Outbox: {offer_emails} new offer email(s) with portal links (admin > Outbox).")
        self.stdout.write(f"Experiments: experiment {experiments['experiment']} is running (admin > Experiments).")
        self.stdout.write(f"Console (/console/, sign in as the CSM): {console}")
        self.stdout.write("Analytics (/analytics/, any staff login): MRR movements, retention, funnel.")
        self.stdout.write(f"Second tenant (for isolation): {other.tenant.slug}")
        self.stdout.write("Demo logins (sign in at /admin/):")
        for role, email, password in demo.logins + other.logins:
            self.stdout.write(f"  {role:<26} {email:<22} {password}")
