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


def _prepare(
    tenant: Tenant, *, contact: Contact, template: MessageTemplate | None, template_key: str, cause: str,
    context: dict[str, Any], category: str, channel: str, variant: str | None, brand: dict, now: datetime.datetime,
) -> Message:  # fmt: skip
    """The unsaved row, rendered (outside any lock); state set only when rendering already decided it."""
    row = Message(
        tenant=tenant, contact=contact, account_id=contact.account_id, template=template, template_key=template_key,
        variant=template.variant if template else (variant or ""), cause=cause, channel=channel, category=category,
        placement=template.placement if template else "", to_email=contact.email if channel == Channel.EMAIL else "",
        context=context, token=uuid.uuid4().hex, created_at=now, state="",
    )  # fmt: skip
    if template is None:
        row.state, row.suppressed_reason = MessageState.SUPPRESSED, SuppressedReason.NO_LIVE_TEMPLATE
        return row
    try:
        row.rendered = render_for(template, contact=contact, context=context, brand=brand)
    except (jinja2.TemplateError, TypeError, ValueError) as exc:
        row.state, row.error = MessageState.FAILED, f"Rendering failed: {exc}"
        return row
    if channel == Channel.EMAIL:
        row.links = tracked_links(row.rendered["html"], exclude=(row.rendered["unsubscribe_url"],
                                                                 row.rendered["preferences_url"]))  # fmt: skip
    else:
        row.links = [row.rendered["cta_url"]] if row.rendered["cta_url"] else []
    return row


def send_messages(
    tenant: Tenant,
    *,
    contacts: list[Contact],
    template_key: str,
    cause: str,
    context: dict[str, Any],
    category: str,
    channel: str = Channel.EMAIL,
    variant: str | None = None,
    now: datetime.datetime | None = None,
) -> list[Message]:
    """send_message for many contacts at once (a sweep, a campaign): the same decisions, in one transaction
    per call, one lock and four reads per account, one arbitrated bulk insert. Returns a Message per contact,
    in order; contacts that already had (template_key, cause) get their first message back."""
    if not cause or len(cause) > 200:
        raise InvalidInput("cause must be 1 to 200 characters.", details={"cause": [cause[:200]]})
    for contact in contacts:
        _check(tenant, contact=contact, category=category, channel=channel)
    scope = Message.objects.for_tenant(tenant).filter(template_key=template_key, cause=cause)
    found = {m.contact_id: m for m in scope.filter(contact__in=contacts)}
    todo = list({c.pk: c for c in contacts if c.pk not in found}.values())
    if todo:
        now = now or timezone.now()
        prefs = get_settings(tenant)
        brand = _brand(tenant, prefs)
        templates = live_templates(tenant, key=template_key, channel=channel)
        rows = [
            _prepare(tenant, contact=c, template=pick_variant(templates, contact=c, variant=variant),
                     template_key=template_key, cause=cause, context=context, category=category, channel=channel,
                     variant=variant, brand=brand, now=now)
            for c in todo
        ]  # fmt: skip
        by_account: dict[int, list[Message]] = {}
        for row in rows:
            by_account.setdefault(row.account_id, []).append(row)
        with transaction.atomic():
            for account_id in sorted(by_account):  # one order of locks: no deadlock between batches
                pending = [r for r in by_account[account_id] if not r.state]
                if not pending:
                    continue
                if category == Category.UPGRADE:
                    policy.lock_account(tenant, account_id)
                facts = policy.gather_facts(tenant, account_id=account_id, contacts=[r.contact for r in pending],
                                            prefs=prefs, now=now)  # fmt: skip
                for row in pending:
                    decision = policy.decide_with(facts, tenant=tenant, contact=row.contact, channel=channel,
                                                  category=category, prefs=prefs, now=now)  # fmt: skip
                    row.state, row.suppressed_reason, row.due_at = decision.state, decision.reason, decision.due_at
                    row.counted_at = now if decision.counted else None
            Message.objects.bulk_create(rows, ignore_conflicts=True, batch_size=500)  # ON CONFLICT DO NOTHING
            won = list(scope.filter(contact__in=todo).select_related("contact"))
            mine = {r.token for r in rows}
            queued = [
                m for m in won if m.token in mine and m.channel == Channel.EMAIL and m.state == MessageState.QUEUED
            ]
            enqueue_deliveries(queued)
        found.update({m.contact_id: m for m in won})
    return [found[c.pk] for c in contacts]


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
    return send_messages(tenant, contacts=[contact], template_key=template_key, cause=cause, context=context,
                         category=category, channel=channel, variant=variant, now=now)[0]  # fmt: skip


def _brand(tenant: Tenant, prefs: Any) -> dict[str, str]:
    return {"name": prefs.from_name or tenant.name, "logo_url": prefs.logo_url, "colour": prefs.brand_colour}


DELIVERY_BATCH = 50


def enqueue_deliveries(messages: list[Message]) -> None:
    """After commit: one delivery task per batch of queued emails (one SMTP connection each)."""
    from messaging import tasks

    ids = [m.pk for m in messages]
    if not ids:
        return
    tenant_id = messages[0].tenant_id
    for start in range(0, len(ids), DELIVERY_BATCH):
        chunk = ids[start : start + DELIVERY_BATCH]
        transaction.on_commit(lambda chunk=chunk: tasks.deliver_messages.delay(tenant_id, chunk))


def enqueue_delivery(message: Message) -> None:
    enqueue_deliveries([message])


def record_outreach(
    tenant: Tenant, *, contact: Contact, cause: str, actor: Actor, note: str = "", at: datetime.datetime | None = None
) -> Message:
    """A CSM's personal outreach, counted against the same cap. Call it BEFORE reaching out: a
    `suppressed` answer (with its reason: the cap, an unsubscribe, a decline's quiet period) means don't."""
    _check(tenant, contact=contact, category=Category.UPGRADE, channel=Channel.EMAIL)
    existing = Message.objects.for_tenant(tenant).filter(contact=contact, template_key="", cause=cause).first()
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
                                 now=at)  # fmt: skip
        row.state, row.suppressed_reason = decision.state, decision.reason
        row.counted_at = at if decision.counted else None
        row.sent_at = at if decision.state == MessageState.SENT else None
        Message.objects.bulk_create([row], ignore_conflicts=True)  # ON CONFLICT DO NOTHING: the key arbitrates
        won = Message.objects.for_tenant(tenant).get(contact=contact, template_key="", cause=cause)
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
