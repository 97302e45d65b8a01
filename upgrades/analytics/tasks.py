"""Beat task: refresh every tenant's dashboard snapshot (idempotent: it only rewrites a cache entry)."""

from __future__ import annotations

from celery import shared_task

from accounts.tenancy import each_tenant
from upgrades.analytics.snapshot import refresh_snapshot


@shared_task(acks_late=True, ignore_result=True)
def refresh_dashboards() -> int:
    count = 0
    for tenant in each_tenant():
        refresh_snapshot(tenant)
        count += 1
    return count
