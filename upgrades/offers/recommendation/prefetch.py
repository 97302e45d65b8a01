"""Reads for a whole batch of accounts at once (build_offers_for_signals): licences with their exact
versions, the entitlement rows of those versions, the recent rollups and the contacts' roles — a
fixed number of queries per batch instead of per account.

`recommend(..., prefetched=...)` uses them where present and reads itself where not, so the answer
is the same either way (tests/upgrades/offers/test_recommendation_engine.py checks both).
"""

from __future__ import annotations

import datetime
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field

from accounts.models import Contact, Tenant
from billing.models import License
from catalog.models import Entitlement
from upgrades.offers.recommendation.projection import DAY, DEFAULT_LOOKBACK_WEEKS
from usage.models import UsageRollup


def rollup_first_day(today: datetime.date, lookback_weeks: int = DEFAULT_LOOKBACK_WEEKS) -> datetime.date:
    """The oldest day the projection and 'days near the limit' read (the lookback, or last month's start)."""
    return min(today - DAY * (lookback_weeks * 7), today.replace(day=1) - DAY * 40)


@dataclass
class Prefetched:
    licences: dict[int, License] = field(default_factory=dict)  # account id -> licence (tier, price, add-ons)
    tier_rows: dict[int, list[Entitlement]] = field(default_factory=dict)
    addon_rows: dict[int, list[Entitlement]] = field(default_factory=dict)
    daily: dict[int, dict[int, dict[datetime.date, int]]] = field(default_factory=dict)  # account -> meter -> day
    roles: dict[int, str] = field(default_factory=dict)
    today: datetime.date | None = None


def prefetch_accounts(
    tenant: Tenant, *, account_ids: Iterable[int], meter_ids: Iterable[int], now: datetime.datetime
) -> Prefetched:
    """Six queries for any number of accounts."""
    ids = sorted(set(account_ids))
    out = Prefetched(today=now.astimezone(datetime.UTC).date())
    if not ids:
        return out
    for lic in (
        License.objects.for_tenant(tenant).filter(account_id__in=ids).select_related("tier", "price")
        .prefetch_related("addons__prices")
    ):  # fmt: skip
        out.licences[lic.account_id] = lic
    tier_ids = {lic.tier_id for lic in out.licences.values()}
    addon_ids = {a.pk for lic in out.licences.values() for a in lic.addons.all()}
    rows = Entitlement.objects.for_tenant(tenant).filter(tier_id__in=tier_ids)
    tier_rows: dict[int, list[Entitlement]] = defaultdict(list)
    for row in rows:
        tier_rows[row.tier_id].append(row)  # type: ignore[index]
    out.tier_rows = {t: tier_rows.get(t, []) for t in tier_ids}
    addon_rows: dict[int, list[Entitlement]] = defaultdict(list)
    if addon_ids:
        for row in Entitlement.objects.for_tenant(tenant).filter(addon_id__in=addon_ids):
            addon_rows[row.addon_id].append(row)  # type: ignore[index]
    out.addon_rows = {a: addon_rows.get(a, []) for a in addon_ids}
    meters = list(meter_ids)
    daily: dict[int, dict[int, dict[datetime.date, int]]] = {a: {m: {} for m in meters} for a in ids}
    if meters:
        first = rollup_first_day(out.today)  # type: ignore[arg-type]
        for account_id, meter_id, day, value in (
            UsageRollup.objects.for_tenant(tenant)
            .filter(account_id__in=ids, meter_id__in=meters, day__gte=first, day__lte=out.today)
            .values_list("account_id", "meter_id", "day", "value")
        ):
            daily[account_id][meter_id][day] = value
    out.daily = daily
    for account_id, role in (
        Contact.objects.for_tenant(tenant).filter(account_id__in=ids).exclude(role="")
        .order_by("account_id", "id").values_list("account_id", "role")
    ):  # fmt: skip
        out.roles.setdefault(account_id, role)
    return out
