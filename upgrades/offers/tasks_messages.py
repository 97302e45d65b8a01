"""Celery tasks of lifecycle messages: beat fans out one task per tenant; each calls one service.

Safe to run twice or on two workers: every message is keyed by its cause in messaging (one
arbitrated insert), so a repeat admits nothing new. Due times are checked on each run (beat),
never scheduled as countdowns. Listed in upgrades/tasks.py so Celery's autodiscovery finds them.
"""

from __future__ import annotations

from celery import shared_task

LIMITS = {"soft_time_limit": 240, "time_limit": 300}


@shared_task(acks_late=True, **LIMITS)
def send_lifecycle_messages_for_tenant(tenant_id: int) -> int:
    """One tenant's due lifecycle messages (offer, trial, renewal, decline follow-up)."""
    from accounts.models import Tenant
    from upgrades.offers.services.messages import send_due_for_tenant

    tenant = Tenant.objects.filter(pk=tenant_id).first()
    return 0 if tenant is None else send_due_for_tenant(tenant)


@shared_task(acks_late=True, **LIMITS)
def send_lifecycle_messages() -> int:
    """Beat: one task per tenant (enqueued here: beat's own task has nothing to commit)."""
    from accounts.models import Tenant

    tenant_ids = list(Tenant.objects.order_by("pk").values_list("pk", flat=True))
    for tenant_id in tenant_ids:
        send_lifecycle_messages_for_tenant.delay(tenant_id)
    return len(tenant_ids)
