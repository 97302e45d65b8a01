"""What the account holds, exactly: the tier version, the price version (a retired, cheaper one
counts: grandfathering), seats, add-ons and the entitlements of those exact rows.

Every candidate is compared with this holding (types.changes_between), never with today's
catalog, so an account on a retired version is told exactly what changes for it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from accounts.models import Tenant
from billing.models import License
from catalog.models import AddOn, Entitlement, GovernanceState, Price, Tier
from upgrades.offers.recommendation.catalog import CatalogSnapshot, combine, monthly_amount, price_in
from upgrades.offers.recommendation.prefetch import Prefetched
from upgrades.offers.recommendation.types import Ents


@dataclass(frozen=True)
class Holding:
    license: License
    tier: Tier
    price: Price | None
    addons: tuple[AddOn, ...]
    addon_prices: tuple[Price, ...]
    entitlements: Ents
    monthly_amount: int

    @property
    def grandfathered(self) -> bool:
        retired = [self.tier.state != GovernanceState.PUBLISHED]
        if self.price is not None:
            retired.append(self.price.state != GovernanceState.PUBLISHED)
        return any(retired)

    def as_dict(self) -> dict[str, Any]:
        lic, price = self.license, self.price
        return {
            "license": lic.pk,
            "tier": self.tier.key,
            "tier_name": self.tier.name,
            "tier_version": self.tier.version,
            "tier_state": self.tier.state,
            "price": None
            if price is None
            else {
                "id": price.pk,
                "key": price.key,
                "version": price.version,
                "amount": price.amount,
                "interval": price.interval,
                "currency": price.currency,
                "per_seat": price.per_seat,
                "state": price.state,
            },
            "interval": lic.interval,
            "seats": lic.seats,
            "addons": [{"key": a.key, "version": a.version, "name": a.name} for a in self.addons],
            "addon_price_ids": [p.pk for p in self.addon_prices],
            "monthly_amount": self.monthly_amount,
            "currency": lic.currency,
            "grandfathered": self.grandfathered,
            "entitlements": {k: e.as_dict() for k, e in self.entitlements.items()},
        }


def load_holding(
    tenant: Tenant, *, license: License, catalog: CatalogSnapshot, prefetched: Prefetched | None = None
) -> Holding:
    """The licence with its tier and price version, its add-ons with their prices, and the entitlement
    rows of exactly those versions: from `prefetched` (a batch's reads) or four queries."""
    if license.pk is None:  # no licence row: the default free tier (recommendation/free.py), nothing else held
        return _free_holding(tenant, license=license, catalog=catalog, prefetched=prefetched)
    lic = prefetched.licences.get(license.account_id) if prefetched is not None else None
    if lic is None or lic.pk != license.pk or lic.tier_id not in prefetched.tier_rows:  # type: ignore[union-attr]
        lic = (
            License.objects.for_tenant(tenant).select_related("tier", "price")
            .prefetch_related("addons__prices").get(pk=license.pk)
        )  # fmt: skip
        prefetched = None
    addons = tuple(sorted(lic.addons.all(), key=lambda a: (a.key, a.pk)))
    if prefetched is not None:
        rows = list(prefetched.tier_rows[lic.tier_id])
        for addon in addons:
            rows += prefetched.addon_rows.get(addon.pk, [])
    else:
        rows = list(Entitlement.objects.for_tenant(tenant).filter(tier=lic.tier))
        if addons:
            rows += list(Entitlement.objects.for_tenant(tenant).filter(addon__in=addons))
    ents = combine(catalog.features.get(lic.tier.product_id, []), rows)
    addon_prices = []
    for addon in addons:
        price = price_in(addon.prices.all(), lic.interval) or price_in(
            addon.prices.all(), lic.interval, published_only=False
        )
        if price is not None:
            addon_prices.append(price)
    held_prices = ([lic.price] if lic.price is not None else []) + addon_prices
    return Holding(
        license=lic,
        tier=lic.tier,
        price=lic.price,
        addons=addons,
        addon_prices=tuple(addon_prices),
        entitlements=ents,
        monthly_amount=monthly_amount(held_prices, seats=lic.seats, interval=lic.interval),
    )


def _free_holding(
    tenant: Tenant, *, license: License, catalog: CatalogSnapshot, prefetched: Prefetched | None
) -> Holding:
    tier = license.tier
    if prefetched is not None and tier.pk in prefetched.tier_rows:
        rows = list(prefetched.tier_rows[tier.pk])
    else:
        rows = list(Entitlement.objects.for_tenant(tenant).filter(tier=tier))
    ents = combine(catalog.features.get(tier.product_id, []), rows)
    return Holding(license=license, tier=tier, price=None, addons=(), addon_prices=(), entitlements=ents,
                   monthly_amount=0)  # fmt: skip
