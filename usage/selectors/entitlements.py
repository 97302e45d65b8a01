"""Effective entitlements and the check answer.

Effective entitlements of an account = its licence's tier + add-ons + active grants
(trials, CSM grants) applied to the catalog; no active licence -> the tenant's published
free tier. The catalog combines a tier with add-ons (`catalog.selectors.entitlements_for`:
add-on packs add to the tier's limit); a granted tier overlays the licence tier, so per
feature the more generous of the two applies (a trial never takes anything away).
"""

from __future__ import annotations

import datetime
from collections.abc import Callable, Iterable

from django.db.models import Q
from django.utils import timezone

from accounts.models import CustomerAccount, Tenant
from billing.models import License, LicenseGrant
from catalog import selectors as catalog_selectors
from catalog.models import AddOn, Feature, Meter, Tier
from usage import cache
from usage.selectors.states import (
    ENTITLED_STATUSES,
    PLAN_MAX_AGE,
    AccountEntitlements,
    CheckAnswer,
    EntitlementState,
    FeatureRule,
    Plan,
    UpgradeHint,
)
from usage.selectors.windows import compute_usage


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


def overlay_grant_tiers(
    combined: dict, *, grants: Iterable, tier: Tier | None, entitlements_for: Callable[[Tier], dict]
) -> None:
    """A granted higher tier (a trial) sits on top of the plan: per feature, the more generous rule wins."""
    for grant in grants:
        if grant.tier_id and (tier is None or grant.tier_id != tier.pk):
            for key, value in entitlements_for(grant.tier).items():
                combined[key] = _more_generous(combined[key], value) if key in combined else value


def feature_rules(combined: dict, *, meters: dict[int, Meter], feature_ids: dict[str, int]) -> dict[str, FeatureRule]:
    """One rule per feature: the combined entitlement plus the meter that counts it (if any)."""
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
    return features


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
    overlay_grant_tiers(
        combined,
        grants=active_grants,
        tier=tier,
        entitlements_for=lambda t: catalog_selectors.entitlements_for(tenant, tier=t, addons=addons),
    )

    meters: dict[int, Meter] = {}
    for meter in Meter.objects.for_tenant(tenant).filter(feature__isnull=False).order_by("id"):
        meters.setdefault(meter.feature_id, meter)
    feature_ids = dict(Feature.objects.for_tenant(tenant).filter(key__in=combined).values_list("key", "id"))
    features = feature_rules(combined, meters=meters, feature_ids=feature_ids)
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
        # A soft limit never blocks: at or over it the state is soft_limit (allowed, with a hint), so
        # "allowed" and "state" never contradict each other.
        soft = rule.enforcement == "soft"
        at_limit_state = EntitlementState.SOFT_LIMIT if soft else EntitlementState.HARD_LIMIT
        if after > state.limit:
            allowed, reason, after_state, record = (
                soft,
                ("over_soft_limit" if soft else "limit_reached"),
                at_limit_state,
                not soft,
            )
            hint_needed = after
        elif after == state.limit:
            allowed, reason, after_state, record = True, "limit_reached_by_this_use", at_limit_state, False
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
