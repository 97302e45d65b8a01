"""The dashboard's cached snapshot: computed by a beat task per tenant, read by the page (and its CSVs).

The page and every CSV render from the same snapshot, so an export always equals what the page shows.
"""

from __future__ import annotations

import pandas as pd
from django.core.cache import cache
from django.utils import timezone

from accounts.models import Tenant
from upgrades.analytics import adoption, funnel, rules_live
from upgrades.analytics.services import revenue_report

MONTHS = 12
GROUPED_MONTHS = 3  # the by-segment, cohort and tier tables show the latest months
GROUPED = ("segment", "cohort", "tier")
TTL = 24 * 60 * 60  # a stale snapshot beats none; the beat task refreshes it every few minutes
VERSION = 5


def cache_key(tenant_id: int) -> str:
    return f"analytics:dashboard:v{VERSION}:{tenant_id}"


def build_snapshot(tenant: Tenant, *, now=None) -> dict:
    """Every figure of the dashboard for `tenant` (run inside its tenant context)."""
    now = now or timezone.now()
    end = pd.Period(now.strftime("%Y-%m"), freq="M")
    start = end - (MONTHS - 1)
    recent = str(end - (GROUPED_MONTHS - 1))
    report = revenue_report(tenant, start=start, end=end, group_bys=(None, *GROUPED))
    return {
        "built_at": now.isoformat(),
        "from": str(start),
        "to": str(end),
        "revenue": report[None],
        **{f"by_{key}": [row for row in report[key] if row["period"] >= recent] for key in GROUPED},
        "funnel": funnel.offer_funnel(tenant),
        "declines": funnel.declines_by_reason(tenant),
        "feedback": funnel.feedback_by_segment(tenant),
        "adoption": adoption.feature_adoption(tenant, now=now),
        "rules": rules_live.rules_backtest_vs_live(tenant, now=now),
        "trials": funnel.trial_conversion(tenant),
        "time_to_upgrade": funnel.time_to_upgrade(tenant),
    }


def refresh_snapshot(tenant: Tenant) -> dict:
    snapshot = build_snapshot(tenant)
    cache.set(cache_key(tenant.pk), snapshot, TTL)
    return snapshot


def get_snapshot(tenant: Tenant) -> dict:
    """The cached snapshot; built now (and cached) only when there is none yet."""
    snapshot = cache.get(cache_key(tenant.pk))
    return snapshot if snapshot is not None else refresh_snapshot(tenant)
