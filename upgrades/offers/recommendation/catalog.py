"""The catalog as the engine reads it: every published tier, add-on and bundle with prices and
entitlements, loaded in a fixed number of queries (prefetch), whatever the catalog's size.

Load it once per batch of offers (`load_catalog`) and pass it to `recommend`: the queries per
offer then do not grow with the catalog or with the number of accounts (bench/offers_bench.py).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field

from django.db.models import Prefetch

from accounts.models import Tenant
from catalog.models import AddOn, Bundle, Entitlement, Feature, GovernanceState, Meter, Price, Tier
from catalog.pricing import effective_monthly, total_for_seats
from catalog.selectors import addon_sold_with_tier_key
from upgrades.offers.recommendation.types import OFF, Ent, Ents

PUBLISHED = GovernanceState.PUBLISHED


@dataclass
class CatalogSnapshot:
    tiers: list[Tier]  # published (hidden ones too: bundles may use them), lowest rank first
    addons: list[AddOn]  # published
    bundles: list[Bundle]  # published, on a published tier
    features: dict[int, list[Feature]]  # product id -> features
    meters: dict[int, Meter]  # feature id -> its meter (the first by id when several)
    tier_rows: dict[int, list[Entitlement]] = field(default_factory=dict)
    addon_rows: dict[int, list[Entitlement]] = field(default_factory=dict)
    addon_by_key: dict[str, AddOn] = field(default_factory=dict)
    tier_by_id: dict[int, Tier] = field(default_factory=dict)


def _ents_prefetch() -> Prefetch:
    return Prefetch("entitlements", queryset=Entitlement.objects.select_related("feature"))


def load_catalog(tenant: Tenant) -> CatalogSnapshot:
    """Eleven queries, for any number of tiers, add-ons and bundles."""
    tiers = list(
        Tier.objects.for_tenant(tenant).filter(state=PUBLISHED).prefetch_related("prices", _ents_prefetch())
        .order_by("rank", "version", "id")
    )  # fmt: skip
    addons = list(
        AddOn.objects.for_tenant(tenant).filter(state=PUBLISHED)
        .prefetch_related("prices", _ents_prefetch(), "compatible_tiers").order_by("key", "-version")
    )  # fmt: skip
    bundles = list(
        Bundle.objects.for_tenant(tenant).filter(state=PUBLISHED, tier__state=PUBLISHED)
        .prefetch_related("addons").order_by("key", "-version")
    )  # fmt: skip
    features: dict[int, list[Feature]] = defaultdict(list)
    for feature in Feature.objects.for_tenant(tenant).order_by("sort_order", "id"):
        features[feature.product_id].append(feature)
    meters: dict[int, Meter] = {}
    for meter in Meter.objects.for_tenant(tenant).filter(feature__isnull=False).order_by("-id"):
        meters[meter.feature_id] = meter
    snap = CatalogSnapshot(tiers=tiers, addons=addons, bundles=bundles, features=dict(features), meters=meters)
    snap.tier_rows = {t.pk: list(t.entitlements.all()) for t in tiers}
    snap.addon_rows = {a.pk: list(a.entitlements.all()) for a in addons}
    for addon in addons:  # newest published version of each key
        snap.addon_by_key.setdefault(addon.key, addon)
    snap.tier_by_id = {t.pk: t for t in tiers}
    return snap


def combine(features: Iterable[Feature], rows: Iterable[Entitlement]) -> Ents:
    """What a tier plus add-ons allow, per feature (catalog.selectors' rule: on if any source turns it on;
    unlimited if any enabled source is; otherwise the enabled sources' limits add up)."""
    by_feature: dict[int, list[Entitlement]] = defaultdict(list)
    for row in rows:
        by_feature[row.feature_id].append(row)
    result: Ents = {}
    for feature in features:
        enabled = [r for r in by_feature.get(feature.pk, []) if r.enabled]
        if not enabled:
            result[feature.key] = OFF
        elif any(r.limit is None for r in enabled):
            result[feature.key] = Ent(True, None)
        else:
            result[feature.key] = Ent(True, sum(r.limit for r in enabled))  # type: ignore[misc]
    return result


def price_in(prices: Iterable[Price], interval: str, *, published_only: bool = True) -> Price | None:
    """The newest (published) price of `interval` among a tier's or add-on's prefetched prices."""
    found = [p for p in prices if p.interval == interval and (p.state == PUBLISHED or not published_only)]
    return max(found, key=lambda p: (p.version, p.pk)) if found else None


def monthly_amount(prices: Iterable[Price], *, seats: int, interval: str) -> int:
    """List price per month at `seats` (annual prices spread over twelve months, rounded once)."""
    total = sum(total_for_seats(amount=p.amount, seats=seats, per_seat=p.per_seat) for p in prices)
    return total if interval == "month" else effective_monthly(total)


def compatible(addon: AddOn, tier_key: str) -> bool:
    """catalog.selectors' one rule: by tier key (new versions keep their add-ons); naming no tier = every tier."""
    return addon_sold_with_tier_key(addon, tier_key)
