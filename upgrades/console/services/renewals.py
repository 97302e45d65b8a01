"""A renewal packet's year in numbers: usage growth per metered feature and feature adoption, from the same
usage history the account page charts (usage.selectors.overview)."""

from __future__ import annotations

from typing import Any

from accounts.models import CustomerAccount, Tenant

YEAR_DAYS = 365


def renewal_outcomes(tenant: Tenant, account: CustomerAccount) -> dict[str, Any]:
    from usage.selectors.overview import account_usage_overview

    try:
        overview = account_usage_overview(tenant, account=account, days=YEAR_DAYS)
    except Exception:  # an account without a plan or usage has no year to show
        return {}
    out: dict[str, Any] = {}
    used = 0
    for series in overview.series:
        daily = list(series.daily)
        if any(daily):
            used += 1
        first, last = (series.counted[0], series.counted[-1]) if series.counted else (0, 0)
        if first or last:
            growth = f" ({round((last - first) * 100 / first):+d} %)" if first else ""
            out[f"usage_{series.feature}"] = (
                f"{series.name}: {last:,} {series.unit} now, from {first:,} a year ago{growth}."
            )
    total = len(overview.series)
    if total:
        out["adoption"] = f"{used} of {total} metered features in use this year."
    return out
