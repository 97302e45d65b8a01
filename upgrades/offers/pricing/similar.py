"""Similar customers' outcomes: what happened to accounts like this one after they upgraded. Never invented.

"Like this one" is the same industry and the same size band. "After they upgraded" is measured from
billing's history (`LicenseChange` of kind upgrade that raised MRR, the latest per account, at least
a window old) and their own usage of the evidence's meter in the window after the upgrade against the
window before. Only accounts that used the meter before count (a change from nothing has no percent).
Shown only when at least `settings.similar_min_accounts` (never fewer than 5) such accounts exist;
otherwise None. The median is the lower median (conservative). Three queries, whatever the numbers.
"""

from __future__ import annotations

from datetime import date, datetime, timedelta
from decimal import Decimal
from typing import Any

from django.db.models import F, Q
from django.utils import timezone

from accounts.models import CustomerAccount, Tenant
from billing.models import LicenseChange
from catalog.models import Aggregation, Meter
from catalog.pricing import percent_of
from usage.models import UsageRollup

MIN_ACCOUNTS = 5
WINDOW_DAYS = 30
MAX_ACCOUNTS = 200  # the most recent upgrades measured; bounds the rollup query
UPGRADE_KINDS = ("upgrade",)


def _measure(values: list[int], additive: bool) -> int:
    if not values:
        return 0
    return sum(values) if additive else max(values)


def _lower_median(values: list[Decimal]) -> Decimal:
    ordered = sorted(values)
    return ordered[(len(ordered) - 1) // 2]


def similar_outcomes(
    tenant: Tenant,
    *,
    account: CustomerAccount,
    settings: Any,
    evidence: dict[str, Any],
    option: dict[str, Any] | None = None,
    now: datetime | None = None,
) -> dict[str, Any] | None:
    """The outcomes of similar accounts after their upgrade, or None when fewer than the minimum exist."""
    now = now or timezone.now()
    minimum = max(MIN_ACCOUNTS, int(getattr(settings, "similar_min_accounts", MIN_ACCOUNTS) or MIN_ACCOUNTS))
    meters = [m for m in (evidence or {}).get("meters") or [] if isinstance(m, dict) and m.get("meter")]
    if not account.industry or not account.size_band or not meters:
        return None
    evidence_meter = meters[0]
    meter = Meter.objects.for_tenant(tenant).filter(key=evidence_meter["meter"]).first()
    if meter is None:
        return None
    window = timedelta(days=WINDOW_DAYS)
    latest: dict[int, dict[str, Any]] = {}
    for row in (
        LicenseChange.objects.for_tenant(tenant)
        .filter(
            kind__in=UPGRADE_KINDS,
            mrr_after__gt=F("mrr_before"),
            effective_at__lte=now - window,
            account__industry=account.industry,
            account__size_band=account.size_band,
        )
        .exclude(account_id=account.pk)
        .order_by("-effective_at", "-id")
        .values("account_id", "effective_at", "to_state")[: MAX_ACCOUNTS * 4]
    ):
        if row["account_id"] not in latest and len(latest) < MAX_ACCOUNTS:
            latest[row["account_id"]] = row
    if len(latest) < minimum:
        return None
    days: dict[int, date] = {a: row["effective_at"].date() for a, row in latest.items()}
    window_q = Q()
    for account_id, day in days.items():
        window_q |= Q(account_id=account_id, day__gte=day - window, day__lt=day + window)
    daily: dict[int, list[tuple[date, int]]] = {}
    for account_id, day, value in (
        UsageRollup.objects.for_tenant(tenant)
        .filter(window_q, meter_id=meter.pk)
        .values_list("account_id", "day", "value")
    ):
        daily.setdefault(account_id, []).append((day, value))
    additive = meter.aggregation in (Aggregation.COUNT, Aggregation.SUM)
    changes: list[Decimal] = []
    grew = same_tier = 0
    tier = (option or {}).get("tier")
    for account_id, day in days.items():
        rows = daily.get(account_id, [])
        before = _measure([v for d, v in rows if d < day], additive)
        after = _measure([v for d, v in rows if d >= day], additive)
        if before <= 0:
            continue
        changes.append(percent_of(after - before, before))
        grew += after > before
        same_tier += bool(tier) and (latest[account_id]["to_state"] or {}).get("tier") == tier
    if len(changes) < minimum:
        return None
    median = _lower_median(changes)
    unit = evidence_meter.get("unit") or meter.name
    direction = "rose" if median >= 0 else "fell"
    sentence = (
        f"{len(changes)} {account.industry} customers of your size ({account.get_size_band_display()} people) "
        f"upgraded: in the {WINDOW_DAYS} days after, their {unit} {direction} by a median of "
        f"{abs(median).normalize():f} % against the {WINDOW_DAYS} days before ({grew} of {len(changes)} grew)."
    )
    return {
        "accounts": len(changes),
        "industry": account.industry,
        "size_band": account.size_band,
        "meter": meter.key,
        "unit": unit,
        "window_days": WINDOW_DAYS,
        "median_change_percent": str(median),
        "grew": grew,
        "same_tier": same_tier,
        "measure": "lower median of the change in usage, the window after the upgrade against the window before",
        "sentence": sentence,
    }
