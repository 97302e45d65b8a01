"""What the evaluators read: the tenant's rule catalog, effective limits, and per-account data in bulk.

`refresh_limits` writes `AccountLimit` from usage's effective plans (licence + add-ons + grants)
for the meters live rules use; both evaluators read that one table, so they agree on limits.
`load_account_data` builds `AccountData` for many accounts in a fixed number of queries.
"""

from __future__ import annotations

import datetime
from collections.abc import Iterable, Sequence

from django.db.models import Q

from accounts.models import CustomerAccount, Membership, Role, Tenant
from billing.models import GrantKind, License, LicenseGrant
from catalog.models import Aggregation, Feature, GovernanceState, Meter, Tier
from upgrades.rules.bulk import write_rows
from upgrades.rules.conditions import AccountData, Condition, EvalContext, MeterInfo, RuleCatalog
from upgrades.rules.models import AccountLimit
from usage.models import Event, UsageDistinctValue, UsageRollup
from usage.selectors import ENTITLED_STATUSES
from usage.selectors.standings import plans_for_accounts

CHUNK = 2000


def load_rule_catalog(tenant: Tenant) -> RuleCatalog:
    meters = {
        m.key: MeterInfo(
            m.pk, m.key, m.name, m.aggregation, m.window, m.window_days, m.feature.unit if m.feature else ""
        )
        for m in Meter.objects.for_tenant(tenant).select_related("feature")
    }
    features = dict(Feature.objects.for_tenant(tenant).values_list("key", "name"))
    csms = frozenset(
        Membership.objects.for_tenant(tenant)
        .filter(role__in=[Role.CSM, Role.OWNER])
        .values_list("user__email", flat=True)
    )
    tiers = frozenset(
        Tier.objects.for_tenant(tenant)
        .filter(state__in=[GovernanceState.PUBLISHED, GovernanceState.RETIRED])
        .values_list("key", flat=True)
    )
    return RuleCatalog(meters=meters, features=features, csm_emails=csms, tiers=tiers)


def _chunks(ids: Sequence[int]) -> Iterable[list[int]]:
    for i in range(0, len(ids), CHUNK):
        yield list(ids[i : i + CHUNK])


def refresh_limits(
    tenant: Tenant,
    *,
    account_ids: Sequence[int] | None,
    meter_ids: set[int],
    now: datetime.datetime,
    max_age: datetime.timedelta | None = None,
) -> None:
    """Effective finite limits of `meter_ids` for the accounts (None: every account of the tenant,
    read and written tenant-wide), as usage computes them now.

    With `max_age` (preview, backtest), meters refreshed that recently (by the last evaluation)
    are kept as they are: a preview at 100,000 accounts should not rebuild every plan."""
    if max_age is not None:
        fresh = set(
            AccountLimit.objects.for_tenant(tenant)
            .filter(meter_id__in=meter_ids, refreshed_at__gte=now - max_age, refreshed_at__lte=now)
            .values_list("meter_id", flat=True)
            .distinct()
        )
        meter_ids = set(meter_ids) - fresh
    if not meter_ids:
        return
    # A plan depends only on the licence (tier, add-ons, whether it is in force) and active grants:
    # accounts that share a licence shape and have no grant share their limits, computed once
    # through usage's own plan builder for one of them; accounts with grants get their own plan.
    if account_ids is None:
        ids = list(CustomerAccount.objects.for_tenant(tenant).values_list("pk", flat=True))
        chunks: list[list[int] | None] = [None]
    else:
        ids = list(account_ids)
        chunks = list(_chunks(ids))
    licences: dict[int, tuple[str, int, tuple[int, ...]]] = {}
    granted: set[int] = set()
    for chunk in chunks:
        lic_qs = License.objects.for_tenant(tenant)
        grant_qs = LicenseGrant.objects.for_tenant(tenant).filter(starts_at__lte=now, ends_at__gt=now)
        if chunk is not None:
            lic_qs, grant_qs = lic_qs.filter(account_id__in=chunk), grant_qs.filter(account_id__in=chunk)
        addons: dict[int, list[int]] = {}
        for license_id, addon_id in License.addons.through.objects.filter(license__in=lic_qs).values_list(
            "license_id", "addon_id"
        ):
            addons.setdefault(license_id, []).append(addon_id)
        for license_id, account_id, status, tier_id in lic_qs.values_list("pk", "account_id", "status", "tier_id"):
            licences[account_id] = (status, tier_id, tuple(sorted(addons.get(license_id, ()))))
        granted |= set(
            grant_qs.filter(Q(ended_at__isnull=True) | Q(ended_at__gt=now)).values_list("account_id", flat=True)
        )
    signature: dict[int, tuple] = {}
    for account_id in ids:
        lic = licences.get(account_id)
        if account_id in granted:
            signature[account_id] = ("own", account_id)
        elif lic is None or lic[0] not in ENTITLED_STATUSES:
            signature[account_id] = ("default",)
        else:
            signature[account_id] = ("licence", lic[1], lic[2])
    representative: dict[tuple, int] = {}
    for account_id, sig in signature.items():
        representative.setdefault(sig, account_id)
    limits_by_sig: dict[tuple, list[tuple[int, int]]] = {}
    reps = list(representative.items())
    for i in range(0, len(reps), CHUNK):
        part = reps[i : i + CHUNK]
        plans = plans_for_accounts(tenant, account_ids=[a for _, a in part], now=now)
        for sig, account_id in part:
            plan = plans[account_id]
            limits_by_sig[sig] = [
                (rule.meter_id, rule.limit)
                for rule in plan.features.values()
                if rule.meter_id in meter_ids and rule.enabled and rule.limit is not None and rule.limit > 0
            ]
    rows = [
        {"tenant_id": tenant.pk, "account_id": a, "meter_id": m, "limit_value": limit, "refreshed_at": now}
        for a in ids
        for m, limit in limits_by_sig[signature[a]]
    ]
    for chunk in chunks:
        stale = AccountLimit.objects.for_tenant(tenant).filter(meter_id__in=meter_ids)
        (stale if chunk is None else stale.filter(account_id__in=chunk)).delete()
    write_rows(AccountLimit, rows)


def needs_of(conditions: Iterable[Condition], ctx: EvalContext) -> tuple[set[int], datetime.date, set[str], int]:
    """(meter ids, first rollup day, event names, event days) the conditions read."""
    meter_ids: set[int] = set()
    first = ctx.utc_today
    names: set[str] = set()
    days = 0
    for tree in conditions:
        for leaf in tree.leaves():
            meter_ids |= leaf.meter_ids(ctx.catalog)
            day = leaf.rollup_first_day(ctx)
            if day is not None and day < first:
                first = day
            names |= leaf.event_names()
            days = max(days, leaf.event_days())
    return meter_ids, first, names, days


def load_account_data(
    tenant: Tenant, *, account_ids: Sequence[int], conditions: Iterable[Condition], ctx: EvalContext
) -> dict[int, AccountData]:
    """AccountData for each account, holding what `conditions` read and nothing after ctx.now."""
    conditions = list(conditions)
    meter_ids, first_day, event_names, event_days = needs_of(conditions, ctx)
    unique_ids = {m.id for m in ctx.catalog.meters.values() if m.aggregation == Aggregation.UNIQUE_COUNT}
    out: dict[int, AccountData] = {}
    now = ctx.now
    for chunk in _chunks(list(account_ids)):
        accounts = CustomerAccount.objects.for_tenant(tenant).filter(pk__in=chunk).select_related("assigned_csm")
        licences = {
            lic.account_id: lic
            for lic in License.objects.for_tenant(tenant).filter(account_id__in=chunk).select_related("tier")
        }
        for acc in accounts:
            lic = licences.get(acc.pk)
            data = AccountData(account_id=acc.pk)
            data.attributes = {
                "industry": acc.industry,
                "size_band": acc.size_band,
                "segment": acc.segment,
                "territory": acc.territory,
                "lifecycle_stage": acc.lifecycle_stage,
                "tier": lic.tier.key if lic else "",
                "assigned_csm": acc.assigned_csm.email if acc.assigned_csm_id else "",
            }
            if lic is not None and lic.status in ENTITLED_STATUSES:
                data.seats, data.period_start, data.period_end, data.commitment_end, data.interval = (
                    lic.seats,
                    lic.current_period_start,
                    lic.current_period_end,
                    lic.commitment_ends_at,
                    lic.interval,
                )
            out[acc.pk] = data
        for grant in (
            LicenseGrant.objects.for_tenant(tenant)
            .filter(account_id__in=chunk, kind=GrantKind.TRIAL, starts_at__lte=now, ends_at__gt=now)
            .filter(Q(ended_at__isnull=True) | Q(ended_at__gt=now))
        ):
            if grant.account_id in out:
                out[grant.account_id].trial_ends.append(grant.ends_at)
        if meter_ids:
            for row in AccountLimit.objects.for_tenant(tenant).filter(account_id__in=chunk, meter_id__in=meter_ids):
                if row.account_id in out:
                    out[row.account_id].limits[row.meter_id] = row.limit_value
            additive = meter_ids - unique_ids
            if additive:
                for account_id, meter_id, day, value in (
                    UsageRollup.objects.for_tenant(tenant)
                    .filter(account_id__in=chunk, meter_id__in=additive, day__gte=first_day, day__lte=ctx.utc_today)
                    .values_list("account_id", "meter_id", "day", "value")
                ):
                    out[account_id].rollups.setdefault(meter_id, {})[day] = value
            if meter_ids & unique_ids:
                for account_id, meter_id, day, value in (
                    UsageDistinctValue.objects.for_tenant(tenant)
                    .filter(
                        account_id__in=chunk, meter_id__in=meter_ids & unique_ids, day__gte=first_day,
                        day__lte=ctx.utc_today,
                    )
                    .values_list("account_id", "meter_id", "day", "value")
                ):  # fmt: skip
                    out[account_id].distinct.setdefault(meter_id, {}).setdefault(day, set()).add(value)
        if event_names and event_days:
            since = ctx.local_since(event_days)
            for account_id, name, at, props in (
                Event.objects.for_tenant(tenant)
                .filter(account_id__in=chunk, event__in=event_names, occurred_at__gte=since, occurred_at__lte=now)
                .order_by("occurred_at", "id")
                .values_list("account_id", "event", "occurred_at", "properties")
            ):
                out[account_id].events.append((name, at, props if isinstance(props, dict) else {}))
    return out
