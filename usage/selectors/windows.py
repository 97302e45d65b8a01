"""Usage from daily rollups, never raw events.

Windows are UTC days: a calendar month, the licence's billing period (from the UTC day it
started up to the day it ends), or the last N days including today.
"""

from __future__ import annotations

import datetime
from collections.abc import Iterable

from django.db.models import Count, Max, Q, Sum

from accounts.models import Tenant
from billing.proration import add_interval
from catalog.models import Aggregation, Meter, MeterWindow
from usage.models import UsageDistinctValue, UsageRollup
from usage.selectors.states import UTC, MeterUsage, Plan


def _day_start(day: datetime.date) -> datetime.datetime:
    return datetime.datetime(day.year, day.month, day.day, tzinfo=UTC)


def billing_period_days(
    billing_period: tuple | None, *, now: datetime.datetime
) -> tuple[datetime.date, datetime.date] | None:
    """(first day, day after the last) of the licence's billing period if it is in force at `now`,
    else None (the meter then counts by calendar month). The first day is the UTC day the period
    started, counted whole; the day it ends belongs to the next period."""
    if billing_period is None or not billing_period[0] <= now < billing_period[1]:
        return None
    start, end = billing_period
    first = start.astimezone(UTC).date()
    return first, max(end.astimezone(UTC).date(), first + datetime.timedelta(days=1))


def period_first_day_on(
    billing_period: tuple | None, *, interval: str, day: datetime.date, at: datetime.datetime
) -> datetime.date | None:
    """First day of the billing period a past `day` (cut at `at`, its end) counted in, or None (by calendar
    month). The current period while it is in force; a day before it began was in the period before it,
    which started one interval earlier (31 March -> 28/29 February, as billing's add_interval); earlier
    periods are not stored, so a day before that one counts by calendar month. The rules' evaluators and
    the staff usage chart both count past days this way."""
    days = billing_period_days(billing_period, now=at)
    if days is not None:
        return days[0]
    if billing_period is not None and at < billing_period[0]:
        step = "year" if interval == "year" else "month"
        previous = add_interval(billing_period[0].astimezone(UTC), step, -1).date()
        if previous <= day:
            return previous
    return None


def meter_window(
    *, window: str, window_days: int | None, billing_period: tuple | None, now: datetime.datetime
) -> tuple[datetime.date, datetime.date, datetime.datetime, datetime.datetime]:
    """(first day, day after the last, period start, period end) of a meter's current window."""
    today = now.astimezone(UTC).date()
    if window == MeterWindow.ROLLING_DAYS:
        first = today - datetime.timedelta(days=max(window_days or 1, 1) - 1)
        after = today + datetime.timedelta(days=1)
        return first, after, _day_start(first), _day_start(after)
    if window == MeterWindow.BILLING_PERIOD:
        days = billing_period_days(billing_period, now=now)
        if days is not None and billing_period is not None:
            return days[0], days[1], billing_period[0], billing_period[1]
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
