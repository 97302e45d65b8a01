"""Reads of the catalog: the published pricing table, effective entitlements, upgrade hints.

Every read starts from `for_tenant(tenant)` and loads what its callers touch in a fixed
number of queries (prefetch, never a query per tier or feature).

Add-on compatibility is matched by tier *key*, not row: an add-on published as
"compatible with Team" stays compatible when Team v2 replaces v1, without editing the
(immutable) published add-on. An add-on that names no compatible tiers is sold with every
tier (`addon_sold_with`: the one rule the pricing table, upgrade hints, bundles and plan
changes in the admin and the API all follow).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from decimal import Decimal

from django.db.models import Prefetch, Q, QuerySet

from accounts.models import Tenant
from catalog.errors import NotFound
from catalog.models import (
    AddOn,
    Bundle,
    DiscountPolicy,
    Enforcement,
    Entitlement,
    Feature,
    FeatureKind,
    GovernanceState,
    Interval,
    Price,
    Product,
    Tier,
)
from catalog.pricing import Saving, annual_saving, effective_monthly
from catalog.validation import LadderConflict, ladder_conflicts

PUBLISHED = GovernanceState.PUBLISHED
OPEN_STATES = (GovernanceState.DRAFT, GovernanceState.AWAITING_APPROVAL, GovernanceState.PUBLISHED)


def _entitlements_prefetch() -> Prefetch:
    return Prefetch("entitlements", queryset=Entitlement.objects.select_related("feature"))


def list_published_tiers(
    tenant: Tenant, *, include_hidden: bool = False, product: Product | None = None
) -> QuerySet[Tier]:
    """Published tiers, lowest rank first, with prices and entitlements (and their features) loaded."""
    qs = (
        Tier.objects.for_tenant(tenant)
        .filter(state=PUBLISHED)
        .select_related("product")
        .prefetch_related("prices", _entitlements_prefetch())
        .order_by("product_id", "rank", "version")
    )
    if not include_hidden:
        qs = qs.filter(is_public=True)
    if product is not None:
        qs = qs.filter(product=product)
    return qs


def get_tier_for_tenant(tenant: Tenant, tier_id: int) -> Tier:
    """Any version of a tier of this tenant (licences may hold retired ones). Foreign ids are NotFound."""
    tier = (
        Tier.objects.for_tenant(tenant)
        .select_related("product")
        .prefetch_related("prices", _entitlements_prefetch())
        .filter(pk=tier_id)
        .first()
    )
    if tier is None:
        raise NotFound(f"No tier {tier_id}.")
    return tier


def get_published_tier(tenant: Tenant, key: str) -> Tier:
    tier = list_published_tiers(tenant, include_hidden=True).filter(key=key).first()
    if tier is None:
        raise NotFound(f"No published tier {key!r}.")
    return tier


def get_default_tier(tenant: Tenant, *, product: Product | None = None) -> Tier | None:
    """The published free tier accounts without a licence are on (lowest rank if, oddly, several)."""
    return list_published_tiers(tenant, include_hidden=True, product=product).filter(is_free=True).first()


def list_published_addons(tenant: Tenant) -> QuerySet[AddOn]:
    return (
        AddOn.objects.for_tenant(tenant)
        .filter(state=PUBLISHED)
        .prefetch_related("prices", _entitlements_prefetch(), "compatible_tiers")
        .order_by("name", "id")
    )


def list_published_bundles(tenant: Tenant) -> QuerySet[Bundle]:
    """Bundles customers may see: published, on a published tier (a bundle on a retired tier is hidden)."""
    return (
        Bundle.objects.for_tenant(tenant)
        .filter(state=PUBLISHED, tier__state=PUBLISHED)
        .select_related("tier")
        .prefetch_related("addons")
        .order_by("tier__rank", "name")
    )


def get_discount_policy(tenant: Tenant) -> DiscountPolicy | None:
    """The published discount policy (the most recently published one if a tenant keeps several keys)."""
    return DiscountPolicy.objects.for_tenant(tenant).filter(state=PUBLISHED).order_by("-published_at", "-id").first()


def get_governed_for_tenant(tenant: Tenant, model: type, obj_id: int):
    obj = model.objects.for_tenant(tenant).filter(pk=obj_id).first()
    if obj is None:
        raise NotFound(f"No {model._meta.verbose_name} {obj_id}.")
    return obj


def tier_seat_limit(tier: Tier) -> int | None:
    """The most seats the tier allows: the limit of its enabled seats entitlement(s). None: no seat limit
    (no seats feature, or one without a limit). Reads `tier.entitlements` (prefetch it for many tiers)."""
    prefetched = "entitlements" in getattr(tier, "_prefetched_objects_cache", {})
    rows = tier.entitlements.all() if prefetched else tier.entitlements.select_related("feature")
    limits = [e.limit for e in rows if e.feature.kind == FeatureKind.SEATS and e.enabled]
    if not limits or any(limit is None for limit in limits):
        return None
    return max(limits)


def addon_sold_with(addon: AddOn, tier: Tier) -> bool:
    """Is the add-on sold with this tier? One naming no compatible tiers is sold with every tier; one naming
    tiers only with those, matched by key (so new tier versions keep it). Reads `addon.compatible_tiers`."""
    return addon_sold_with_tier_key(addon, tier.key)


def addon_sold_with_tier_key(addon: AddOn, tier_key: str) -> bool:
    """`addon_sold_with` for a tier known by key (every version of a tier shares its add-ons)."""
    keys = {t.key for t in addon.compatible_tiers.all()}
    return not keys or tier_key in keys


def compatible_addons(tier: Tier, addons: Iterable[AddOn]) -> list[AddOn]:
    """The add-ons offered with `tier` (see `addon_sold_with`)."""
    return [a for a in addons if addon_sold_with(a, tier)]


# --- Effective entitlements ---------------------------------------------------------------


@dataclass(frozen=True)
class FeatureEntitlement:
    """What a set of grants (a tier plus add-ons) allows for one feature.

    Grants combine generously: enabled if any source enables it; unlimited if any
    source is; otherwise the limits add up (an add-on is a pack on top of the tier).
    Enforcement and the soft threshold come from the tier when it grants the feature.
    """

    feature_key: str
    feature_name: str
    kind: str
    unit: str
    enabled: bool
    limit: int | None
    enforcement: str
    soft_limit_percent: int
    overage_note: str
    sources: tuple[str, ...] = ()

    def allows(self, quantity: int = 1) -> bool:
        return self.enabled and (self.limit is None or quantity <= self.limit)


def _combine(feature: Feature, grants: Sequence[tuple[str, Entitlement]]) -> FeatureEntitlement:
    enabled = [(label, e) for label, e in grants if e.enabled]
    if not enabled:
        return FeatureEntitlement(
            feature.key, feature.name, feature.kind, feature.unit, False, 0, Enforcement.HARD, 80, "", ()
        )
    limit = None if any(e.limit is None for _, e in enabled) else sum(e.limit for _, e in enabled)
    lead = enabled[0][1]
    return FeatureEntitlement(
        feature_key=feature.key,
        feature_name=feature.name,
        kind=feature.kind,
        unit=feature.unit,
        enabled=True,
        limit=limit,
        enforcement=lead.enforcement,
        soft_limit_percent=lead.soft_limit_percent,
        overage_note=lead.overage_note,
        sources=tuple(label for label, _ in enabled),
    )


def entitlements_for(
    tenant: Tenant, *, tier: Tier | None = None, addons: Iterable[AddOn] = ()
) -> dict[str, FeatureEntitlement]:
    """Every feature of the tier's product (or the add-ons' products) -> what these grants allow.

    Works for any version, retired ones included (grandfathered licences). Two queries.
    """
    addons = list(addons)
    for item in [tier, *addons]:
        if item is not None and item.tenant_id != tenant.pk:
            raise NotFound("No such tier or add-on.")
    product_ids = {item.product_id for item in [tier, *addons] if item is not None}
    if not product_ids:
        return {}
    features = list(Feature.objects.for_tenant(tenant).filter(product_id__in=product_ids))
    condition = Q(addon__in=addons) if addons else Q(pk__in=[])
    if tier is not None:
        condition |= Q(tier=tier)
    rows = list(Entitlement.objects.for_tenant(tenant).filter(condition))
    by_feature: dict[int, list[tuple[int, str, Entitlement]]] = defaultdict(list)
    addon_names = {a.pk: a.name for a in addons}
    for row in rows:
        order, label = (0, tier.name) if row.tier_id and tier is not None else (1, addon_names.get(row.addon_id, ""))
        by_feature[row.feature_id].append((order, label, row))
    result = {}
    for feature in features:
        grants = [(label, e) for _, label, e in sorted(by_feature[feature.pk], key=lambda g: (g[0], g[2].pk))]
        result[feature.key] = _combine(feature, grants)
    return result


def _addon_monthly_cost(addon: AddOn) -> tuple[int, int]:
    amounts = {p.interval: p.amount for p in addon.prices.all()}
    monthly = amounts.get(Interval.MONTH)
    if monthly is None and Interval.YEAR in amounts:
        monthly = effective_monthly(amounts[Interval.YEAR])
    return (monthly if monthly is not None else 0, addon.pk)


def lowest_tier_allowing(
    tenant: Tenant,
    feature: Feature | str,
    quantity: int = 1,
    *,
    above_rank: int | None = None,
    current_tier: Tier | None = None,
) -> Tier | AddOn | None:
    """What to suggest when `quantity` of `feature` is denied: for upgrade hints.

    Without `current_tier`: the lowest-ranked published public tier whose entitlement
    allows it, else the cheapest published add-on that does. With `current_tier`: first
    the cheapest published add-on compatible with it that, on top of it, allows the
    quantity (the smallest step), then the lowest tier ranked above it. None when
    nothing in the catalog does. `above_rank` skips tiers at or below a rank.
    """
    if isinstance(feature, str):
        found = Feature.objects.for_tenant(tenant).filter(key=feature).first()
        if found is None:
            return None
        feature = found
    elif feature.tenant_id != tenant.pk:
        return None
    if current_tier is not None:
        if current_tier.tenant_id != tenant.pk:
            raise NotFound("No such tier.")
        above_rank = max(above_rank or 0, current_tier.rank)
    addon_grants = list(
        Entitlement.objects.for_tenant(tenant)
        .filter(feature=feature, addon__state=PUBLISHED)
        .select_related("addon")
        .prefetch_related("addon__prices", "addon__compatible_tiers")
    )
    if current_tier is not None:
        base = Entitlement.objects.for_tenant(tenant).filter(tier=current_tier, feature=feature).first()
        stacked = []
        for grant in addon_grants:
            if not addon_sold_with(grant.addon, current_tier):
                continue
            sources = [("tier", base)] if base is not None else []
            if _combine(feature, [*sources, ("addon", grant)]).allows(quantity):
                stacked.append(grant.addon)
        if stacked:
            return min(stacked, key=_addon_monthly_cost)
    tier_grants = (
        Entitlement.objects.for_tenant(tenant)
        .filter(feature=feature, tier__state=PUBLISHED, tier__is_public=True)
        .select_related("tier")
        .order_by("tier__rank", "tier__version")
    )
    if above_rank is not None:
        tier_grants = tier_grants.filter(tier__rank__gt=above_rank)
    for grant in tier_grants:
        if grant.allows(quantity):
            return grant.tier
    if current_tier is not None:
        return None  # an add-on that doesn't fit the current tier is no answer for this account
    candidates = [g.addon for g in addon_grants if g.allows(quantity)]
    return min(candidates, key=_addon_monthly_cost) if candidates else None


# --- The pricing table --------------------------------------------------------------------


@dataclass(frozen=True)
class FeatureRow:
    feature: Feature
    entitlement: Entitlement | None

    @property
    def included(self) -> bool:
        return self.entitlement is not None and self.entitlement.enabled

    @property
    def limit(self) -> int | None:
        return self.entitlement.limit if self.included else None


@dataclass(frozen=True)
class PricePair:
    """A tier's or add-on's monthly and annual prices, with the numbers computed from them."""

    monthly: Price | None
    annual: Price | None

    @property
    def saving(self) -> Saving | None:
        if self.monthly is None or self.annual is None or self.monthly.per_seat != self.annual.per_seat:
            return None
        return annual_saving(monthly_amount=self.monthly.amount, annual_amount=self.annual.amount)

    @property
    def effective_monthly(self) -> int | None:
        return effective_monthly(self.annual.amount) if self.annual is not None else None

    @property
    def per_seat(self) -> bool:
        price = self.monthly or self.annual
        return bool(price and price.per_seat)

    @property
    def is_free(self) -> bool:
        prices = [p for p in (self.monthly, self.annual) if p is not None]
        return all(p.amount == 0 for p in prices)


def price_pair(prices: Iterable[Price]) -> PricePair:
    by_interval = {p.interval: p for p in prices}
    return PricePair(monthly=by_interval.get(Interval.MONTH), annual=by_interval.get(Interval.YEAR))


@dataclass(frozen=True)
class TierCard:
    tier: Tier
    prices: PricePair
    features: list[FeatureRow]
    addons: list[AddOn]
    bundles: list[Bundle]
    is_anchor: bool


@dataclass(frozen=True)
class AddOnCard:
    addon: AddOn
    prices: PricePair
    features: list[FeatureRow]
    tier_keys: list[str]
    tier_names: list[str] = field(default_factory=list)  # names of the table's tiers it works with, by rank


@dataclass
class PricingTable:
    product: Product
    currency: str
    features: list[Feature]
    tiers: list[TierCard] = field(default_factory=list)
    addons: list[AddOnCard] = field(default_factory=list)
    bundles: list[Bundle] = field(default_factory=list)

    @property
    def best_saving_percent(self) -> Decimal | None:
        savings = [c.prices.saving.percent for c in self.tiers if c.prices.saving and c.prices.saving.amount > 0]
        return max(savings) if savings else None


def _newest_per_key(rows: Iterable, *, include_pending: bool) -> list:
    """Published rows; with `include_pending`, the newest open version of each key instead."""
    rows = list(rows)
    if not include_pending:
        return [r for r in rows if r.state == PUBLISHED]
    newest: dict[str, object] = {}
    for row in rows:
        if row.key not in newest or row.version > newest[row.key].version:
            newest[row.key] = row
    return list(newest.values())


def build_pricing_tables(
    tenant: Tenant, *, include_pending: bool = False, include_hidden: bool = False
) -> list[PricingTable]:
    """The pricing table per product exactly as customers see it (published, public rows).

    `include_pending` shows what it would look like if every open draft were published
    (for reviewers); nothing else changes. A fixed number of queries.
    """
    states = OPEN_STATES if include_pending else (PUBLISHED,)
    tier_rows = (
        Tier.objects.for_tenant(tenant)
        .filter(state__in=states)
        .select_related("product")
        .prefetch_related("prices", "entitlements")
        .order_by("rank", "version")
    )
    if not include_hidden:
        tier_rows = tier_rows.filter(is_public=True)
    tiers = sorted(_newest_per_key(tier_rows, include_pending=include_pending), key=lambda t: (t.rank, t.pk))
    addon_rows = (
        AddOn.objects.for_tenant(tenant)
        .filter(state__in=states)
        .prefetch_related("prices", "entitlements", "compatible_tiers")
        .order_by("name", "id")
    )
    addons = _newest_per_key(addon_rows, include_pending=include_pending)
    bundle_rows = (
        Bundle.objects.for_tenant(tenant)
        .filter(state__in=states)
        .select_related("tier")
        .prefetch_related("addons")
        .order_by("name", "id")
    )
    bundles = _newest_per_key(bundle_rows, include_pending=include_pending)
    features = list(Feature.objects.for_tenant(tenant).order_by("sort_order", "name"))

    tables: dict[int, PricingTable] = {}
    for tier in tiers:
        if tier.product_id not in tables:
            tables[tier.product_id] = PricingTable(
                product=tier.product,
                currency=tier.currency,
                features=[f for f in features if f.product_id == tier.product_id],
            )
    anchors: dict[int, int] = {}
    for tier in tiers:
        if tier.is_anchor:
            anchors[tier.product_id] = tier.pk  # highest rank wins: tiers are sorted by rank
    for tier in tiers:
        table = tables[tier.product_id]
        grants = {e.feature_id: e for e in tier.entitlements.all()}
        table.tiers.append(
            TierCard(
                tier=tier,
                prices=price_pair(tier.prices.all()),
                features=[FeatureRow(f, grants.get(f.pk)) for f in table.features],
                addons=compatible_addons(tier, addons),
                # The exact tier row: a bundle built on a retired version must not borrow its successor's card.
                bundles=[b for b in bundles if b.tier_id == tier.pk],
                is_anchor=anchors.get(tier.product_id) == tier.pk,
            )
        )
    for addon in addons:
        table = tables.get(addon.product_id)
        if table is None:
            continue
        grants = {e.feature_id: e for e in addon.entitlements.all()}
        table.addons.append(
            AddOnCard(
                addon=addon,
                prices=price_pair(addon.prices.all()),
                features=[FeatureRow(f, grants[f.pk]) for f in table.features if f.pk in grants],
                # Named tiers, or every tier of the table when it names none: callers never need the convention.
                tier_keys=sorted({t.key for t in addon.compatible_tiers.all()} or {c.tier.key for c in table.tiers}),
                tier_names=[c.tier.name for c in table.tiers if addon_sold_with(addon, c.tier)],
            )
        )
    shown_tiers = {t.pk: t.product_id for t in tiers}
    for bundle in bundles:
        product_id = shown_tiers.get(bundle.tier_id)  # a bundle on a retired (or hidden) tier is not shown
        if product_id is not None:
            tables[product_id].bundles.append(bundle)
    return list(tables.values())


# --- The entitlement matrix ----------------------------------------------------------------


@dataclass
class EntitlementMatrix:
    product: Product
    features: list[Feature]
    tiers: list[Tier]  # non-retired versions, lowest rank first
    grants: dict[int, dict[int, Entitlement]]  # tier id -> feature id -> entitlement
    conflicts: list[LadderConflict]

    def cell(self, tier: Tier, feature: Feature) -> Entitlement | None:
        return self.grants.get(tier.pk, {}).get(feature.pk)

    def flagged(self) -> set[tuple[int, int]]:
        return {(c.higher.pk, c.feature.pk) for c in self.conflicts}


def list_products(tenant: Tenant) -> QuerySet[Product]:
    return Product.objects.for_tenant(tenant).order_by("name", "id")


def entitlement_matrix(tenant: Tenant, *, product: Product) -> EntitlementMatrix:
    """Features x tiers of one product: drafts, pending and published versions side by side, with
    every place where a higher tier grants less than a lower one."""
    if product.tenant_id != tenant.pk:
        raise NotFound("No such product.")
    features = list(Feature.objects.for_tenant(tenant).filter(product=product).order_by("sort_order", "name"))
    tiers = list(
        Tier.objects.for_tenant(tenant)
        .filter(product=product, state__in=OPEN_STATES)
        .prefetch_related("entitlements")
        .order_by("rank", "key", "version")
    )
    grants = {t.pk: {e.feature_id: e for e in t.entitlements.all()} for t in tiers}
    # Compare what the ladder will be: per key, the newest open version.
    newest = _newest_per_key(tiers, include_pending=True)
    conflicts = ladder_conflicts(newest, entitlements=grants, features={f.pk: f for f in features})
    return EntitlementMatrix(product=product, features=features, tiers=tiers, grants=grants, conflicts=conflicts)
