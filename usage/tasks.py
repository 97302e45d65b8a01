"""Celery tasks of the usage app: load by id, call one service. Safe to run twice."""

from __future__ import annotations

from celery import shared_task


@shared_task(acks_late=True)
def rebuild_meter_rollups(tenant_id: int, meter_id: int) -> int:
    """A meter was created or changed: recompute its rollups from raw events (idempotent: a full recompute)."""
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
