"""Set-ups shared by the billing integration tests: a licence backed by a real stand-in subscription."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

from django.utils import timezone

from accounts.models import CustomerAccount, Tenant
from billing.models import License
from billing.services.catalog_sync import ensure_stripe_price
from billing.services.stripe_accounts import stripe_for
from billing.stripe_client import ItemTarget
from tests.billing.conftest import StandIn
from tests.billing.factories import Catalog, configure_stripe, make_catalog, make_license


@dataclass
class Billed:
    tenant: Tenant
    account: CustomerAccount
    catalog: Catalog
    license: License
    api_key: str
    webhook_secret: str

    def refresh(self) -> License:
        self.license.refresh_from_db()
        return self.license


def billed_license(
    tenant: Tenant,
    account: CustomerAccount,
    standin: StandIn,
    *,
    price_key: str = "team-month",
    seats: int = 3,
    days_into_period: int = 10,
    webhook_url: str | None = None,
) -> Billed:
    """A tenant with Stripe keys, its catalog in Stripe, and an account paying by card for `price_key`."""
    catalog = make_catalog(tenant)
    api_key, secret = f"sk_test_{tenant.slug.replace('-', '')}", f"whsec_{tenant.slug.replace('-', '')}secret"
    configure_stripe(tenant, secret_key=api_key, webhook_secret=secret)
    if webhook_url:
        standin.register_webhook(tenant.slug, url=webhook_url, secret=secret, api_key=api_key)
    gateway = stripe_for(tenant)
    price = catalog.prices[price_key]
    stripe_price = ensure_stripe_price(tenant, price=price, gateway=gateway)
    customer = gateway.create_customer(
        email="buyer@customer.test",
        name=account.name,
        metadata={},
        idempotency_key=f"test-cus-{account.pk}",
        payment_method="pm_card_visa",
    )
    start = timezone.now().replace(microsecond=0) - timedelta(days=days_into_period)
    subscription = gateway.create_subscription(
        customer_id=customer.id,
        items=[ItemTarget(stripe_price.stripe_price_id, seats)],
        idempotency_key=f"test-sub-{account.pk}",
        metadata={},
        backdate_start=start,
    )
    license = make_license(
        account,
        price,
        seats=seats,
        days_into_period=days_into_period,
        stripe_customer_id=customer.id,
        stripe_subscription_id=subscription.id,
        stripe_subscription_item_id=subscription.items[0].id,
    )
    License.objects.filter(pk=license.pk).update(
        current_period_start=subscription.current_period_start, current_period_end=subscription.current_period_end
    )
    license.refresh_from_db()
    return Billed(
        tenant=tenant, account=account, catalog=catalog, license=license, api_key=api_key, webhook_secret=secret
    )


def free_license(
    tenant: Tenant, account: CustomerAccount, standin: StandIn, *, seats: int = 3, webhook_url: str | None = None
) -> Billed:
    """As the demo seeds it: a licence on the free tier (no price, no subscription) whose account is a Stripe
    customer with a working card on file."""
    from billing.services.licenses import provision_license

    catalog = make_catalog(tenant)
    api_key, secret = f"sk_test_{tenant.slug.replace('-', '')}", f"whsec_{tenant.slug.replace('-', '')}secret"
    configure_stripe(tenant, secret_key=api_key, webhook_secret=secret)
    if webhook_url:
        standin.register_webhook(tenant.slug, url=webhook_url, secret=secret, api_key=api_key)
    customer = stripe_for(tenant).create_customer(
        email="buyer@customer.test",
        name=account.name,
        metadata={},
        idempotency_key=f"test-cus-{account.pk}",
        payment_method="pm_card_visa",
    )
    license = provision_license(
        tenant, account=account, price=None, tier=catalog.tiers["free"], seats=seats, actor="test"
    )
    License.objects.filter(pk=license.pk).update(stripe_customer_id=customer.id)
    license.refresh_from_db()
    return Billed(
        tenant=tenant, account=account, catalog=catalog, license=license, api_key=api_key, webhook_secret=secret
    )


def webhook_url(live_server, tenant: Tenant) -> str:
    return f"{live_server.url}/billing/stripe/webhook/{tenant.slug}/"


def latest_invoice(billed: Billed, standin: StandIn) -> dict:
    """The customer's newest invoice in the stand-in (by its number)."""
    return max(standin.invoices(billed.api_key, billed.license.stripe_customer_id), key=lambda i: i["number"])
