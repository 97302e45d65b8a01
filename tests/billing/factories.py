"""Billing test data: a small published catalog, licences, Stripe keys."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import timedelta

from django.utils import timezone

from accounts.models import CustomerAccount, Tenant
from billing.models import License, LicenseStatus
from billing.proration import add_interval
from billing.services.stripe_accounts import save_stripe_keys
from catalog.models import AddOn, GovernanceState, Price, Product, Tier


@dataclass
class Catalog:
    tenant: Tenant
    product: Product
    tiers: dict[str, Tier] = field(default_factory=dict)
    prices: dict[str, Price] = field(default_factory=dict)  # "team-month", "business-year", ...
    addons: dict[str, AddOn] = field(default_factory=dict)


PRICES = {"free": (0, 0), "team": (2900, 29000), "business": (9900, 99000)}
ADDON_PRICES = (500, 5000)


def make_catalog(tenant: Tenant) -> Catalog:
    now = timezone.now()
    product = Product.objects.create(tenant=tenant, key="app", name="App")
    catalog = Catalog(tenant=tenant, product=product)
    for rank, (key, (monthly, yearly)) in enumerate(PRICES.items()):
        tier = Tier.objects.create(
            tenant=tenant,
            product=product,
            key=key,
            name=key.title(),
            rank=rank,
            state=GovernanceState.PUBLISHED,
            published_at=now,
            is_free=key == "free",
        )
        catalog.tiers[key] = tier
        for interval, amount in (("month", monthly), ("year", yearly)):
            catalog.prices[f"{key}-{interval}"] = Price.objects.create(
                tenant=tenant,
                tier=tier,
                key=f"{key}-{interval}",
                interval=interval,
                amount=amount,
                state=GovernanceState.PUBLISHED,
                published_at=now,
            )
    # An add-on sold beside any paid tier: SSO, per seat, 5.00 a month or 50.00 a year.
    sso = AddOn.objects.create(
        tenant=tenant, product=product, key="sso", name="SSO", state=GovernanceState.PUBLISHED, published_at=now
    )
    catalog.addons["sso"] = sso
    for interval, amount in (("month", ADDON_PRICES[0]), ("year", ADDON_PRICES[1])):
        catalog.prices[f"sso-{interval}"] = Price.objects.create(
            tenant=tenant,
            addon=sso,
            key=f"sso-{interval}",
            interval=interval,
            amount=amount,
            state=GovernanceState.PUBLISHED,
            published_at=now,
        )
    return catalog


def add_addon(catalog: Catalog, key: str, *, tiers: tuple[str, ...] = (), monthly: int = 300) -> AddOn:
    """A published add-on sold with the named tiers only (none: with every tier), priced per month."""
    now = timezone.now()
    addon = AddOn.objects.create(
        tenant=catalog.tenant,
        product=catalog.product,
        key=key,
        name=key.replace("-", " ").title(),
        state=GovernanceState.PUBLISHED,
        published_at=now,
    )
    addon.compatible_tiers.set([catalog.tiers[t] for t in tiers])
    catalog.addons[key] = addon
    catalog.prices[f"{key}-month"] = Price.objects.create(
        tenant=catalog.tenant,
        addon=addon,
        key=f"{key}-month",
        interval="month",
        amount=monthly,
        state=GovernanceState.PUBLISHED,
        published_at=now,
    )
    return addon


def make_license(
    account: CustomerAccount,
    price: Price,
    *,
    seats: int = 3,
    days_into_period: int = 10,
    status: str = LicenseStatus.ACTIVE,
    **fields,
) -> License:
    start = timezone.now().replace(microsecond=0) - timedelta(days=days_into_period)
    from billing.services.licenses import compute_mrr

    return License.objects.create(
        tenant_id=account.tenant_id,
        account=account,
        tier=price.tier,
        price=price,
        seats=seats,
        interval=price.interval,
        current_period_start=start,
        current_period_end=add_interval(start, price.interval),
        status=status,
        currency=price.currency,
        mrr=compute_mrr(price=price, seats=seats),
        **fields,
    )


def configure_stripe(tenant: Tenant, *, secret_key: str | None = None, webhook_secret: str | None = None) -> None:
    save_stripe_keys(
        tenant,
        actor="test",
        secret_key=secret_key or f"sk_test_{tenant.slug.replace('-', '')}",
        webhook_secret=webhook_secret or f"whsec_{tenant.slug.replace('-', '')}secret",
    )
