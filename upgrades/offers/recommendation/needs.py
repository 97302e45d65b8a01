"""The account's needs for the next period: one projection per metered feature (one rollup query for
all meters), the licence's seats, and the locked features the signal is about.
"""

from __future__ import annotations

import calendar
import datetime
import re
from collections import defaultdict
from dataclasses import dataclass
from typing import Any

from accounts.models import Tenant
from catalog.models import Aggregation, FeatureKind, Meter, MeterWindow
from upgrades.offers.recommendation.catalog import CatalogSnapshot
from upgrades.offers.recommendation.holding import Holding
from upgrades.offers.recommendation.prefetch import Prefetched, rollup_first_day
from upgrades.offers.recommendation.projection import DAY, DEFAULT_LOOKBACK_WEEKS, Projection, project_meter
from upgrades.offers.recommendation.types import OFF, Need
from usage.models import UsageDistinctValue, UsageRollup
from usage.selectors.windows import meter_window

NEAR_DAYS = 7  # "on 5 of the last 7 days"
_GATE_SENTENCE = re.compile(r"hit the (\S+) gate")


@dataclass(frozen=True)
class MeterNeed:
    meter: Meter
    feature_key: str
    feature_name: str
    unit: str
    used: int  # this window so far
    limit: int | None  # held (None: unlimited; 0 with enabled False: locked)
    enabled: bool
    projection: Projection
    days_near_limit: int
    threshold_percent: int
    period_word: str

    def as_dict(self) -> dict[str, Any]:
        return {
            "meter": self.meter.key,
            "feature": self.feature_key,
            "unit": self.unit,
            "used": self.used,
            "limit": self.limit if self.enabled else 0,
            "projected": self.projection.projected,
            "days_near_limit": self.days_near_limit,
            "window_days": NEAR_DAYS,
            "threshold_percent": self.threshold_percent,
            "model": self.projection.model,
        }


def _next_period_days(meter: Meter, *, holding: Holding, after: datetime.date) -> tuple[int, str]:
    if meter.window == MeterWindow.ROLLING_DAYS:
        days = max(meter.window_days or 1, 1)
        return days, f"in the next {days} days"
    if meter.window == MeterWindow.BILLING_PERIOD:
        lic = holding.license
        return max(1, (lic.current_period_end - lic.current_period_start).days), "next billing period"
    return calendar.monthrange(after.year, after.month)[1], "next month"


def _window_first(meter: Meter, day: datetime.date, holding: Holding) -> datetime.date:
    if meter.window == MeterWindow.ROLLING_DAYS:
        return day - DAY * (max(meter.window_days or 1, 1) - 1)
    if meter.window == MeterWindow.BILLING_PERIOD:
        start = holding.license.current_period_start.astimezone(datetime.UTC).date()
        if start <= day:
            return start
    return day.replace(day=1)


def _value(daily: dict[datetime.date, int], aggregation: str, first: datetime.date, last: datetime.date) -> int:
    values = [v for d, v in daily.items() if first <= d <= last]
    if not values:
        return 0
    return max(values) if aggregation != Aggregation.COUNT and aggregation != Aggregation.SUM else sum(values)


def meter_needs(
    tenant: Tenant,
    *,
    holding: Holding,
    catalog: CatalogSnapshot,
    now: datetime.datetime,
    lookback_weeks: int = DEFAULT_LOOKBACK_WEEKS,
    prefetched: Prefetched | None = None,
) -> list[MeterNeed]:
    """Projections for every metered (or seat) feature of the held product that has a meter."""
    features = [f for f in catalog.features.get(holding.tier.product_id, []) if f.pk in catalog.meters]
    if not features:
        return []
    meters = {catalog.meters[f.pk].pk: (f, catalog.meters[f.pk]) for f in features}
    today = now.astimezone(datetime.UTC).date()
    first = rollup_first_day(today, lookback_weeks)
    lic = holding.license
    batch = prefetched.daily.get(lic.account_id) if prefetched is not None and prefetched.today == today else None
    if batch is not None and set(meters) <= set(batch) and lookback_weeks <= DEFAULT_LOOKBACK_WEEKS:
        daily = {m: batch[m] for m in meters}
    else:
        daily = {m: {} for m in meters}
        rows = UsageRollup.objects.for_tenant(tenant).filter(
            account_id=lic.account_id, meter_id__in=list(meters), day__gte=first, day__lte=today
        )
        for meter_id, day, value in rows.values_list("meter_id", "day", "value"):
            daily[meter_id][day] = value
    windows = {}
    for meter_id, (_, meter) in meters.items():
        period = (lic.current_period_start, lic.current_period_end)
        windows[meter_id] = meter_window(window=meter.window, window_days=meter.window_days,
                                         billing_period=period, now=now)  # fmt: skip
    unique = [m for m, (_, meter) in meters.items() if meter.aggregation == Aggregation.UNIQUE_COUNT]
    unique_values: dict[int, int] = {}
    if unique:  # a period's unique count is not the sum of daily ones: one grouped query for all of them
        earliest = min(windows[m][0] for m in unique)
        seen: dict[int, set[str]] = defaultdict(set)
        for row in (
            UsageDistinctValue.objects.for_tenant(tenant)
            .filter(account_id=lic.account_id, meter_id__in=unique, day__gte=earliest, day__lte=today)
            .values("meter_id", "day", "value")
        ):
            if row["day"] >= windows[row["meter_id"]][0]:
                seen[row["meter_id"]].add(row["value"])
        unique_values = {m: len(v) for m, v in seen.items()}
    out = []
    for meter_id, (feature, meter) in meters.items():
        w_first, w_after, _, _ = windows[meter_id]
        series = daily[meter_id]
        used = unique_values.get(meter_id, 0) if meter_id in unique else _value(series, meter.aggregation,
                                                                                  w_first, today)  # fmt: skip
        period_days, period_word = _next_period_days(meter, holding=holding, after=w_after)
        projection = project_meter(
            daily=series,
            aggregation=meter.aggregation,
            today=today,
            period_days=period_days,
            window_value=used,
            window_first=w_first,
            window_days=max(1, (w_after - w_first).days),
            lookback_weeks=lookback_weeks,
        )
        ent = holding.entitlements.get(feature.key, OFF)
        threshold = 80
        near = 0
        if ent.enabled and ent.limit:
            for i in range(NEAR_DAYS):
                day = today - DAY * i
                value = _value(series, meter.aggregation, _window_first(meter, day, holding), day)
                near += int(value * 100 >= threshold * ent.limit)
        out.append(MeterNeed(meter, feature.key, feature.name, feature.unit or meter.name, used,
                             ent.limit, ent.enabled, projection, near, threshold, period_word))  # fmt: skip
    return out


def locked_features_from_signal(evidence: dict | None) -> list[str]:
    """Feature keys the signal's gate-hit facts are about (numbers.feature, else the fact's sentence)."""
    found = []
    for fact in (evidence or {}).get("facts", []) or []:
        if not isinstance(fact, dict) or fact.get("kind") != "gate_hits":
            continue
        numbers = fact.get("numbers") or {}
        key = numbers.get("feature") if isinstance(numbers, dict) else None
        if not key:
            match = _GATE_SENTENCE.search(str(fact.get("sentence", "")))
            key = match.group(1) if match else None
        if key and key not in found:
            found.append(str(key))
    return found


def needs_for(
    holding: Holding, meters: list[MeterNeed], *, locked: list[str], catalog: CatalogSnapshot
) -> tuple[Need, ...]:
    needs: list[Need] = []
    seat_features = [f.key for f in catalog.features.get(holding.tier.product_id, []) if f.kind == FeatureKind.SEATS]
    projected = {m.feature_key: m.projection.projected for m in meters}
    for m in meters:
        if m.projection.projected > 0 and m.feature_key not in seat_features:
            needs.append(Need(m.feature_key, m.projection.projected, "projected"))
    for key in seat_features:
        needs.append(Need(key, max(holding.license.seats, projected.get(key, 0)), "seats"))
    known = {f.key for f in catalog.features.get(holding.tier.product_id, [])}
    for key in locked:
        if key in known:
            needs.append(Need(key, None, "unlock"))
    return tuple(needs)
