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
from django.db.models import Q
from django.utils import timezone

from accounts.models import Contact, CustomerAccount, Tenant
from messaging import selectors
from messaging.errors import Conflict, InvalidInput, MessagingErrorCode, NotFound
from messaging.models import (
    Category,
    Channel,
    Message,
    MessageEvent,
    MessageEventKind,
    MessageState,
)
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
    read = selectors.read_due_prompts(
        tenant, now=now, account_id=account.pk, contact_id=None if contact is None else contact.pk, placement=placement
    )
    if read.account_id is None:
        raise NotFound("No such account or contact.")
    return _hand_out(tenant, account_id=read.account_id, candidates=read.prompts, now=now)


def due_prompts_by_external_id(
    tenant: Tenant,
    *,
    external_id: str,
    contact_email: str | None = None,
    placement: str | None = None,
    now: datetime.datetime | None = None,
) -> tuple[str, list[Message]]:
    """`due_prompts` for the API: the account by its external id and the contact by email, in the same read.

    Returns the account's external id and its due prompts. A warm fetch (every due prompt already holds
    its slot) is this one query and writes nothing. A missing or foreign account, or an email that is no
    contact of it, is NotFound.
    """
    now = now or timezone.now()
    read = selectors.read_due_prompts(
        tenant, now=now, external_id=external_id, contact_email=contact_email, placement=placement
    )
    if read.account_id is None:
        raise NotFound(f"No account {external_id!r}.")
    if not read.contact_found:
        raise NotFound("No such contact for this account.")
    return read.external_id, _hand_out(tenant, account_id=read.account_id, candidates=read.prompts, now=now)


def _hand_out(tenant: Tenant, *, account_id: int, candidates: list[Message], now: datetime.datetime) -> list[Message]:
    if not any(p.category == Category.UPGRADE and p.counted_at is None for p in candidates):
        return candidates  # all already shown (or transactional): nothing new takes a slot; read-only
    return _reserve_slots(tenant, account_id=account_id, candidates=candidates, now=now)


@transaction.atomic
def _reserve_slots(
    tenant: Tenant, *, account_id: int, candidates: list[Message], now: datetime.datetime
) -> list[Message]:
    """Hand out new upgrade prompts only for slots taken here, under the account's cap lock.

    The cap race: two fetches at the same moment both saw room and both showed a prompt, one over the
    cap. Now a new prompt takes its slot (`counted_at`) when a fetch hands it out, under the same
    advisory lock email admission takes, with the counts re-read inside the lock; a prompt another
    fetch reserved meanwhile is simply due (already counted). A handed-out prompt keeps its slot for
    the window even if the product never shows it: the cap errs towards fewer messages, never more.
    One read inside the lock gives both the slots used in the window and which of ours were taken.
    """
    policy.lock_account(tenant, account_id)
    fresh = {p.pk for p in candidates if p.category == Category.UPGRADE and p.counted_at is None}
    prefs = selectors.get_settings(tenant)
    since = now - datetime.timedelta(days=prefs.cap_window_days)
    slots = list(
        Message.objects.for_tenant(tenant)
        .filter(account_id=account_id, category=Category.UPGRADE)
        .filter(Q(counted_at__gt=since) | Q(pk__in=fresh, counted_at__isnull=False))
        .values_list("pk", "contact_id", "counted_at")
    )
    counted = {pk: at for pk, _, at in slots if pk in fresh}
    used = Counter(contact_id for _, contact_id, at in slots if at > since)
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
