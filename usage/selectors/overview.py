"""Staff pages: one account's entitlements table, grants, events and 90-day usage charts."""

from __future__ import annotations

import datetime
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from django.db.models import Count
from django.utils import timezone

from accounts.models import CustomerAccount, Tenant
from billing.models import License, LicenseGrant
from catalog.models import Aggregation, MeterWindow
from usage.models import FEATURE_GATE_HIT_EVENT, Event, UsageDistinctValue, UsageRollup
from usage.selectors.entitlements import get_account_entitlements, upgrade_hint
from usage.selectors.events import count_events, list_events
from usage.selectors.standings import GATE_HIT_LOOKBACK, _pressure
from usage.selectors.states import (
    UTC,
    AccountEntitlements,
    EntitlementState,
    FeatureRule,
    FeatureState,
    Plan,
    UpgradeHint,
)
from usage.selectors.windows import _day_start, meter_window, period_first_day_on


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
    """Per metered feature of the plan, its last `days` UTC days from rollups (two queries; a third reads the
    licence's interval when a meter counts per billing period).

    Each day's counted number uses the window the entitlement code uses (calendar month,
    billing period, rolling N days) cut at that day's end; the last point is today's, so it
    equals the entitlements table's `used`. A day before the current billing period counts from
    the period before it (`period_first_day_on`, as the trigger rules count it); earlier periods
    aren't stored, so a day before that one counts by calendar month.
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
    interval = ""
    if plan.billing_period is not None and any(r.window == MeterWindow.BILLING_PERIOD for r in rules):
        interval = (
            License.objects.for_tenant(tenant)
            .filter(account_id=plan.account_id)
            .values_list("interval", flat=True)
            .first()
            or ""
        )
    for rule in rules:
        for day in shown:
            first, after, _, _ = meter_window(
                window=rule.window, window_days=rule.window_days, billing_period=plan.billing_period, now=as_of(day)
            )
            if rule.window == MeterWindow.BILLING_PERIOD:
                past = period_first_day_on(plan.billing_period, interval=interval, day=day, at=as_of(day))
                first = past or first
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
