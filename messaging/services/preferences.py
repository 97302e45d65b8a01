"""A contact's choices (unsubscribe, preferences), bounces and complaints, opens and clicks.

Everything here is honoured at once: an unsubscribe or a bounce also suppresses the messages of that
contact (or address) that are still queued or held, with the reason.
"""

from __future__ import annotations

import datetime

from django.db import transaction
from django.utils import timezone

from accounts.models import Contact, Tenant
from accounts.services import record_audit
from messaging.models import (
    Category,
    Channel,
    ContactPreference,
    EmailSuppression,
    Message,
    MessageEvent,
    MessageEventKind,
    MessageState,
    SuppressedReason,
)

PENDING = (MessageState.QUEUED, MessageState.HELD)


def _preference(tenant: Tenant, contact: Contact) -> ContactPreference:
    pref, _ = (
        ContactPreference.objects.for_tenant(tenant).select_for_update().get_or_create(tenant=tenant, contact=contact)
    )
    return pref


def _suppress_pending(tenant: Tenant, messages, reason: str) -> int:
    return messages.filter(state__in=PENDING, send_started_at__isnull=True).update(
        state=MessageState.SUPPRESSED, suppressed_reason=reason, counted_at=None, updated_at=timezone.now()
    )


@transaction.atomic
def unsubscribe(tenant: Tenant, *, contact: Contact, source: str, now: datetime.datetime | None = None) -> None:
    """No more upgrade messages to this contact (transactional mail still goes). Idempotent."""
    now = now or timezone.now()
    pref = _preference(tenant, contact)
    if pref.unsubscribed_at is None:
        pref.unsubscribed_at = now
        pref.save(update_fields=["unsubscribed_at", "updated_at"])
        record_audit(tenant, actor=f"contact:{contact.pk}", action="contact.unsubscribed", obj=contact,
                     after={"source": source})  # fmt: skip
    pending = Message.objects.for_tenant(tenant).filter(contact=contact, category=Category.UPGRADE)
    _suppress_pending(tenant, pending.exclude(channel=Channel.CSM), SuppressedReason.UNSUBSCRIBED)


@transaction.atomic
def update_preferences(
    tenant: Tenant, *, contact: Contact, upgrade_email: bool, in_app: bool, subscribed: bool, time_zone: str = ""
) -> ContactPreference:
    """What the preferences page saves. `subscribed=False` is the same as unsubscribing."""
    pref = _preference(tenant, contact)
    before = {"upgrade_email": pref.upgrade_email, "in_app": pref.in_app, "subscribed": pref.unsubscribed_at is None}
    pref.upgrade_email, pref.in_app = upgrade_email, in_app
    if time_zone:
        pref.time_zone = time_zone
    pref.full_clean(exclude=["tenant", "contact"])
    if subscribed:
        pref.unsubscribed_at = None
    elif pref.unsubscribed_at is None:
        pref.unsubscribed_at = timezone.now()
    pref.save()
    after = {"upgrade_email": upgrade_email, "in_app": in_app, "subscribed": subscribed}
    record_audit(tenant, actor=f"contact:{contact.pk}", action="contact.preferences_changed", obj=contact,
                 before=before, after=after)  # fmt: skip
    pending = Message.objects.for_tenant(tenant).filter(contact=contact, category=Category.UPGRADE)
    if not subscribed:
        _suppress_pending(tenant, pending.exclude(channel=Channel.CSM), SuppressedReason.UNSUBSCRIBED)
    if not upgrade_email:
        _suppress_pending(tenant, pending.filter(channel=Channel.EMAIL), SuppressedReason.OPTED_OUT)
    if not in_app:
        _suppress_pending(tenant, pending.filter(channel=Channel.IN_APP), SuppressedReason.OPTED_OUT)
    return pref


@transaction.atomic
def record_bounce(
    tenant: Tenant, *, email: str, kind: str, detail: str = "", message_id: int | None = None
) -> EmailSuppression:
    """A hard bounce or a complaint: the address gets nothing more from this tenant, transactional included."""
    if kind not in ("bounced", "complained"):
        raise ValueError(kind)
    email = email.strip().lower()
    found, created = EmailSuppression.objects.for_tenant(tenant).get_or_create(
        tenant=tenant, email=email, defaults={"reason": kind, "detail": detail[:2000]}
    )
    if not created and kind == "complained" and found.reason != kind:
        found.reason = kind
        found.save(update_fields=["reason"])
    reason = SuppressedReason.BOUNCED if kind == "bounced" else SuppressedReason.COMPLAINED
    to_address = Message.objects.for_tenant(tenant).filter(channel=Channel.EMAIL, to_email__iexact=email)
    _suppress_pending(tenant, to_address, reason)
    if message_id is not None:
        message = to_address.filter(pk=message_id).first()
        if message is not None:
            if kind == "bounced" and message.state == MessageState.SENT:
                to_address.filter(pk=message.pk).update(state=MessageState.BOUNCED, updated_at=timezone.now())
            event = MessageEventKind.BOUNCED if kind == "bounced" else MessageEventKind.COMPLAINED
            MessageEvent.objects.create(tenant=tenant, message=message, kind=event)
    return found


def record_open(tenant: Tenant, *, message_id: int) -> None:
    message = Message.objects.for_tenant(tenant).filter(pk=message_id, channel=Channel.EMAIL).first()
    if message is not None and message.state in (MessageState.SENT, MessageState.BOUNCED):
        MessageEvent.objects.create(tenant=tenant, message=message, kind=MessageEventKind.OPENED)


def record_click(tenant: Tenant, *, message_id: int, index: int) -> str | None:
    """The URL recorded for this message at `index` (the only place the redirect may go), or None."""
    message = Message.objects.for_tenant(tenant).filter(pk=message_id).first()
    if message is None or not 0 <= index < len(message.links or []):
        return None
    url = str(message.links[index])
    if not url.startswith(("https://", "http://")):
        return None
    MessageEvent.objects.create(tenant=tenant, message=message, kind=MessageEventKind.CLICKED, url=url[:2000])
    return url
