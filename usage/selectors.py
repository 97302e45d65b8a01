"""Reads of the usage app: effective entitlements, current usage, the check answer, event queries.

Effective entitlements of an account = its licence's tier + add-ons + active grants
(trials, CSM grants) applied to the catalog; no active licence -> the tenant's published
free tier. The catalog combines a tier with add-ons (`catalog.selectors.entitlements_for`:
add-on packs add to the tier's limit); a granted tier overlays the licence tier, so per
feature the more generous of the two applies (a trial never takes anything away).

Usage comes from daily rollups, never raw events. Windows are UTC days: a calendar month,
the licence's billing period (from the UTC day it started up to the day it ends), or the
last N days including today.
"""

from __future__ import annotations

import datetime
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from django.db.models import Count, Max, Q, Sum
from django.db.models.fields.json import KeyTextTransform
from django.db.models.query import QuerySet
from django.utils import timezone

from accounts.models import CustomerAccount, Tenant
from billing.models import License, LicenseGrant, LicenseStatus
from catalog import selectors as catalog_selectors
from catalog.models import AddOn, Aggregation, Entitlement, Feature, FeatureKind, Meter, MeterWindow, Tier
from usage import cache
from usage.models import FEATURE_GATE_HIT_EVENT, Event, UsageDistinctValue, UsageRollup

UTC = datetime.UTC
# Licences in these states carry their tier; cancelled or suspended ones fall back to the free tier.
ENTITLED_STATUSES = frozenset({LicenseStatus.ACTIVE, LicenseStatus.TRIALING, LicenseStatus.PAST_DUE})
# Bounds how long a plan is trusted even without a signal (e.g. a new free-tier version published).
PLAN_MAX_AGE = datetime.timedelta(minutes=5)


class EntitlementState(StrEnum):
    OK = "ok"
    SOFT_LIMIT = "soft_limit"  # at or above the soft threshold: warn and suggest
    HARD_LIMIT = "hard_limit"  # the limit itself is reached
    LOCKED = "locked"  # the plan doesn't include the feature


@dataclass(frozen=True)
class FeatureRule:
    """What the account's plan allows for one feature, and how its usage is measured."""

    key: str
    name: str
    kind: str
    unit: str
    enabled: bool
    limit: int | None
    enforcement: str
    soft_limit_percent: int
    sources: tuple[str, ...]
    meter_id: int | None = None
    aggregation: str | None = None
    window: str | None = None
    window_days: int | None = None


@dataclass(frozen=True)
class Plan:
    account_id: int
    tier_id: int | None
    tier_key: str | None
    tier_name: str | None
    tier_rank: int | None
    addon_keys: tuple[str, ...]
    grant_labels: tuple[str, ...]
    seats: int | None
    billing_period: tuple[datetime.datetime, datetime.datetime] | None
    features: dict[str, FeatureRule]
    valid_until: datetime.datetime


@dataclass(frozen=True)
class MeterUsage:
    value: int
    period_start: datetime.datetime
    period_end: datetime.datetime


@dataclass(frozen=True)
class FeatureState:
    feature: str
    name: str
    kind: str
    unit: str
    allowed: bool
    limit: int | None
    used: int | None
    remaining: int | None
    state: str
    enforcement: str
    soft_limit_at: int | None
    period_start: datetime.datetime | None
    period_end: datetime.datetime | None

    def as_dict(self) -> dict[str, Any]:
        return {
            "feature": self.feature,
            "name": self.name,
            "kind": self.kind,
            "unit": self.unit,
            "allowed": self.allowed,
            "limit": self.limit,
            "used": self.used,
            "remaining": self.remaining,
            "state": self.state,
            "enforcement": self.enforcement,
            "soft_limit_at": self.soft_limit_at,
            "period_start": _iso(self.period_start),
            "period_end": _iso(self.period_end),
        }


@dataclass(frozen=True)
class UpgradeHint:
    kind: str  # "tier" or "addon"
    key: str
    name: str
    limit: int | None

    def as_dict(self) -> dict[str, Any]:
        return {"kind": self.kind, "key": self.key, "name": self.name, "limit": self.limit}


@dataclass(frozen=True)
class CheckAnswer:
    account: str
    account_id: int
    feature: str
    quantity: int
    allowed: bool
    state: str
    reason: str
    used: int | None
    limit: int | None
    remaining: int | None
    period_end: datetime.datetime | None
    upgrade: UpgradeHint | None = None
    record_gate_hit: bool = False

    def as_dict(self) -> dict[str, Any]:
        return {
            "account": self.account,
            "feature": self.feature,
            "quantity": self.quantity,
            "allowed": self.allowed,
            "state": self.state,
            "reason": self.reason,
            "used": self.used,
            "limit": self.limit,
            "remaining": self.remaining,
            "period_end": _iso(self.period_end),
            "upgrade": self.upgrade.as_dict() if self.upgrade else None,
        }


@dataclass
class AccountEntitlements:
    external_id: str
    plan: Plan
    usage: dict[int, MeterUsage] = field(default_factory=dict)

    @property
    def account_id(self) -> int:
        return self.plan.account_id

    def feature_state(self, rule: FeatureRule) -> FeatureState:
        return _feature_state(rule, self.plan, self.usage)

    def states(self) -> list[FeatureState]:
        return [self.feature_state(rule) for rule in self.plan.features.values()]


def _iso(value: datetime.datetime | None) -> str | None:
    return value.isoformat().replace("+00:00", "Z") if value is not None else None


def get_account(tenant: Tenant, external_id: str) -> CustomerAccount:
    """The account by its external id, loading only what entitlement answers need (hot path)."""
    from usage.errors import NotFound

    account = (
        CustomerAccount.objects.for_tenant(tenant)
        .only("id", "tenant_id", "external_id")
        .filter(external_id=external_id)
        .first()
    )
    if account is None:
        raise NotFound(f"No account {external_id!r}.")
    return account


# --- The plan: licence + add-ons + grants applied to the catalog -------------------------


def _more_generous(
    a: catalog_selectors.FeatureEntitlement, b: catalog_selectors.FeatureEntitlement
) -> catalog_selectors.FeatureEntitlement:
    if a.enabled != b.enabled:
        return a if a.enabled else b
    if a.limit is None or b.limit is None:
        return a if a.limit is None else b
    return a if a.limit >= b.limit else b


def compute_plan(tenant: Tenant, *, account: CustomerAccount, now: datetime.datetime) -> Plan:
    license_ = (
        License.objects.for_tenant(tenant)
        .filter(account=account)
        .select_related("tier")
        .prefetch_related("addons")
        .first()
    )
    grants = list(
        LicenseGrant.objects.for_tenant(tenant)
        .filter(account=account, ends_at__gt=now)
        .filter(Q(ended_at__isnull=True) | Q(ended_at__gt=now))
        .select_related("tier", "addon")
    )
    valid_until = now + PLAN_MAX_AGE
    active_grants = []
    for grant in grants:
        if grant.is_active_at(now):
            active_grants.append(grant)
            valid_until = min(valid_until, grant.ends_at, grant.ended_at or grant.ends_at)
        elif grant.starts_at > now:
            valid_until = min(valid_until, grant.starts_at)

    tier: Tier | None = None
    addons: list[AddOn] = []
    seats = None
    billing_period = None
    if license_ is not None and license_.status in ENTITLED_STATUSES:
        tier = license_.tier
        addons = list(license_.addons.all())
        seats = license_.seats
        billing_period = (license_.current_period_start, license_.current_period_end)
        if license_.current_period_end > now:
            valid_until = min(valid_until, license_.current_period_end)
    if tier is None:
        tier = catalog_selectors.get_default_tier(tenant)
    addons += [g.addon for g in active_grants if g.addon_id and g.addon_id not in {a.pk for a in addons}]

    combined = catalog_selectors.entitlements_for(tenant, tier=tier, addons=addons) if (tier or addons) else {}
    for grant in active_grants:
        if grant.tier_id and (tier is None or grant.tier_id != tier.pk):
            overlay = catalog_selectors.entitlements_for(tenant, tier=grant.tier, addons=addons)
            for key, value in overlay.items():
                combined[key] = _more_generous(combined[key], value) if key in combined else value

    meters: dict[int, Meter] = {}
    for meter in Meter.objects.for_tenant(tenant).filter(feature__isnull=False).order_by("id"):
        meters.setdefault(meter.feature_id, meter)
    feature_ids = dict(Feature.objects.for_tenant(tenant).filter(key__in=combined).values_list("key", "id"))
    features: dict[str, FeatureRule] = {}
    for key, ent in combined.items():
        meter = meters.get(feature_ids.get(key))
        features[key] = FeatureRule(
            key=key,
            name=ent.feature_name,
            kind=ent.kind,
            unit=ent.unit,
            enabled=ent.enabled,
            limit=ent.limit,
            enforcement=ent.enforcement,
            soft_limit_percent=ent.soft_limit_percent,
            sources=ent.sources,
            meter_id=meter.pk if meter else None,
            aggregation=meter.aggregation if meter else None,
            window=meter.window if meter else None,
            window_days=meter.window_days if meter else None,
        )
    return Plan(
        account_id=account.pk,
        tier_id=tier.pk if tier else None,
        tier_key=tier.key if tier else None,
        tier_name=tier.name if tier else None,
        tier_rank=tier.rank if tier else None,
        addon_keys=tuple(sorted(a.key for a in addons)),
        grant_labels=tuple(str(g) for g in active_grants),
        seats=seats,
        billing_period=billing_period,
        features=features,
        valid_until=valid_until,
    )


# --- Usage from rollups ------------------------------------------------------------------------


def _day_start(day: datetime.date) -> datetime.datetime:
    return datetime.datetime(day.year, day.month, day.day, tzinfo=UTC)


def meter_window(
    *, window: str, window_days: int | None, billing_period: tuple | None, now: datetime.datetime
) -> tuple[datetime.date, datetime.date, datetime.datetime, datetime.datetime]:
    """(first day, day after the last, period start, period end) of a meter's current window."""
    today = now.astimezone(UTC).date()
    if window == MeterWindow.ROLLING_DAYS:
        first = today - datetime.timedelta(days=max(window_days or 1, 1) - 1)
        after = today + datetime.timedelta(days=1)
        return first, after, _day_start(first), _day_start(after)
    if window == MeterWindow.BILLING_PERIOD and billing_period is not None and billing_period[0] <= now:
        start, end = billing_period
        if end > now:
            first = start.astimezone(UTC).date()
            after = max(end.astimezone(UTC).date(), first + datetime.timedelta(days=1))
            return first, after, start, end
    first = today.replace(day=1)
    after = datetime.date(first.year + first.month // 12, first.month % 12 + 1, 1)
    return first, after, _day_start(first), _day_start(after)


def meter_value(
    tenant: Tenant | int,
    *,
    account_id: int,
    meter_id: int,
    aggregation: str,
    first_day: datetime.date,
    after_day: datetime.date,
) -> int:
    """One meter's number for one account over [first_day, after_day), from rollups only."""
    if aggregation == Aggregation.UNIQUE_COUNT:
        return (
            (
                UsageDistinctValue.objects.for_tenant(tenant)
                .filter(account_id=account_id, meter_id=meter_id, day__gte=first_day, day__lt=after_day)
                .aggregate(n=Count("value", distinct=True))["n"]
            )
            or 0
        )
    agg = Max("value") if aggregation == Aggregation.MAX else Sum("value")
    return (
        (
            UsageRollup.objects.for_tenant(tenant)
            .filter(account_id=account_id, meter_id=meter_id, day__gte=first_day, day__lt=after_day)
            .aggregate(v=agg)["v"]
        )
        or 0
    )


def compute_usage(
    tenant: Tenant, *, plan: Plan, now: datetime.datetime
) -> tuple[dict[int, MeterUsage], datetime.datetime]:
    """Current values of the meters the plan's features use, and when they must be recomputed."""
    usage: dict[int, MeterUsage] = {}
    valid_until = now + datetime.timedelta(hours=1)
    additive_filter = Q()
    additive: dict[int, tuple[str, datetime.datetime, datetime.datetime]] = {}
    for rule in plan.features.values():
        if rule.meter_id is None or rule.meter_id in usage or rule.meter_id in additive:
            continue
        first, after, start, end = meter_window(
            window=rule.window, window_days=rule.window_days, billing_period=plan.billing_period, now=now
        )
        valid_until = min(valid_until, end)
        if rule.aggregation == Aggregation.UNIQUE_COUNT:
            value = meter_value(
                tenant,
                account_id=plan.account_id,
                meter_id=rule.meter_id,
                aggregation=rule.aggregation,
                first_day=first,
                after_day=after,
            )
            usage[rule.meter_id] = MeterUsage(value, start, end)
        else:
            additive[rule.meter_id] = (rule.aggregation, start, end)
            additive_filter |= Q(meter_id=rule.meter_id, day__gte=first, day__lt=after)
    if additive:
        rows = (
            UsageRollup.objects.for_tenant(tenant)
            .filter(account_id=plan.account_id)
            .filter(additive_filter)
            .values("meter_id")
            .annotate(total=Sum("value"), peak=Max("value"))
        )
        found = {r["meter_id"]: r for r in rows}
        for meter_id, (aggregation, start, end) in additive.items():
            row = found.get(meter_id)
            value = 0 if row is None else (row["peak"] if aggregation == Aggregation.MAX else row["total"]) or 0
            usage[meter_id] = MeterUsage(int(value), start, end)
    return usage, valid_until


# --- Answers --------------------------------------------------------------------------------


def soft_threshold(limit: int, percent: int) -> int:
    return -(-limit * percent // 100)


def _feature_state(rule: FeatureRule, plan: Plan, usage: dict[int, MeterUsage]) -> FeatureState:
    used = None
    period_start = period_end = None
    if rule.meter_id is not None:
        meter_usage = usage.get(rule.meter_id)
        if meter_usage is not None:
            used, period_start, period_end = meter_usage.value, meter_usage.period_start, meter_usage.period_end
    elif rule.kind == FeatureKind.SEATS and plan.seats is not None:
        used = plan.seats  # seats held on the licence, when no meter counts active seats
    elif rule.kind == FeatureKind.METERED:
        used = 0  # no meter configured yet: nothing counted
    limit = rule.limit if rule.enabled else 0
    soft_at = soft_threshold(limit, rule.soft_limit_percent) if limit is not None and rule.enabled else None
    if not rule.enabled:
        state, allowed = EntitlementState.LOCKED, False
    elif limit is None or used is None:
        state, allowed = EntitlementState.OK, True
    elif used >= limit:
        state, allowed = EntitlementState.HARD_LIMIT, rule.enforcement == "soft"
    elif soft_at is not None and used >= soft_at:
        state, allowed = EntitlementState.SOFT_LIMIT, True
    else:
        state, allowed = EntitlementState.OK, True
    remaining = max(limit - used, 0) if limit is not None and used is not None else None
    return FeatureState(
        feature=rule.key,
        name=rule.name,
        kind=rule.kind,
        unit=rule.unit,
        allowed=allowed,
        limit=limit if rule.enabled else 0,
        used=used,
        remaining=remaining,
        state=state,
        enforcement=rule.enforcement,
        soft_limit_at=soft_at,
        period_start=period_start,
        period_end=period_end,
    )


def get_account_entitlements(
    tenant: Tenant,
    *,
    external_id: str | None = None,
    account: CustomerAccount | None = None,
    now: datetime.datetime | None = None,
) -> AccountEntitlements:
    """The account's plan and current usage, from the cache when its tokens are current.

    Cached by the vendor's external id, so a warm answer needs no database read at all;
    an unknown (or another tenant's) external id is NotFound, from the database on a miss.
    """
    now = now or timezone.now()
    ref = external_id if external_id is not None else account.external_id
    found = cache.lookup(tenant.pk, ref, now=now)
    plan = found.plan
    if plan is None:
        if account is None:
            account = get_account(tenant, ref)
        plan = compute_plan(tenant, account=account, now=now)
        cache.store(
            cache.PLAN, tenant.pk, ref, version=found.plan_version, value=plan, valid_until=plan.valid_until, now=now
        )
    usage = found.usage
    if usage is not None and usage[0] != found.plan_version:
        usage = None  # computed under another plan (its windows may differ)
    if usage is None:
        values, valid_until = compute_usage(tenant, plan=plan, now=now)
        usage = (found.plan_version, values)
        cache.store(
            cache.USAGE, tenant.pk, ref, version=found.usage_version, value=usage, valid_until=valid_until, now=now
        )
    return AccountEntitlements(external_id=ref, plan=plan, usage=usage[1])


def upgrade_hint(tenant: Tenant, *, plan: Plan, feature_key: str, needed: int) -> UpgradeHint | None:
    """The lowest published public tier above the account's, else the cheapest add-on, that allows `needed`."""
    choice = catalog_selectors.lowest_tier_allowing(tenant, feature_key, max(needed, 1), above_rank=plan.tier_rank)
    if choice is None:
        return None
    entitlement = choice.entitlements.filter(feature__key=feature_key).first()
    return UpgradeHint(
        kind="tier" if isinstance(choice, Tier) else "addon",
        key=choice.key,
        name=choice.name,
        limit=entitlement.limit if entitlement else None,
    )


def check_entitlement(
    tenant: Tenant, *, external_id: str, feature_key: str, quantity: int, now: datetime.datetime | None = None
) -> CheckAnswer:
    """May the account use `quantity` more of the feature now? Reads only; the caller records gate hits."""
    from usage.errors import InvalidInput, UsageErrorCode

    now = now or timezone.now()
    entitlements = get_account_entitlements(tenant, external_id=external_id, now=now)
    rule = entitlements.plan.features.get(feature_key)
    if rule is None:
        if not Feature.objects.for_tenant(tenant).filter(key=feature_key).exists():
            raise InvalidInput(
                f"Unknown feature {feature_key!r}.",
                code=UsageErrorCode.UNKNOWN_FEATURE,
                details={"feature": [f"No feature {feature_key!r} in this catalog."]},
            )
        # A feature of a product the plan doesn't cover at all: locked.
        rule = FeatureRule(
            key=feature_key,
            name=feature_key,
            kind="",
            unit="",
            enabled=False,
            limit=0,
            enforcement="hard",
            soft_limit_percent=80,
            sources=(),
        )
    state = entitlements.feature_state(rule)
    hint_needed = None
    if not rule.enabled:
        allowed, reason, after_state, record = False, "not_in_plan", EntitlementState.LOCKED, True
        hint_needed = quantity
    elif state.limit is None or state.used is None:
        allowed, reason, after_state, record = True, "ok", EntitlementState.OK, False
    else:
        after = state.used + quantity
        soft_at = state.soft_limit_at
        if after > state.limit:
            soft = rule.enforcement == "soft"
            allowed, reason, after_state, record = (
                soft,
                ("over_soft_limit" if soft else "limit_reached"),
                EntitlementState.HARD_LIMIT,
                not soft,
            )
            hint_needed = after
        elif after == state.limit:
            allowed, reason, after_state, record = True, "limit_reached_by_this_use", EntitlementState.HARD_LIMIT, False
            hint_needed = after + 1
        elif soft_at is not None and after >= soft_at:
            allowed, reason, after_state, record = True, "soft_limit", EntitlementState.SOFT_LIMIT, False
            hint_needed = after
        else:
            allowed, reason, after_state, record = True, "ok", EntitlementState.OK, False
    hint = (
        upgrade_hint(tenant, plan=entitlements.plan, feature_key=feature_key, needed=hint_needed)
        if hint_needed is not None
        else None
    )
    return CheckAnswer(
        account=external_id,
        account_id=entitlements.account_id,
        feature=feature_key,
        quantity=quantity,
        allowed=allowed,
        state=after_state,
        reason=reason,
        used=state.used,
        limit=state.limit,
        remaining=state.remaining,
        period_end=state.period_end,
        upgrade=hint,
        record_gate_hit=record,
    )


# --- Event queries (for trigger rules, the console and analytics) ---------------------------


def list_events(
    tenant: Tenant,
    *,
    account: CustomerAccount | None = None,
    event: str | None = None,
    since: datetime.datetime | None = None,
    until: datetime.datetime | None = None,
) -> QuerySet[Event]:
    """Raw events, newest first. Give `since` so PostgreSQL prunes partitions."""
    qs = Event.objects.for_tenant(tenant).order_by("-occurred_at", "-id")
    if account is not None:
        qs = qs.filter(account=account)
    if event:
        qs = qs.filter(event=event)
    if since is not None:
        qs = qs.filter(occurred_at__gte=since)
    if until is not None:
        qs = qs.filter(occurred_at__lt=until)
    return qs


def count_events(
    tenant: Tenant,
    *,
    event: str,
    since: datetime.datetime,
    until: datetime.datetime | None = None,
    account_ids: Iterable[int] | None = None,
) -> dict[int, int]:
    """Events named `event` per account in [since, until): e.g. gate hits in the last 14 days."""
    qs = Event.objects.for_tenant(tenant).filter(event=event, occurred_at__gte=since)
    if until is not None:
        qs = qs.filter(occurred_at__lt=until)
    if account_ids is not None:
        qs = qs.filter(account_id__in=list(account_ids))
    return dict(qs.values("account_id").annotate(n=Count("id")).values_list("account_id", "n"))


def daily_usage(
    tenant: Tenant,
    *,
    meter: Meter,
    first_day: datetime.date,
    last_day: datetime.date,
    account_ids: Iterable[int] | None = None,
) -> dict[int, dict[datetime.date, int]]:
    """Per account, per UTC day, the meter's daily number (for charts and 'N of the last M days' rules)."""
    qs = UsageRollup.objects.for_tenant(tenant).filter(meter=meter, day__gte=first_day, day__lte=last_day)
    if account_ids is not None:
        qs = qs.filter(account_id__in=list(account_ids))
    result: dict[int, dict[datetime.date, int]] = {}
    for account_id, day, value in qs.values_list("account_id", "day", "value"):
        result.setdefault(account_id, {})[day] = value
    return result


# --- Staff pages: many accounts at once, and one account's history ---------------------------
#
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
        for grant in active_grants:
            if grant.tier_id and (tier is None or grant.tier_id != tier.pk):
                overlay = snapshot.entitlements_for(tier=grant.tier, addons=plan_addons)
                for key, value in overlay.items():
                    combined[key] = _more_generous(combined[key], value) if key in combined else value
        features: dict[str, FeatureRule] = {}
        for key, ent in combined.items():
            meter = meters.get(feature_ids.get(key))
            features[key] = FeatureRule(
                key=key,
                name=ent.feature_name,
                kind=ent.kind,
                unit=ent.unit,
                enabled=ent.enabled,
                limit=ent.limit,
                enforcement=ent.enforcement,
                soft_limit_percent=ent.soft_limit_percent,
                sources=ent.sources,
                meter_id=meter.pk if meter else None,
                aggregation=meter.aggregation if meter else None,
                window=meter.window if meter else None,
                window_days=meter.window_days if meter else None,
            )
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


@dataclass(frozen=True)
class EntitlementRow:
    """One line of an account's entitlements table: the API's answer plus what would lift it."""

    state: FeatureState
    percent: int | None
    upgrade: UpgradeHint | None


@dataclass(frozen=True)
class GrantRow:
    grant: LicenseGrant
    status: str  # "active", "scheduled" or "ended"


@dataclass(frozen=True)
class UsageSeries:
    """A metered feature's last days: the day's own number and the number counted against the
    limit as of that day (the window total the entitlement check would have seen)."""

    feature: str
    name: str
    unit: str
    window_label: str
    days: tuple[datetime.date, ...]
    daily: tuple[int, ...]
    counted: tuple[int, ...]
    limit: int | None
    soft_limit_at: int | None

    def as_chart(self) -> dict[str, Any]:
        return {
            "feature": self.feature,
            "name": self.name,
            "unit": self.unit,
            "window": self.window_label,
            "days": [d.isoformat() for d in self.days],
            "daily": list(self.daily),
            "counted": list(self.counted),
            "limit": self.limit,
            "soft_limit_at": self.soft_limit_at,
        }


@dataclass(frozen=True)
class AccountUsageOverview:
    account: CustomerAccount
    entitlements: AccountEntitlements
    rows: tuple[EntitlementRow, ...]
    license: License | None
    grants: tuple[GrantRow, ...]
    gate_hits: tuple[Event, ...]
    gate_hits_recent: int  # in the last GATE_HIT_LOOKBACK
    events: tuple[Event, ...]
    event_counts: tuple[tuple[str, int], ...]  # per event name since `since`, most frequent first
    event_filter: str | None
    series: tuple[UsageSeries, ...]
    since: datetime.datetime
    now: datetime.datetime


def _window_label(rule: FeatureRule) -> str:
    if rule.window == MeterWindow.ROLLING_DAYS:
        return f"rolling {rule.window_days} days"
    if rule.window == MeterWindow.BILLING_PERIOD:
        return "billing period"
    return "calendar month"


def usage_history(
    tenant: Tenant,
    *,
    plan: Plan,
    states: Iterable[FeatureState],
    days: int = 90,
    now: datetime.datetime | None = None,
) -> list[UsageSeries]:
    """Per metered feature of the plan, its last `days` UTC days from rollups (two queries).

    Each day's counted number uses the window the entitlement code uses (calendar month,
    billing period, rolling N days) cut at that day's end; the last point is today's, so it
    equals the entitlements table's `used`. Earlier billing periods aren't stored, so days
    before the current period are counted by calendar month (as checks without one are).
    """
    now = now or timezone.now()
    today = now.astimezone(UTC).date()
    shown = [today - datetime.timedelta(days=days - 1 - i) for i in range(days)]
    limits = {s.feature: s for s in states}
    rules = [r for r in plan.features.values() if r.meter_id is not None and r.enabled]
    if not rules:
        return []

    def as_of(day: datetime.date) -> datetime.datetime:
        return now if day == today else _day_start(day) + datetime.timedelta(days=1, microseconds=-1)

    windows: dict[tuple[int, datetime.date], tuple[datetime.date, datetime.date]] = {}
    earliest = shown[0]
    for rule in rules:
        for day in shown:
            first, after, _, _ = meter_window(
                window=rule.window, window_days=rule.window_days, billing_period=plan.billing_period, now=as_of(day)
            )
            windows[(rule.meter_id, day)] = (first, min(after, day + datetime.timedelta(days=1)))
            earliest = min(earliest, first)
    meter_ids = {r.meter_id for r in rules}
    daily: dict[int, dict[datetime.date, int]] = {}
    for meter_id, day, value in (
        UsageRollup.objects.for_tenant(tenant)
        .filter(account_id=plan.account_id, meter_id__in=meter_ids, day__gte=earliest, day__lte=today)
        .values_list("meter_id", "day", "value")
    ):
        daily.setdefault(meter_id, {})[day] = value
    unique_ids = {r.meter_id for r in rules if r.aggregation == Aggregation.UNIQUE_COUNT}
    distinct: dict[int, dict[datetime.date, set[str]]] = {}
    if unique_ids:
        for meter_id, day, value in (
            UsageDistinctValue.objects.for_tenant(tenant)
            .filter(account_id=plan.account_id, meter_id__in=unique_ids, day__gte=earliest, day__lte=today)
            .values_list("meter_id", "day", "value")
        ):
            distinct.setdefault(meter_id, {}).setdefault(day, set()).add(value)

    series = []
    for rule in rules:
        per_day = daily.get(rule.meter_id, {})
        counted = []
        for day in shown:
            first, after = windows[(rule.meter_id, day)]
            span = [first + datetime.timedelta(days=i) for i in range((after - first).days)]
            if rule.aggregation == Aggregation.UNIQUE_COUNT:
                seen: set[str] = set()
                for d in span:
                    seen |= distinct.get(rule.meter_id, {}).get(d, set())
                counted.append(len(seen))
            elif rule.aggregation == Aggregation.MAX:
                counted.append(max((per_day.get(d, 0) for d in span), default=0))
            else:
                counted.append(sum(per_day.get(d, 0) for d in span))
        state = limits.get(rule.key)
        series.append(
            UsageSeries(
                feature=rule.key,
                name=rule.name,
                unit=rule.unit,
                window_label=_window_label(rule),
                days=tuple(shown),
                daily=tuple(per_day.get(d, 0) for d in shown),
                counted=tuple(counted),
                limit=state.limit if state else rule.limit,
                soft_limit_at=state.soft_limit_at if state else None,
            )
        )
    return series


def account_usage_overview(
    tenant: Tenant,
    *,
    account: CustomerAccount,
    days: int = 90,
    event: str | None = None,
    now: datetime.datetime | None = None,
) -> AccountUsageOverview:
    """Everything the staff page of one account shows. The entitlements are the API's answer
    (get_account_entitlements), so the page and the API can't disagree."""
    now = now or timezone.now()
    since = now - datetime.timedelta(days=days)
    entitlements = get_account_entitlements(tenant, account=account, now=now)
    rows = []
    for state in entitlements.states():
        hint = None
        if state.state != EntitlementState.OK:
            needed = 1 if state.state == EntitlementState.LOCKED else (state.used or 0) + 1
            hint = upgrade_hint(tenant, plan=entitlements.plan, feature_key=state.feature, needed=needed)
        rows.append(EntitlementRow(state=state, percent=_pressure(state), upgrade=hint))
    license_ = (
        License.objects.for_tenant(tenant)
        .filter(account=account)
        .select_related("tier", "price")
        .prefetch_related("addons")
        .first()
    )
    grants = []
    for grant in (
        LicenseGrant.objects.for_tenant(tenant)
        .filter(account=account)
        .select_related("tier", "addon", "created_by")
        .order_by("-starts_at", "-id")[:20]
    ):
        status = "active" if grant.is_active_at(now) else ("scheduled" if grant.starts_at > now else "ended")
        grants.append(GrantRow(grant=grant, status=status))
    gate_hits = tuple(list_events(tenant, account=account, event=FEATURE_GATE_HIT_EVENT, since=since)[:12])
    recent = count_events(
        tenant, event=FEATURE_GATE_HIT_EVENT, since=now - GATE_HIT_LOOKBACK, account_ids=[account.pk]
    ).get(account.pk, 0)
    return AccountUsageOverview(
        account=account,
        entitlements=entitlements,
        rows=tuple(rows),
        license=license_,
        grants=tuple(grants),
        gate_hits=gate_hits,
        gate_hits_recent=recent,
        events=tuple(list_events(tenant, account=account, event=event, since=since)[:50]),
        event_counts=tuple(
            (name, n)
            for name, n in Event.objects.for_tenant(tenant)
            .filter(account=account, occurred_at__gte=since)
            .values("event")
            .annotate(n=Count("id"))
            .order_by("-n", "event")
            .values_list("event", "n")
        ),
        event_filter=event or None,
        series=tuple(usage_history(tenant, plan=entitlements.plan, states=entitlements.states(), days=days, now=now)),
        since=since,
        now=now,
    )
