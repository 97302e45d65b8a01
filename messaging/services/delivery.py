"""Delivering an admitted email through Django's mail (EMAIL_URL: SMTP, an anymail provider, the outbox).

Invariant: never twice. The worker locks the row and commits `send_started_at` before handing the
email to the backend; a redelivered task that finds it started but not sent doesn't know whether the
email left, so it marks it failed ('interrupted') instead of sending again. Consent and bounces are
checked again here (an unsubscribe between admission and delivery is honoured); the cap is not: the
message took its slot when admitted.
"""

from __future__ import annotations

import datetime
import logging

from django.conf import settings
from django.core.mail import EmailMultiAlternatives, get_connection
from django.db import transaction
from django.template.loader import render_to_string
from django.urls import reverse
from django.utils import timezone
from django.utils.html import escape

from accounts.models import Tenant
from accounts.tenancy import tenant_context
from messaging import tokens
from messaging.models import Channel, Message, MessageEvent, MessageEventKind, MessageState, MessagingSettings
from messaging.selectors import get_settings
from messaging.services import policy
from messaging.services.context import site_url
from messaging.services.sending import _HREF, enqueue_deliveries

logger = logging.getLogger(__name__)
TENANT_HEADER = "X-Tierwise-Tenant"
MESSAGE_HEADER = "X-Tierwise-Message"
# A queued email whose task was lost (broker restart) is enqueued again by the sweep after this.
REQUEUE_AFTER = datetime.timedelta(minutes=5)


def click_url(message: Message, index: int) -> str:
    token = tokens.make(tokens.CLICK, tenant_id=message.tenant_id, object_id=message.pk, index=index)
    return site_url(reverse("messaging-click", args=[token]))


def open_url(message: Message) -> str:
    token = tokens.make(tokens.OPEN, tenant_id=message.tenant_id, object_id=message.pk)
    return site_url(reverse("messaging-open", args=[token]))


def tracked_html(message: Message) -> str:
    """The HTML with each recorded link sent through the click redirect."""
    links = list(message.links or [])

    def swap(match):
        url = match.group(2).replace("&amp;", "&")
        if url not in links:
            return match.group(0)
        return match.group(0).replace(match.group(2), escape(click_url(message, links.index(url))))

    return _HREF.sub(swap, message.rendered.get("html", ""))


def build_email(message: Message, tenant: Tenant, *, prefs: MessagingSettings | None = None) -> EmailMultiAlternatives:
    prefs = prefs or get_settings(tenant)
    rendered = message.rendered
    sender_address = prefs.from_email or _address(settings.DEFAULT_FROM_EMAIL)
    sender = f'"{(prefs.from_name or tenant.name).replace(chr(34), "")}" <{sender_address}>'
    unsubscribe = rendered["unsubscribe_url"]
    html = render_to_string(
        "messaging/email_layout.html",
        {"body": tracked_html(message), "brand_name": prefs.from_name or tenant.name, "logo_url": prefs.logo_url,
         "colour": prefs.brand_colour, "preferences_url": rendered["preferences_url"], "unsubscribe_url": unsubscribe,
         "open_url": open_url(message), "transactional": message.category == "transactional"},
    )  # fmt: skip
    text = rendered["text"].rstrip() + f"\n\n--\nEmail preferences: {rendered['preferences_url']}\n"
    if message.category != "transactional":
        text += f"Unsubscribe: {unsubscribe}\n"
    headers = {
        TENANT_HEADER: tenant.slug,
        MESSAGE_HEADER: str(message.pk),
        # RFC 8058: one-click unsubscribe by POST to this https URL, no login, no confirmation page.
        "List-Unsubscribe": f"<{unsubscribe}>",
        "List-Unsubscribe-Post": "List-Unsubscribe=One-Click",
    }
    email = EmailMultiAlternatives(
        subject=rendered["subject"], body=text, from_email=sender, to=[message.to_email], headers=headers,
        reply_to=[prefs.reply_to] if prefs.reply_to else None,
    )  # fmt: skip
    email.attach_alternative(html, "text/html")
    # django-anymail reads these (ignored by SMTP): the provider's webhooks hand them back with a bounce.
    email.metadata = {"tw_tenant": str(tenant.pk), "tw_message": str(message.pk)}  # type: ignore[attr-defined]
    email.tags = [message.template_key or "message"]  # type: ignore[attr-defined]
    return email


def _address(value: str) -> str:
    return value.rsplit("<", 1)[-1].rstrip(">").strip() if "<" in value else value.strip()


def _claim(tenant: Tenant, message_ids: list[int], now: datetime.datetime, prefs: MessagingSettings) -> list[Message]:
    """Lock the messages, check consent and bounces again, and mark the sends started (committed)."""
    with transaction.atomic():
        messages = list(
            Message.objects.for_tenant(tenant)
            .select_for_update(of=("self",))
            .select_related("contact")
            .filter(pk__in=message_ids, channel=Channel.EMAIL, state=MessageState.QUEUED)
            .order_by("pk")
        )
        interrupted = [m.pk for m in messages if m.send_started_at is not None]
        if interrupted:
            Message.objects.for_tenant(tenant).filter(pk__in=interrupted).update(
                state=MessageState.FAILED, error="Interrupted mid-send: not sent again (it may have left).",
                updated_at=now,
            )  # fmt: skip
        due = [m for m in messages if m.send_started_at is None and (m.due_at is None or m.due_at <= now)]
        by_account: dict[int, list[Message]] = {}
        for message in due:
            by_account.setdefault(message.account_id, []).append(message)
        claimed, suppressed = [], []
        for account_id, group in by_account.items():
            facts = policy.gather_facts(tenant, account_id=account_id, contacts=[m.contact for m in group],
                                        prefs=prefs, now=now)  # fmt: skip
            for message in group:
                reason = policy.consent_from(facts, tenant=tenant, contact=message.contact, channel=message.channel,
                                             category=message.category, prefs=prefs)  # fmt: skip
                if reason:
                    message.state, message.suppressed_reason, message.counted_at = MessageState.SUPPRESSED, reason, None
                    suppressed.append(message)
                else:
                    message.send_started_at = now
                    claimed.append(message)
        if suppressed:
            Message.objects.bulk_update(suppressed, ["state", "suppressed_reason", "counted_at"])
        if claimed:
            Message.objects.for_tenant(tenant).filter(pk__in=[m.pk for m in claimed]).update(
                send_started_at=now, updated_at=now
            )
        return claimed


def deliver_messages(tenant: Tenant, *, message_ids: list[int], now: datetime.datetime | None = None) -> list[Message]:
    """Send queued emails over one connection; returns those sent. Safe to call twice. Raises the first
    backend error after trying the rest (the task retries; what was sent is not sent again)."""
    now = now or timezone.now()
    prefs = get_settings(tenant)
    claimed = _claim(tenant, list(message_ids), now, prefs)
    if not claimed:
        return []
    sent: list[Message] = []
    failure: Exception | None = None
    connection = get_connection()
    # One commit per batch; a refused email writes nothing and stays queued. With the
    # outbox backend the stored emails and `sent` commit together. If the commit fails after the backend
    # took them, `send_started_at` (committed by _claim) keeps them from being sent again.
    with connection, transaction.atomic():
        for message in claimed:
            email = build_email(message, tenant, prefs=prefs)
            email.connection = connection
            try:
                connection.send_messages([email])  # a refusal writes nothing (the outbox rolls back its savepoint)
            except Exception as exc:
                # The backend refused it (nothing left): free the claim so the task's retry sends it.
                Message.objects.for_tenant(tenant).filter(pk=message.pk, sent_at__isnull=True).update(
                    send_started_at=None, error=str(exc)[:2000]
                )
                failure = failure or exc
                continue
            status = getattr(email, "anymail_status", None)
            provider_id = str(getattr(status, "message_id", "") or "")[:255] if status is not None else ""
            message.state, message.sent_at, message.provider_message_id, message.error = (
                MessageState.SENT, timezone.now(), provider_id, "",
            )  # fmt: skip
            message.save(update_fields=["state", "sent_at", "provider_message_id", "error", "updated_at"])
            sent.append(message)
        MessageEvent.objects.bulk_create(
            [MessageEvent(tenant=tenant, message=m, kind=MessageEventKind.SENT) for m in sent]
        )
    if failure is not None:
        raise failure
    return sent


def deliver_message(tenant: Tenant, *, message_id: int, now: datetime.datetime | None = None) -> Message | None:
    """Send one queued email (see deliver_messages)."""
    sent = deliver_messages(tenant, message_ids=[message_id], now=now)
    return sent[0] if sent else None


def give_up(tenant: Tenant, *, message_ids: list[int], error: str) -> None:
    """The task's last retry failed: what is still queued is failed, with the error, and not tried again."""
    Message.objects.for_tenant(tenant).filter(
        pk__in=message_ids, state=MessageState.QUEUED, sent_at__isnull=True
    ).update(state=MessageState.FAILED, error=error[:2000], send_started_at=None)


def release_due_messages(tenant: Tenant, *, now: datetime.datetime | None = None) -> int:
    """Held emails whose quiet hours ended are queued and enqueued; lost queued ones enqueued again."""
    now = now or timezone.now()
    count = 0
    with tenant_context(tenant), transaction.atomic():
        held = (
            Message.objects.for_tenant(tenant)
            .select_for_update(skip_locked=True)
            .filter(state=MessageState.HELD, due_at__lte=now)
        )
        released = list(held[:5000])
        for message in released:
            message.state = MessageState.QUEUED
            message.save(update_fields=["state", "updated_at"])
        enqueue_deliveries(released)
        count = len(released)
        stale = Message.objects.for_tenant(tenant).filter(
            state=MessageState.QUEUED, channel=Channel.EMAIL, send_started_at__isnull=True,
            due_at__lte=now - REQUEUE_AFTER, updated_at__lte=now - REQUEUE_AFTER,
        )  # fmt: skip
        lost = list(stale[:5000])
        Message.objects.for_tenant(tenant).filter(pk__in=[m.pk for m in lost]).update(updated_at=now)
        enqueue_deliveries(lost)
    return count
