"""Reads of messaging. Every query starts from `for_tenant(tenant)`; foreign and missing ids are NotFound."""

from __future__ import annotations

import datetime
from collections import Counter

from django.db.models import QuerySet

from accounts.models import Contact, CustomerAccount, Tenant
from messaging.errors import NotFound
from messaging.models import (
    Channel,
    Message,
    MessageEvent,
    MessageState,
    MessageTemplate,
    MessagingSettings,
    TemplateState,
)


def get_settings(tenant: Tenant) -> MessagingSettings:
    """The tenant's settings; the defaults (unsaved) until a PM saves some."""
    found = MessagingSettings.objects.for_tenant(tenant).first()
    return found if found is not None else MessagingSettings(tenant=tenant)


def list_templates(tenant: Tenant, *, key: str | None = None, state: str | None = None) -> QuerySet[MessageTemplate]:
    qs = MessageTemplate.objects.for_tenant(tenant)
    if key is not None:
        qs = qs.filter(key=key)
    if state is not None:
        qs = qs.filter(state=state)
    return qs.order_by("key", "variant", "-version")


def live_templates(tenant: Tenant, *, key: str, channel: str) -> list[MessageTemplate]:
    """The live variants of `key` on `channel`, by variant name."""
    return list(
        MessageTemplate.objects.for_tenant(tenant)
        .filter(key=key, channel=channel, state=TemplateState.LIVE)
        .order_by("variant")
    )


def get_template_for_tenant(tenant: Tenant, template_id: int) -> MessageTemplate:
    found = MessageTemplate.objects.for_tenant(tenant).filter(pk=template_id).first()
    if found is None:
        raise NotFound("No such template.")
    return found


def list_messages(
    tenant: Tenant, *, account: CustomerAccount | None = None, contact: Contact | None = None, cause: str | None = None
) -> QuerySet[Message]:
    qs = Message.objects.for_tenant(tenant).select_related("contact", "account", "template")
    if account is not None:
        qs = qs.filter(account=account)
    if contact is not None:
        qs = qs.filter(contact=contact)
    if cause is not None:
        qs = qs.filter(cause=cause)
    return qs.order_by("-created_at", "-id")


def get_message_for_tenant(tenant: Tenant, message_id: int) -> Message:
    found = Message.objects.for_tenant(tenant).filter(pk=message_id).select_related("contact", "account").first()
    if found is None:
        raise NotFound("No such message.")
    return found


def get_prompt_for_tenant(tenant: Tenant, prompt_id: object) -> Message:
    """An in-app prompt by id; another tenant's id, an email's id and junk are all NotFound."""
    if isinstance(prompt_id, bool) or not str(prompt_id).isdigit() or len(str(prompt_id)) > 18:
        raise NotFound("No such prompt.")
    found = (
        Message.objects.for_tenant(tenant)
        .filter(pk=int(str(prompt_id)), channel=Channel.IN_APP)
        .select_related("contact", "account")
        .first()
    )
    if found is None:
        raise NotFound("No such prompt.")
    return found


def message_funnel(tenant: Tenant, *, cause_prefix: str = "", since: datetime.datetime | None = None) -> dict[str, int]:
    """Counts for the offer funnel: messages sent, and distinct messages opened, clicked, shown, dismissed.

    `cause_prefix` narrows to e.g. "offer:" (every offer) or "offer:42" (one offer).
    """
    messages = Message.objects.for_tenant(tenant)
    if cause_prefix:
        messages = messages.filter(cause__startswith=cause_prefix)
    if since is not None:
        messages = messages.filter(created_at__gte=since)
    funnel: Counter[str] = Counter()
    funnel["sent"] = messages.filter(state__in=[MessageState.SENT, MessageState.DISMISSED]).count()
    funnel["suppressed"] = messages.filter(state=MessageState.SUPPRESSED).count()
    events = MessageEvent.objects.for_tenant(tenant).filter(message__in=messages)
    for kind in ("opened", "clicked", "shown", "dismissed", "bounced", "complained", "unsubscribed"):
        funnel[kind] = events.filter(kind=kind).values("message").distinct().count()
    return dict(funnel)


def list_message_events(tenant: Tenant, *, message: Message) -> QuerySet[MessageEvent]:
    return MessageEvent.objects.for_tenant(tenant).filter(message=message).order_by("created_at", "id")
