"""The demo's revenue history: idempotent, within each licence's tier and seats, and enough for the charts."""

from __future__ import annotations

import pandas as pd
import pytest
from django.core.cache import cache

from accounts.tenancy import tenant_context
from billing.models import License, LicenseChange
from upgrades.analytics.demo import ACTOR, seed_analytics_demo
from upgrades.analytics.services import revenue_metrics
from upgrades.analytics.snapshot import cache_key

pytestmark = pytest.mark.django_db


def test_demo_history_is_idempotent_consistent_and_shows_months(workspaces):
    a, _ = workspaces
    tenant = a.world.tenant
    cache.delete(cache_key(tenant.pk))
    added = seed_analytics_demo(tenant)
    assert added > 0
    assert seed_analytics_demo(tenant) == 0
    with tenant_context(tenant):
        for change in LicenseChange.objects.filter(tenant=tenant, actor_label=ACTOR).select_related("license"):
            license = change.license
            assert change.to_state["tier"] == license.tier.key
            assert change.to_state["seats"] <= license.seats and change.mrr_after <= license.mrr
        end = pd.Period(pd.Timestamp.now(tz="UTC").strftime("%Y-%m"), freq="M")
        periods = revenue_metrics(tenant, start=end - 23, end=end)
        paid = License.objects.filter(tenant=tenant, mrr__gt=0).exclude(status="trialing")
        assert sum(p["mrr_end"] for p in periods if p["period"] == str(end)) == sum(lic.mrr for lic in paid)
    assert sum(1 for p in periods if p["new"] > 0) >= 2  # paid months spread over the history
    assert cache.get(cache_key(tenant.pk)) is not None  # the dashboard is ready at once
    cache.delete(cache_key(tenant.pk))
