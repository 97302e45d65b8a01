"""send_message, record_outreach, note_decline: admitting a message, once, under the cap.

Invariant: a message is ONE arbitrated write: INSERT ... ON CONFLICT DO NOTHING on the unique
(tenant, contact, template_key, cause), then a read of the row that won. A retried task, a second
worker or a double click gets the first row back and sends nothing more. The cap decision is taken
under the account's lock (policy.lock_account) in the same transaction as the insert.
"""

from __future__ import annotations

import datetime
import re
import uuid
import zlib
from typing import Any

import jinja2
from django.db import transaction
from django.utils import timezone

from accounts.models import Contact, CustomerAccount, Tenant
from accounts.services import Actor, record_audit
from messaging import rendering
from messaging.errors import InvalidInput, NotFound
from messaging.models import (
    Category,
    Channel,
    DeclineQuiet,
    Message,
    MessageState,
    MessageTemplate,
    SuppressedReason,
)
from messaging.selectors import get_settings, live_templates
from messaging.services import policy
from messaging.services.context import base_context

_HREF = re.compile(r"""<a\b[^>]*?\bhref\s*=\s*(["'])(https?://[^"'<>\s]+)\1""", re.IGNORECASE)


def _check(tenant: Tenant, *, contact: Contact, category: str, channel: str) -> None:
    if contact.tenant_id != tenant.pk:
        raise NotFound("No such contact.")
    if category not in Category.values:
        raise InvalidInput(f"category must be one of {', '.join(Category.values)}.", details={"category": [category]})
    if channel not in (Channel.EMAIL, Channel.IN_APP):
        raise InvalidInput("channel must be email or in_app.", details={"channel": [channel]})


def pick_variant(templates: list[MessageTemplate], *, contact: Contact, variant: str | None) -> MessageTemplate | None:
    """The named variant, or a stable split by contact (the same person always sees the same variant)."""
    if not templates:
        return None
    if variant is not None:
        return next((t for t in templates if t.variant == variant), None)
    return templates[zlib.crc32(f"{templates[0].key}:{contact.pk}".encode()) % len(templates)]


def tracked_links(html: str, *, exclude: tuple[str, ...]) -> list[str]:
    """The http(s) links of the email, in order and once each: the only targets the click redirect allows."""
    links: list[str] = []
    for match in _HREF.finditer(html):
        url = match.group(2).replace("&amp;", "&")
        if url not in links and not url.startswith(exclude):
            links.append(url)
    return links


def render_for(template: MessageTemplate, *, contact: Contact, context: dict[str, Any], brand: dict) -> dict[str, Any]:
    """The rendered parts for one contact. Raises jinja2 errors (a missing variable, a sandbox refusal)."""
    full = {**context, **base_context(template.tenant, contact=contact, brand_=brand)}
    if template.channel == Channel.EMAIL:
        html = rendering.render(template.html_body, full, html=True)
        text = rendering.render(template.text_body, full, html=False) if template.text_body else ""
        return {
            "subject": " ".join(rendering.render(template.subject, full, html=False).split())[:300],
            "html": html,
            "text": text or rendering.html_to_text(html),
            "unsubscribe_url": full["unsubscribe_url"],
            "preferences_url": full["preferences_url"],
        }
    return {
        "title": rendering.render(template.title, full, html=False),
        "body": rendering.render(template.body, full, html=False),
        "cta_label": rendering.render(template.cta_label, full, html=False),
        "cta_url": rendering.render(template.cta_url, full, html=False),
    }


def _existing(tenant: Tenant, *, contact: Contact, template_key: str, cause: str) -> Message | None:
    return Message.objects.for_tenant(tenant).filter(contact=contact, template_key=template_key, cause=cause).first()


def _insert(row: Message) -> Message:
    """INSERT ... ON CONFLICT DO NOTHING, then the row that won (ours if `token` matches)."""
    Message.objects.bulk_create([row], ignore_conflicts=True)
    return Message.objects.for_tenant(row.tenant_id).get(
        contact_id=row.contact_id, template_key=row.template_key, cause=row.cause
    )


def send_message(
    tenant: Tenant,
    *,
    contact: Contact,
    template_key: str,
    cause: str,
    context: dict[str, Any],
    category: str,
    channel: str = Channel.EMAIL,
    variant: str | None = None,
    now: datetime.datetime | None = None,
) -> Message:
    """Admit one message to `contact` (see messaging/__init__.py for the contract)."""
    _check(tenant, contact=contact, category=category, channel=channel)
    if not cause or len(cause) > 200:
        raise InvalidInput("cause must be 1 to 200 characters.", details={"cause": [cause[:200]]})
    existing = _existing(tenant, contact=contact, template_key=template_key, cause=cause)
    if existing is not None:
        return existing
    now = now or timezone.now()
    prefs = get_settings(tenant)
    template = pick_variant(live_templates(tenant, key=template_key, channel=channel), contact=contact, variant=variant)
    row = Message(
        tenant=tenant, contact=contact, account_id=contact.account_id, template=template, template_key=template_key,
        variant=template.variant if template else (variant or ""), cause=cause, channel=channel, category=category,
        placement=template.placement if template else "", to_email=contact.email if channel == Channel.EMAIL else "",
        context=context, token=uuid.uuid4().hex, created_at=now,
    )  # fmt: skip
    if template is None:
        row.state, row.suppressed_reason = MessageState.SUPPRESSED, SuppressedReason.NO_LIVE_TEMPLATE
    else:
        try:
            row.rendered = render_for(template, contact=contact, context=context, brand=_brand(tenant, prefs))
        except (jinja2.TemplateError, TypeError, ValueError) as exc:
            row.state, row.error = MessageState.FAILED, f"Rendering failed: {exc}"
        else:
            if channel == Channel.EMAIL:
                exclude = (row.rendered["unsubscribe_url"], row.rendered["preferences_url"])
                row.links = tracked_links(row.rendered["html"], exclude=exclude)
            else:
                row.links = [row.rendered["cta_url"]] if row.rendered["cta_url"] else []
    with transaction.atomic():
        if not row.state:
            if category == Category.UPGRADE:
                policy.lock_account(tenant, contact.account_id)
            decision = policy.decide(tenant, contact=contact, channel=channel, category=category, prefs=prefs,
                                     preference=policy.preference_for(tenant, contact), now=now)  # fmt: skip
            row.state, row.suppressed_reason, row.due_at = decision.state, decision.reason, decision.due_at
            row.counted_at = now if decision.counted else None
        won = _insert(row)
        if won.token == row.token and won.channel == Channel.EMAIL and won.state == MessageState.QUEUED:
            enqueue_delivery(won)
    return won


def _brand(tenant: Tenant, prefs: Any) -> dict[str, str]:
    return {"name": prefs.from_name or tenant.name, "logo_url": prefs.logo_url, "colour": prefs.brand_colour}


def enqueue_delivery(message: Message) -> None:
    from messaging import tasks

    tenant_id, message_id = message.tenant_id, message.pk
    transaction.on_commit(lambda: tasks.deliver_message.delay(tenant_id, message_id))


def record_outreach(
    tenant: Tenant, *, contact: Contact, cause: str, actor: Actor, note: str = "", at: datetime.datetime | None = None
) -> Message:
    """A CSM's personal outreach, counted against the same cap. Call it BEFORE reaching out: a
    `suppressed` answer (with its reason: the cap, an unsubscribe, a decline's quiet period) means don't."""
    _check(tenant, contact=contact, category=Category.UPGRADE, channel=Channel.EMAIL)
    existing = _existing(tenant, contact=contact, template_key="", cause=cause)
    if existing is not None:
        return existing
    at = at or timezone.now()
    prefs = get_settings(tenant)
    row = Message(tenant=tenant, contact=contact, account_id=contact.account_id, template_key="", cause=cause,
                  channel=Channel.CSM, category=Category.UPGRADE, to_email=contact.email, context={"note": note},
                  token=uuid.uuid4().hex, created_at=at)  # fmt: skip
    with transaction.atomic():
        policy.lock_account(tenant, contact.account_id)
        decision = policy.decide(tenant, contact=contact, channel=Channel.CSM, category=Category.UPGRADE, prefs=prefs,
                                 preference=policy.preference_for(tenant, contact), now=at)  # fmt: skip
        row.state, row.suppressed_reason = decision.state, decision.reason
        row.counted_at = at if decision.counted else None
        row.sent_at = at if decision.state == MessageState.SENT else None
        won = _insert(row)
        if won.token == row.token:
            record_audit(tenant, actor=actor, action="message.outreach_recorded", obj=won,
                         after={"state": won.state, "reason": won.suppressed_reason})  # fmt: skip
    return won


@transaction.atomic
def note_decline(tenant: Tenant, *, account: CustomerAccount, at: datetime.datetime | None = None) -> DeclineQuiet:
    """An account declined an offer: no upgrade message (email, prompt) until the tenant's quiet days
    have passed. Messages already held or queued are suppressed when their delivery comes round."""
    if account.tenant_id != tenant.pk:
        raise NotFound("No such account.")
    at = at or timezone.now()
    until = at + datetime.timedelta(days=get_settings(tenant).decline_quiet_days)
    quiet, created = (
        DeclineQuiet.objects.for_tenant(tenant)
        .select_for_update()
        .get_or_create(tenant=tenant, account=account, defaults={"declined_at": at, "quiet_until": until})
    )
    if not created and until > quiet.quiet_until:
        quiet.declined_at, quiet.quiet_until = at, until
        quiet.save(update_fields=["declined_at", "quiet_until"])
    return quiet
