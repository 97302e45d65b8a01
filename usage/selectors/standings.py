"""Staff pages: every account's standing against its limits, built set-based."""

from __future__ import annotations

import datetime
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from django.db.models import Count, Max, Q, Sum
from django.db.models.fields.json import KeyTextTransform
from django.utils import timezone

from accounts.models import CustomerAccount, Tenant
from billing.models import License, LicenseGrant
from catalog import selectors as catalog_selectors
from catalog.models import AddOn, Aggregation, Entitlement, Feature, Meter, Tier
from usage.models import FEATURE_GATE_HIT_EVENT, Event, UsageDistinctValue, UsageRollup
from usage.selectors.entitlements import feature_rules, overlay_grant_tiers
from usage.selectors.states import (
    ENTITLED_STATUSES,
    EntitlementState,
    FeatureState,
    MeterUsage,
    Plan,
    _feature_state,
)
from usage.selectors.windows import meter_window

# The admin's account list shows every account's most-pressured feature. Calling
# get_account_entitlements per row would cost a dozen queries per account, so the plans and
# usage of all the listed accounts are built set-based here: a fixed number of queries
# whatever the number of accounts. The answers must equal the per-account ones (the API's):
# the catalog is combined with catalog's own `_combine`, states come from `_feature_state`, and
# the tests compare both paths account by account.

GATE_HIT_LOOKBACK = datetime.timedelta(days=30)


class Standing(StrEnum):
    """How an account stands against its limits, worst first (the admin's filter)."""

    HARD_LIMIT = "hard_limit"
    SOFT_LIMIT = "soft_limit"
    OK = "ok"


@dataclass(frozen=True)
class AccountStanding:
    account_id: int
    plan: Plan
    states: tuple[FeatureState, ...]
    top: FeatureState | None  # the limited feature closest to (or furthest past) its limit
    top_percent: int | None
    standing: str
    gate_hits: int  # feature-gate hits in the last GATE_HIT_LOOKBACK
    gate_hit_features: tuple[str, ...]  # their features' names, most hit first


class _CatalogSnapshot:
    """The catalog rows some plans need, loaded in two queries; `entitlements_for` mirrors
    catalog.selectors.entitlements_for over them."""

    def __init__(self, tenant: Tenant, *, tiers: Iterable[Tier], addons: Iterable[AddOn]) -> None:
        tier_ids = {t.pk for t in tiers}
        addon_ids = {a.pk for a in addons}
        product_ids = {t.product_id for t in tiers} | {a.product_id for a in addons}
        self.features: list[Feature] = list(Feature.objects.for_tenant(tenant).filter(product_id__in=product_ids))
        self.rows: dict[tuple[str, int], list[Any]] = {}
        for row in Entitlement.objects.for_tenant(tenant).filter(Q(tier_id__in=tier_ids) | Q(addon_id__in=addon_ids)):
            owner = ("tier", row.tier_id) if row.tier_id else ("addon", row.addon_id)
            self.rows.setdefault(owner, []).append(row)

    def entitlements_for(
        self, *, tier: Tier | None, addons: Sequence[AddOn]
    ) -> dict[str, catalog_selectors.FeatureEntitlement]:
        product_ids = {item.product_id for item in [tier, *addons] if item is not None}
        if not product_ids:
            return {}
        by_feature: dict[int, list[tuple[int, str, Any]]] = {}
        if tier is not None:
            for row in self.rows.get(("tier", tier.pk), []):
                by_feature.setdefault(row.feature_id, []).append((0, tier.name, row))
        for addon in {a.pk: a for a in addons}.values():
            for row in self.rows.get(("addon", addon.pk), []):
                by_feature.setdefault(row.feature_id, []).append((1, addon.name, row))
        result = {}
        for feature in self.features:
            if feature.product_id not in product_ids:
                continue
            grants = sorted(by_feature.get(feature.pk, []), key=lambda g: (g[0], g[2].pk))
            result[feature.key] = catalog_selectors._combine(feature, [(label, e) for _, label, e in grants])
        return result


def plans_for_accounts(
    tenant: Tenant, *, account_ids: Sequence[int], now: datetime.datetime | None = None
) -> dict[int, Plan]:
    """compute_plan for many accounts in a fixed number of queries (same rules, same answers)."""
    now = now or timezone.now()
    ids = list(account_ids)
    licences = {
        lic.account_id: lic
        for lic in License.objects.for_tenant(tenant)
        .filter(account_id__in=ids)
        .select_related("tier")
        .prefetch_related("addons")
    }
    grants_by_account: dict[int, list[LicenseGrant]] = {}
    for grant in (
        LicenseGrant.objects.for_tenant(tenant)
        .filter(account_id__in=ids, ends_at__gt=now)
        .filter(Q(ended_at__isnull=True) | Q(ended_at__gt=now))
        .select_related("tier", "addon")
        .order_by("id")
    ):
        if grant.is_active_at(now):
            grants_by_account.setdefault(grant.account_id, []).append(grant)
    default_tier = catalog_selectors.get_default_tier(tenant)

    tiers: dict[int, Tier] = {default_tier.pk: default_tier} if default_tier else {}
    addons: dict[int, AddOn] = {}
    for lic in licences.values():
        if lic.status in ENTITLED_STATUSES:
            tiers[lic.tier_id] = lic.tier
            addons.update({a.pk: a for a in lic.addons.all()})
    for grants in grants_by_account.values():
        for grant in grants:
            if grant.tier_id:
                tiers[grant.tier_id] = grant.tier
            if grant.addon_id:
                addons[grant.addon_id] = grant.addon
    snapshot = _CatalogSnapshot(tenant, tiers=tiers.values(), addons=addons.values())
    meters: dict[int, Meter] = {}
    for meter in Meter.objects.for_tenant(tenant).filter(feature__isnull=False).order_by("id"):
        meters.setdefault(meter.feature_id, meter)
    feature_ids = {f.key: f.pk for f in snapshot.features}

    plans: dict[int, Plan] = {}
    for account_id in ids:
        license_ = licences.get(account_id)
        active_grants = grants_by_account.get(account_id, [])
        tier: Tier | None = None
        plan_addons: list[AddOn] = []
        seats = billing_period = None
        if license_ is not None and license_.status in ENTITLED_STATUSES:
            tier = license_.tier
            plan_addons = list(license_.addons.all())
            seats = license_.seats
            billing_period = (license_.current_period_start, license_.current_period_end)
        if tier is None:
            tier = default_tier
        plan_addons += [g.addon for g in active_grants if g.addon_id and g.addon_id not in {a.pk for a in plan_addons}]
        combined = snapshot.entitlements_for(tier=tier, addons=plan_addons) if (tier or plan_addons) else {}
        overlay_grant_tiers(
            combined,
            grants=active_grants,
            tier=tier,
            entitlements_for=lambda t, addons=plan_addons: snapshot.entitlements_for(tier=t, addons=addons),
        )
        features = feature_rules(combined, meters=meters, feature_ids=feature_ids)
        plans[account_id] = Plan(
            account_id=account_id,
            tier_id=tier.pk if tier else None,
            tier_key=tier.key if tier else None,
            tier_name=tier.name if tier else None,
            tier_rank=tier.rank if tier else None,
            addon_keys=tuple(sorted(a.key for a in plan_addons)),
            grant_labels=tuple(str(g) for g in active_grants),
            seats=seats,
            billing_period=billing_period,
            features=features,
            valid_until=now,  # not cached: staff pages recompute
        )
    return plans


def usage_for_plans(
    tenant: Tenant, *, plans: Iterable[Plan], now: datetime.datetime | None = None
) -> dict[int, dict[int, MeterUsage]]:
    """compute_usage for many accounts in two queries (additive meters, unique counts)."""
    now = now or timezone.now()
    windows: dict[tuple[int, int], tuple[str, datetime.datetime, datetime.datetime]] = {}
    additive: dict[tuple[int, datetime.date, datetime.date], list[int]] = {}
    unique: dict[tuple[int, datetime.date, datetime.date], list[int]] = {}
    for plan in plans:
        for rule in plan.features.values():
            if rule.meter_id is None or (plan.account_id, rule.meter_id) in windows:
                continue
            first, after, start, end = meter_window(
                window=rule.window, window_days=rule.window_days, billing_period=plan.billing_period, now=now
            )
            windows[(plan.account_id, rule.meter_id)] = (rule.aggregation, start, end)
            group = unique if rule.aggregation == Aggregation.UNIQUE_COUNT else additive
            group.setdefault((rule.meter_id, first, after), []).append(plan.account_id)

    def _where(groups: dict[tuple[int, datetime.date, datetime.date], list[int]]) -> Q:
        where = Q()
        for (meter_id, first, after), account_ids in groups.items():
            where |= Q(meter_id=meter_id, day__gte=first, day__lt=after, account_id__in=account_ids)
        return where

    found: dict[tuple[int, int], int] = {}
    if additive:
        rows = (
            UsageRollup.objects.for_tenant(tenant)
            .filter(_where(additive))
            .values("account_id", "meter_id")
            .annotate(total=Sum("value"), peak=Max("value"))
        )
        for row in rows:
            aggregation = windows[(row["account_id"], row["meter_id"])][0]
            found[(row["account_id"], row["meter_id"])] = (
                row["peak"] if aggregation == Aggregation.MAX else row["total"]
            ) or 0
    if unique:
        rows = (
            UsageDistinctValue.objects.for_tenant(tenant)
            .filter(_where(unique))
            .values("account_id", "meter_id")
            .annotate(n=Count("value", distinct=True))
        )
        for row in rows:
            found[(row["account_id"], row["meter_id"])] = row["n"] or 0
    usage: dict[int, dict[int, MeterUsage]] = {}
    for (account_id, meter_id), (_, start, end) in windows.items():
        usage.setdefault(account_id, {})[meter_id] = MeterUsage(int(found.get((account_id, meter_id), 0)), start, end)
    return usage


def _pressure(state: FeatureState) -> int | None:
    """Percent of the limit used, for features with a positive limit and a measured use."""
    if state.state == EntitlementState.LOCKED or state.limit is None or state.used is None or state.limit <= 0:
        return None
    return state.used * 100 // state.limit


def account_standings(
    tenant: Tenant, *, account_ids: Sequence[int] | None = None, now: datetime.datetime | None = None
) -> dict[int, AccountStanding]:
    """Every (or the given) account's features against their limits, plus recent gate hits.

    A fixed number of queries whatever the number of accounts (about ten).
    """
    now = now or timezone.now()
    if account_ids is None:
        account_ids = list(CustomerAccount.objects.for_tenant(tenant).values_list("id", flat=True))
    plans = plans_for_accounts(tenant, account_ids=account_ids, now=now)
    usage = usage_for_plans(tenant, plans=plans.values(), now=now)
    hits: dict[int, dict[str, int]] = {}
    for account_id, feature, n in (
        Event.objects.for_tenant(tenant)
        .filter(event=FEATURE_GATE_HIT_EVENT, occurred_at__gte=now - GATE_HIT_LOOKBACK, account_id__in=account_ids)
        .values("account_id", feature=KeyTextTransform("feature", "properties"))
        .annotate(n=Count("id"))
        .values_list("account_id", "feature", "n")
    ):
        per = hits.setdefault(account_id, {})
        per[feature or "?"] = per.get(feature or "?", 0) + n
    result: dict[int, AccountStanding] = {}
    for account_id, plan in plans.items():
        states = tuple(_feature_state(rule, plan, usage.get(account_id, {})) for rule in plan.features.values())
        scored = [(p, s) for s in states if (p := _pressure(s)) is not None]
        top_percent, top = max(scored, key=lambda ps: ps[0]) if scored else (None, None)
        kinds = {s.state for s in states}
        standing = (
            Standing.HARD_LIMIT
            if EntitlementState.HARD_LIMIT in kinds
            else Standing.SOFT_LIMIT
            if EntitlementState.SOFT_LIMIT in kinds
            else Standing.OK
        )
        per = hits.get(account_id, {})
        names = {rule.key: rule.name for rule in plan.features.values()}
        result[account_id] = AccountStanding(
            account_id=account_id,
            plan=plan,
            states=states,
            top=top,
            top_percent=top_percent,
            standing=standing,
            gate_hits=sum(per.values()),
            gate_hit_features=tuple(names.get(k, k) for k, _ in sorted(per.items(), key=lambda kv: (-kv[1], kv[0]))),
        )
    return result
