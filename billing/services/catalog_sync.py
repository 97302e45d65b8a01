"""Published catalog prices in Stripe: created the first time they are needed, then kept in step.

The catalog app knows nothing of Stripe; this mapping (StripeProduct, StripePrice) is billing's.
Creation is idempotent three ways: the mapping row is looked up first, the Stripe Price
carries a lookup key naming our price (found again after a crash between Stripe's answer
and our write, however long ago), and each create call carries an idempotency key.
"""

from __future__ import annotations

from dataclasses import dataclass

from django.db import IntegrityError, transaction
from django.utils import timezone

from accounts.models import Tenant
from billing.errors import BillingErrorCode, InvalidInput
from billing.models import StripePrice, StripeProduct
from billing.stripe_client import StripeGateway
from catalog.models import GovernanceState, Price


def price_lookup_key(price: Price) -> str:
    return f"tierwise_price_{price.pk}"


def _owner(price: Price) -> tuple[str, str, str]:
    if price.tier_id is not None:
        return "tier", price.tier.key, price.tier.name
    return "addon", price.addon.key, price.addon.name


def _ensure_product(tenant: Tenant, gateway: StripeGateway, *, kind: str, key: str, name: str) -> StripeProduct:
    existing = StripeProduct.objects.for_tenant(tenant).filter(owner_kind=kind, catalog_key=key).first()
    if existing is not None:
        return existing
    product_id = gateway.create_product(
        name=name,
        metadata={"tierwise_kind": kind, "tierwise_key": key},
        idempotency_key=f"tw-{tenant.pk}-product-{kind}-{key}",
    )
    try:
        with transaction.atomic():
            return StripeProduct.objects.create(
                tenant=tenant, owner_kind=kind, catalog_key=key, stripe_product_id=product_id, name=name
            )
    except IntegrityError:  # a concurrent caller won the insert with the same Stripe product (same idempotency key)
        return StripeProduct.objects.for_tenant(tenant).get(owner_kind=kind, catalog_key=key)


def ensure_stripe_price(tenant: Tenant, *, price: Price, gateway: StripeGateway) -> StripePrice:
    """The Stripe Price billing this catalog price, created on first use."""
    if price.tenant_id != tenant.pk:
        raise InvalidInput("Not a price of this tenant.")
    mapped = StripePrice.objects.for_tenant(tenant).filter(price=price).select_related("product").first()
    if mapped is not None:
        return mapped
    if price.state != GovernanceState.PUBLISHED:
        raise InvalidInput("Only published prices are sold through Stripe.", code=BillingErrorCode.PRICE_NOT_PUBLISHED)
    kind, key, name = _owner(price)
    product = _ensure_product(tenant, gateway, kind=kind, key=key, name=name)
    lookup_key = price_lookup_key(price)
    stripe_price_id = gateway.find_price(lookup_key) or gateway.create_price(
        product_id=product.stripe_product_id,
        unit_amount=price.amount,
        currency=price.currency,
        interval="year" if price.interval == "year" else "month",
        interval_count=1,
        lookup_key=lookup_key,
        metadata={
            "tierwise_price_id": str(price.pk),
            "tierwise_key": price.key,
            "tierwise_version": str(price.version),
        },
        idempotency_key=f"tw-{tenant.pk}-price-{price.pk}",
    )
    try:
        with transaction.atomic():
            return StripePrice.objects.create(
                tenant=tenant, price=price, product=product, stripe_price_id=stripe_price_id
            )
    except IntegrityError:
        return StripePrice.objects.for_tenant(tenant).get(price=price)


def catalog_price_for(tenant: Tenant, stripe_price_id: str) -> Price | None:
    mapped = (
        StripePrice.objects.for_tenant(tenant).filter(stripe_price_id=stripe_price_id).select_related("price").first()
    )
    return mapped.price if mapped is not None else None


@dataclass
class SyncReport:
    created: int = 0
    deactivated: int = 0
    renamed: int = 0


def sync_stripe_catalog(tenant: Tenant, *, gateway: StripeGateway) -> SyncReport:
    """Keep Stripe in step with the published catalog: new prices created, retired ones deactivated, names current."""
    report = SyncReport()
    published = Price.objects.for_tenant(tenant).filter(state=GovernanceState.PUBLISHED).select_related("tier", "addon")
    mapped_ids = set(StripePrice.objects.for_tenant(tenant).values_list("price_id", flat=True))
    for price in published:
        if price.pk not in mapped_ids:
            ensure_stripe_price(tenant, price=price, gateway=gateway)
            report.created += 1
    # Retired prices stop being sold, but existing subscriptions keep billing them (grandfathered).
    for mapping in (
        StripePrice.objects.for_tenant(tenant).filter(active=True).exclude(price__state=GovernanceState.PUBLISHED)
    ):
        gateway.set_price_active(mapping.stripe_price_id, active=False)
        StripePrice.objects.filter(pk=mapping.pk).update(active=False, synced_at=timezone.now())
        report.deactivated += 1
    # One Stripe product per tier/add-on key: it carries the name of the newest published version.
    for product in StripeProduct.objects.for_tenant(tenant):
        latest = (
            Price.objects.for_tenant(tenant)
            .filter(state=GovernanceState.PUBLISHED)
            .filter(
                **(
                    {"tier__key": product.catalog_key}
                    if product.owner_kind == "tier"
                    else {"addon__key": product.catalog_key}
                )
            )
            .select_related("tier", "addon")
            .order_by("-version")
            .first()
        )
        if latest is None:
            continue
        name = _owner(latest)[2]
        if name != product.name:
            gateway.rename_product(product.stripe_product_id, name=name)
            StripeProduct.objects.filter(pk=product.pk).update(name=name, synced_at=timezone.now())
            report.renamed += 1
    return report
