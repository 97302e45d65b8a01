"""Every option the account could move to: published tiers at or above its own, compatible add-ons on
its own plan, and bundles (tier + add-ons for an industry or role) whose tier is published.

Built from one `CatalogSnapshot` (no queries here), each with its entitlements combined and its
changes against the exact holding. Whether an option is an *upgrade* (nothing taken away, something
added) is `types.is_upgrade`; the chooser only ever offers those.
"""

from __future__ import annotations

from catalog.models import AddOn, Bundle, Price, Tier
from upgrades.offers.recommendation.catalog import CatalogSnapshot, combine, compatible, monthly_amount, price_in
from upgrades.offers.recommendation.holding import Holding
from upgrades.offers.recommendation.types import Candidate, changes_between


def _carried(holding: Holding, catalog: CatalogSnapshot, tier: Tier, exclude: set[str]) -> list[AddOn]:
    """The held add-ons that go along to `tier`: the published version of each, if compatible."""
    out = []
    for held in holding.addons:
        addon = catalog.addon_by_key.get(held.key)
        if addon is not None and held.key not in exclude and compatible(addon, tier.key):
            out.append(addon)
    return out


def _tier_price(holding: Holding, tier: Tier) -> Price | None:
    """The held price version when the tier row is the one held (grandfathered price kept), else today's."""
    interval = holding.license.interval
    if tier.pk == holding.tier.pk and holding.price is not None and holding.price.interval == interval:
        return holding.price
    return price_in(tier.prices.all(), interval)


def _build(
    holding: Holding,
    catalog: CatalogSnapshot,
    *,
    kind: str,
    key: str,
    tier: Tier,
    addons: list[AddOn],
    bundle: Bundle | None = None,
) -> Candidate | None:
    interval, seats = holding.license.interval, holding.license.seats
    tier_price = _tier_price(holding, tier)
    if tier_price is None:
        return None
    addon_prices = []
    for addon in addons:
        price = price_in(addon.prices.all(), interval)
        if price is None:
            return None
        addon_prices.append(price)
    if tier.pk not in catalog.tier_rows:
        return None  # only published tiers are offered (a retired one, or a bundle's retired tier, never)
    rows = list(catalog.tier_rows[tier.pk])
    for addon in addons:
        rows += catalog.addon_rows.get(addon.pk, [])
    ents = combine(catalog.features.get(tier.product_id, []), rows)
    return Candidate(
        kind=kind,
        key=key,
        tier=tier,
        addons=tuple(addons),
        bundle=bundle,
        tier_price=tier_price,
        addon_prices=tuple(addon_prices),
        changes=changes_between(holding.entitlements, ents),
        monthly_amount=monthly_amount([tier_price, *addon_prices], seats=seats, interval=interval),
        entitlements=ents,
        audience=(bundle.audience_kind, bundle.audience) if bundle is not None else None,
    )


def build_candidates(holding: Holding, catalog: CatalogSnapshot) -> list[Candidate]:
    held, product_id = holding.tier, holding.tier.product_id
    held_keys = {a.key for a in holding.addons}
    out: list[Candidate | None] = []
    for tier in catalog.tiers:
        if tier.product_id != product_id or not tier.is_public or tier.rank < held.rank or tier.pk == held.pk:
            continue
        out.append(_build(holding, catalog, kind="tier", key=tier.key, tier=tier,
                          addons=_carried(holding, catalog, tier, set())))  # fmt: skip
    if held.pk in catalog.tier_by_id:  # add-ons go on the held plan only while its tier is published
        base = catalog.tier_by_id[held.pk]
        for addon in catalog.addon_by_key.values():
            if addon.product_id != product_id or addon.key in held_keys or not compatible(addon, held.key):
                continue
            out.append(_build(holding, catalog, kind="addon", key=addon.key, tier=base,
                              addons=[*_carried(holding, catalog, base, set()), addon]))  # fmt: skip
    seen_bundles: set[str] = set()
    for bundle in catalog.bundles:
        bundle_tier = catalog.tier_by_id.get(bundle.tier_id)
        if bundle.key in seen_bundles or bundle_tier is None:
            continue
        if bundle_tier.product_id != product_id or bundle_tier.rank < held.rank:
            continue
        seen_bundles.add(bundle.key)
        own = [catalog.addon_by_key.get(a.key) for a in bundle.addons.all()]
        if any(a is None for a in own):
            continue  # an add-on of the bundle is no longer published
        own_keys = {a.key for a in own if a is not None}
        addons = [a for a in own if a is not None] + _carried(holding, catalog, bundle_tier, own_keys)
        out.append(
            _build(holding, catalog, kind="bundle", key=bundle.key, tier=bundle_tier, addons=addons, bundle=bundle)
        )
    return [c for c in out if c is not None]
