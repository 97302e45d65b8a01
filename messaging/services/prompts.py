"""In-app prompts: which are due for an account now, and what the person did with them.

A prompt is a Message on the in-app channel, admitted by send_message like an email (so it is keyed
by contact, template and cause, and suppressed for an unsubscribe or a decline's quiet period). It
takes its slot of the cap when a fetch first hands it out (`due_prompts`, under the account's cap lock,
so two fetches at once cannot both take the last slot); new prompts are offered only while the cap has
room, and prompts already handed out or shown (not dismissed) stay due.
"""

from __future__ import annotations

import datetime
from collections import Counter

from django.db import transaction
from django.db.models import Exists, OuterRef, Q
from django.utils import timezone

from accounts.models import Contact, CustomerAccount, Tenant
from messaging.errors import Conflict, InvalidInput, MessagingErrorCode, NotFound
from messaging.models import (
    Category,
    Channel,
    ContactPreference,
    DeclineQuiet,
    Message,
    MessageEvent,
    MessageEventKind,
    MessageState,
)
from messaging.selectors import get_settings
from messaging.services import policy

PROMPT_EVENTS = ("shown", "dismissed", "clicked")


def due_prompts(
    tenant: Tenant,
    *,
    account: CustomerAccount,
    contact: Contact | None = None,
    placement: str | None = None,
    now: datetime.datetime | None = None,
) -> list[Message]:
    """Prompts to show now in `placement` (any placement if None) for the account, or one of its contacts."""
    if account.tenant_id != tenant.pk or (contact is not None and contact.account_id != account.pk):
        raise NotFound("No such account or contact.")
    now = now or timezone.now()
    prompts = Message.objects.for_tenant(tenant).filter(
        account=account, channel=Channel.IN_APP, state__in=[MessageState.QUEUED, MessageState.SENT], due_at__lte=now
    )
    if contact is not None:
        prompts = prompts.filter(contact=contact)
    if placement:
        prompts = prompts.filter(placement=placement)
    # Unsubscribed or in-app-off contacts and an account in a decline's quiet period see no upgrade prompt:
    # folded into the one query as NOT EXISTS, so a warm call is five queries in all.
    blocked = (
        ContactPreference.objects.for_tenant(tenant)
        .filter(contact_id=OuterRef("contact_id"))
        .exclude(in_app=True, unsubscribed_at__isnull=True)
    )
    quiet = DeclineQuiet.objects.for_tenant(tenant).filter(account_id=OuterRef("account_id"), quiet_until__gt=now)
    prompts = prompts.exclude(Q(category=Category.UPGRADE) & (Exists(blocked) | Exists(quiet)))
    candidates = list(prompts.select_related("contact").order_by("created_at", "id")[:50])
    if not any(p.category == Category.UPGRADE and p.counted_at is None for p in candidates):
        return candidates  # all already shown (or transactional): nothing new takes a slot; read-only
    return _reserve_slots(tenant, account=account, candidates=candidates, now=now)


@transaction.atomic
def _reserve_slots(
    tenant: Tenant, *, account: CustomerAccount, candidates: list[Message], now: datetime.datetime
) -> list[Message]:
    """Hand out new upgrade prompts only for slots taken here, under the account's cap lock.

    The cap race: two fetches at the same moment both saw room and both showed a prompt, one over the
    cap. Now a new prompt takes its slot (`counted_at`) when a fetch hands it out, under the same
    advisory lock email admission takes, with the counts re-read inside the lock; a prompt another
    fetch reserved meanwhile is simply due (already counted). A handed-out prompt keeps its slot for
    the window even if the product never shows it: the cap errs towards fewer messages, never more.
    """
    policy.lock_account(tenant, account.pk)
    fresh = [p.pk for p in candidates if p.category == Category.UPGRADE and p.counted_at is None]
    counted = dict(
        Message.objects.for_tenant(tenant)
        .filter(pk__in=fresh, counted_at__isnull=False)
        .values_list("pk", "counted_at")
    )
    prefs = get_settings(tenant)
    since = now - datetime.timedelta(days=prefs.cap_window_days)
    used = Counter(
        Message.objects.for_tenant(tenant)
        .filter(account=account, category=Category.UPGRADE, counted_at__gt=since)
        .values_list("contact_id", flat=True)
    )
    account_room = prefs.account_cap_count - sum(used.values())
    due: list[Message] = []
    reserved: list[int] = []
    for prompt in candidates:
        if prompt.pk in counted:
            prompt.counted_at = counted[prompt.pk]
        elif prompt.category == Category.UPGRADE and prompt.counted_at is None:
            if account_room <= 0 or used[prompt.contact_id] >= prefs.cap_count:
                continue
            account_room -= 1
            used[prompt.contact_id] += 1
            prompt.counted_at = now
            reserved.append(prompt.pk)
        due.append(prompt)
    if reserved:
        Message.objects.for_tenant(tenant).filter(pk__in=reserved, counted_at__isnull=True).update(
            counted_at=now, updated_at=now
        )
    return due


@transaction.atomic
def record_prompt_event(
    tenant: Tenant, *, prompt: Message, event: str, now: datetime.datetime | None = None
) -> tuple[Message, MessageEvent]:
    """Record shown / dismissed / clicked. The first 'shown' (or a click) takes the prompt's cap slot."""
    if prompt.tenant_id != tenant.pk or prompt.channel != Channel.IN_APP:
        raise NotFound("No such prompt.")
    if event not in PROMPT_EVENTS:
        raise InvalidInput(f"event must be one of {', '.join(PROMPT_EVENTS)}.", code=MessagingErrorCode.INVALID_EVENT,
                           details={"event": [f"Not one of {', '.join(PROMPT_EVENTS)}."]})  # fmt: skip
    now = now or timezone.now()
    policy.lock_account(tenant, prompt.account_id)
    prompt = Message.objects.for_tenant(tenant).select_for_update().get(pk=prompt.pk)
    if prompt.state not in (MessageState.QUEUED, MessageState.SENT, MessageState.DISMISSED):
        raise Conflict(f"This prompt was not delivered ({prompt.get_state_display().lower()}).",
                       code=MessagingErrorCode.WRONG_STATE, details={"state": prompt.state})  # fmt: skip
    fields = ["updated_at"]
    if event in ("shown", "clicked") and prompt.state == MessageState.QUEUED:
        prompt.state, prompt.sent_at = MessageState.SENT, now
        fields += ["state", "sent_at"]
        if prompt.category == Category.UPGRADE and prompt.counted_at is None:
            prompt.counted_at = now
            fields.append("counted_at")
    elif event == "dismissed":
        if prompt.category == Category.UPGRADE and prompt.counted_at is None:
            prompt.counted_at = now  # dismissing it means it was shown
            fields.append("counted_at")
        prompt.state = MessageState.DISMISSED
        fields.append("state")
    prompt.save(update_fields=fields)
    kind = {"shown": MessageEventKind.SHOWN, "dismissed": MessageEventKind.DISMISSED,
            "clicked": MessageEventKind.CLICKED}[event]  # fmt: skip
    url = prompt.links[0] if event == "clicked" and prompt.links else ""
    recorded = MessageEvent.objects.create(tenant=tenant, message=prompt, kind=kind, url=url, created_at=now)
    return prompt, recorded
