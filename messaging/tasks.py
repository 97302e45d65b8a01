"""Celery tasks of messaging: load by id, call one service. Idempotent, acks_late, enqueued on commit."""

from __future__ import annotations

import logging

from celery import shared_task

from accounts.models import Tenant
from accounts.tenancy import each_tenant, tenant_context

logger = logging.getLogger(__name__)


@shared_task(acks_late=True, bind=True, max_retries=5)
def deliver_message(self, tenant_id: int, message_id: int) -> None:
    """Send one queued email (a second run finds it sent, or started, and does nothing)."""
    from messaging.services import delivery

    with tenant_context(tenant_id):
        tenant = Tenant.objects.filter(pk=tenant_id).first()
        if tenant is None:
            return
        try:
            delivery.deliver_message(tenant, message_id=message_id)
        except Exception as exc:
            if self.request.retries >= self.max_retries:
                logger.exception("messaging.delivery_gave_up", extra={"message_id": message_id})
                delivery.give_up(tenant, message_id=message_id, error=str(exc))
                return
            raise self.retry(exc=exc, countdown=min(120, 10 * 2**self.request.retries)) from exc


@shared_task(acks_late=True)
def release_due_messages() -> int:
    """Beat: every tenant's held emails whose quiet hours ended go out (and lost queued ones again)."""
    from messaging.services.delivery import release_due_messages as release

    return sum(release(tenant) for tenant in each_tenant())
