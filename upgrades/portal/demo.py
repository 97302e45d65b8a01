"""Demo: the seeded offers' emails in the outbox, each with its working portal link.

Runs the real lifecycle sweep (upgrades.offers.services.messages) for the demo tenant, then delivers what
it queued in this process through messaging's delivery service (the same one the worker's task calls), so
the outbox holds the emails without a worker running. Idempotent: the sweep is keyed by cause, delivery
only claims queued messages; emails held for quiet hours go out when the beat releases them."""

from __future__ import annotations

from datetime import datetime

from django.utils import timezone

from accounts.models import Tenant
from accounts.tenancy import tenant_context
from messaging import selectors as messaging_selectors
from messaging.models import MessageState
from messaging.services import deliver_messages, release_due_messages
from upgrades.offers.services.messages import send_due_for_tenant


def seed_portal_demo(tenant: Tenant, *, now: datetime | None = None) -> int:
    """Send the demo tenant's due lifecycle emails (the sent offers') into the outbox. Returns how many
    offer emails went out this run (those held for the contact's quiet hours wait for their time)."""
    now = now or timezone.now()
    with tenant_context(tenant):
        send_due_for_tenant(tenant, now=now)
        release_due_messages(tenant, now=now)
        queued = list(
            messaging_selectors.list_messages(tenant)
            .filter(state=MessageState.QUEUED, channel="email", cause__startswith="offer:", send_started_at=None)
            .values_list("pk", flat=True)
        )
        return len(deliver_messages(tenant, message_ids=queued, now=now)) if queued else 0


__all__ = ["seed_portal_demo"]
