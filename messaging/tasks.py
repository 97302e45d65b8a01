"""Celery tasks of messaging: load by id, call one service. Idempotent, acks_late, enqueued on commit."""

from __future__ import annotations

import logging

from celery import shared_task

from accounts.models import Tenant
from accounts.tenancy import each_tenant, tenant_context

logger = logging.getLogger(__name__)


@shared_task(acks_late=True, bind=True, max_retries=5)
def deliver_messages(self, tenant_id: int, message_ids: list[int]) -> None:
    """Send queued emails (a second run finds them sent, or started, and sends nothing again)."""
    from messaging.services import delivery

    with tenant_context(tenant_id):
        tenant = Tenant.objects.filter(pk=tenant_id).first()
        if tenant is None:
            return
        try:
            delivery.deliver_messages(tenant, message_ids=list(message_ids))
        except Exception as exc:
            if self.request.retries >= self.max_retries:
                logger.exception("messaging.delivery_gave_up", extra={"message_ids": message_ids[:20]})
                delivery.give_up(tenant, message_ids=list(message_ids), error=str(exc))
                return
            raise self.retry(exc=exc, countdown=min(120, 10 * 2**self.request.retries)) from exc


@shared_task(acks_late=True)
def deliver_message(tenant_id: int, message_id: int) -> None:
    """One email (kept for callers that name one message)."""
    deliver_messages.run(tenant_id, [message_id])


@shared_task(acks_late=True)
def send_to_contacts(
    tenant_id: int,
    contact_ids: list[int],
    template_key: str,
    cause: str,
    context: dict,
    category: str,
    channel: str = "email",
) -> int:
    """send_messages for a batch of contacts, from a sweep that fans out (renewals, a campaign, the bench).
    Safe to run twice: the (contact, template, cause) key makes a second run return the first messages."""
    from accounts.models import Contact
    from messaging.services import send_messages

    with tenant_context(tenant_id):
        tenant = Tenant.objects.filter(pk=tenant_id).first()
        if tenant is None:
            return 0
        contacts = list(Contact.objects.for_tenant(tenant).filter(pk__in=contact_ids).select_related("account"))
        send_messages(tenant, contacts=contacts, template_key=template_key, cause=cause, context=context,
                      category=category, channel=channel)  # fmt: skip
        return len(contacts)


@shared_task(acks_late=True)
def release_due_messages() -> int:
    """Beat: every tenant's held emails whose quiet hours ended go out (and lost queued ones again)."""
    from messaging.services.delivery import release_due_messages as release

    return sum(release(tenant) for tenant in each_tenant())
