"""django-anymail's tracking signal: a provider's verified webhook reports a bounce or a complaint.

Anymail verifies the webhook (its shared secret, and the provider's signature where it has one) before
the signal fires. The tenant comes from the metadata we attached at send (messaging.services.delivery),
or, failing that, from the provider's message id (a registered tenant lookup, accounts.rls).
"""

from __future__ import annotations

import logging
from typing import Any

from accounts.models import Tenant
from accounts.tenancy import lookup_tenant_ids, tenant_context

logger = logging.getLogger(__name__)
HARD = {"bounced": "bounced", "complained": "complained", "rejected": "bounced"}


def on_tracking(sender: Any, event: Any, esp_name: str = "", **kwargs: Any) -> None:
    from messaging.models import Message
    from messaging.services.preferences import record_bounce

    kind = HARD.get(str(getattr(event, "event_type", "")))
    recipient = getattr(event, "recipient", None)
    if kind is None or not recipient:
        return
    if kind == "bounced" and str(getattr(event, "reject_reason", "") or "") in ("timed_out", "other"):
        return  # a soft bounce: the provider retries; only hard bounces stop sends
    metadata = getattr(event, "metadata", None) or {}
    tenant_ids: list[int] = []
    message_id: int | None = None
    if str(metadata.get("tw_tenant", "")).isdigit():
        tenant_ids = [int(metadata["tw_tenant"])]
        message_id = int(metadata["tw_message"]) if str(metadata.get("tw_message", "")).isdigit() else None
    elif getattr(event, "message_id", None):
        tenant_ids = lookup_tenant_ids(Message, "provider_message_id", str(event.message_id))
    for tenant_id in tenant_ids:
        with tenant_context(tenant_id):
            tenant = Tenant.objects.filter(pk=tenant_id).first()
            if tenant is None:
                continue
            if message_id is None and getattr(event, "message_id", None):
                message_id = (
                    Message.objects.for_tenant(tenant)
                    .filter(provider_message_id=str(event.message_id))
                    .values_list("pk", flat=True)
                    .first()
                )
            detail = str(getattr(event, "description", "") or getattr(event, "mta_response", "") or esp_name)
            record_bounce(tenant, email=recipient, kind=kind, detail=detail, message_id=message_id)
            logger.info("messaging.address_suppressed", extra={"tenant_id": tenant_id, "kind": kind})
