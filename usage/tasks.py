"""Celery tasks of the usage app: load by id, call one service. Safe to run twice."""

from __future__ import annotations

from celery import shared_task
from django.db import OperationalError


@shared_task(acks_late=True, autoretry_for=(OperationalError,), retry_backoff=True, max_retries=6)
def rebuild_meter_rollups(tenant_id: int, meter_id: int) -> int:
    """A meter was created or changed: recompute its rollups from raw events (idempotent: a full recompute).

    A lost connection or a lock timeout retries with backoff: without it the meter would never be backfilled.
    """
    from accounts.models import Tenant
    from usage import services

    tenant = Tenant.objects.filter(pk=tenant_id).first()
    if tenant is None:
        return 0
    return services.rebuild_rollups(tenant, meter_ids=[meter_id])


@shared_task(acks_late=True)
def ensure_event_partitions() -> list[str]:
    """Daily: this month's and the next three months' event partitions exist (on PostgreSQL)."""
    from django.utils import timezone

    from usage.partitions import ensure_partitions_around

    return ensure_partitions_around(timezone.now().date(), months_back=0, months_ahead=3)


@shared_task(acks_late=True)
def retry_cache_invalidations() -> int:
    """Beat, every 30 s: replace cache tokens whose after-commit invalidation failed (Redis was down).

    Idempotent: replacing a token twice only costs a cache miss.
    """
    from accounts.tenancy import each_tenant
    from usage import cache

    # Inside each tenant's context: the pending rows sit behind row-level security like any other.
    return sum(cache.retry_pending_invalidations(tenant.pk) for tenant in each_tenant())
