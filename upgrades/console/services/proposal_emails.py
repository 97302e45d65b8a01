"""Email a shared proposal's customer link to one contact (issue 17), through messaging's normal path.

It is an upgrade email like the lifecycle ones (upgrades.offers.services.messages): messaging admits it once per
(contact, template, cause) with one arbitrated insert, counts it against the same per-contact and per-account cap
as every other upgrade message and CSM outreach, and honours unsubscribes, consent, bounces, a decline's quiet
period and quiet hours. This module only decides the cause and the words.

Invariants:
- One email per proposal, contact and day (the tenant's calendar): the cause is
  `proposal:<id>:emailed:<YYYY-MM-DD>`, so a double click, a resubmitted form or two tabs get the first answer
  back and send nothing more. Tomorrow the CSM may send it again; the cap still applies.
- A fresh single-use portal link is made only when no message exists yet for that key; when two clicks race,
  both make one inside their transaction, the arbitrated insert picks one message, and the loser rolls back
  its link (nothing of it is kept or shown).
- No live template: refused before anything is made (Conflict `no_template`), not recorded as a suppressed
  message, so the key is not used up and the CSM can send once a product manager approves one.
"""

from __future__ import annotations

import zoneinfo
from dataclasses import dataclass
from datetime import datetime

from django.db import transaction
from django.utils import formats, timezone

from accounts.errors import Conflict, NotFound
from accounts.models import Contact, Tenant, User
from accounts.services import Actor, record_audit
from messaging import selectors as messaging_selectors
from messaging import services as messaging
from messaging.models import Category, Channel, Message, MessageState, SuppressedReason
from upgrades.console.models import Proposal, ProposalState
from upgrades.console.portal_documents import KIND, proposal_ref
from upgrades.console.services.holdout import require_not_held_out
from upgrades.offers.documents import DOCUMENT_LINK_TTL as LINK_TTL
from upgrades.offers.documents import document_link

TEMPLATE_KEY = "proposal-link"  # messaging.demo seeds it (purpose proposal_link)
ADMITTED = (MessageState.QUEUED, MessageState.HELD, MessageState.SENT)


@dataclass(frozen=True)
class ProposalEmail:
    """What happened when the CSM pressed the button: the message (its state says whether it goes), and
    whether it was an earlier answer replayed (nothing new was sent)."""

    message: Message
    repeated: bool
    text: str  # the plain sentence the CSM reads

    @property
    def admitted(self) -> bool:
        return self.message.state in ADMITTED


def _local(tenant: Tenant, value: datetime) -> datetime:
    return timezone.localtime(value, zoneinfo.ZoneInfo(tenant.time_zone or "UTC"))


def email_cause(tenant: Tenant, proposal: Proposal, *, now: datetime) -> str:
    return f"proposal:{proposal.pk}:emailed:{_local(tenant, now):%Y-%m-%d}"


def _sender(actor: Actor) -> dict[str, str]:
    if isinstance(actor, User):
        return {"name": actor.full_name or "Your account manager", "email": actor.email}
    return {"name": "Your account manager", "email": ""}


def _explain(tenant: Tenant, message: Message, *, contact: Contact, repeated: bool) -> str:
    """One plain sentence: sent, held until quiet hours end, or not sent and why."""
    who = contact.name or contact.email
    if repeated:
        if message.state in ADMITTED:
            return f"Already emailed to {who} today: nothing more was sent. You can send it again tomorrow."
        return f"Already tried {who} today and it was not sent: {_why(tenant, message)}"
    if message.state == MessageState.HELD and message.due_at is not None:
        at = formats.date_format(_local(tenant, message.due_at), "DATETIME_FORMAT")
        return (
            f"Email to {who} accepted: it is their quiet hours, so it goes out at {at}. "
            "It counts against the message cap."
        )
    if message.state in ADMITTED:
        return (
            f"Emailed to {who} ({contact.email}): the link opens this proposal in their portal, once, within "
            f"{LINK_TTL.days} days. It counts against the message cap."
        )
    return f"Not sent to {who}: {_why(tenant, message)}"


def _count(n: int, noun: str) -> str:
    return f"{n} {noun}" if n == 1 else f"{n} {noun}s"


def _why(tenant: Tenant, message: Message) -> str:
    if message.state == MessageState.FAILED:
        return f"the email template failed ({message.error}). Ask a product manager to fix it."
    prefs = messaging_selectors.get_settings(tenant)
    window = _count(prefs.cap_window_days, "day")
    reasons = {
        SuppressedReason.CONTACT_CAP: f"they have had {_count(prefs.cap_count, 'upgrade message')} in the last "
        f"{window}, the most the message cap allows. Try again later, or call them.",
        SuppressedReason.ACCOUNT_CAP: f"the account has had {_count(prefs.account_cap_count, 'upgrade message')} "
        f"in the last {window}, the most the message cap allows. Try again later, or call them.",
        SuppressedReason.UNSUBSCRIBED: "they unsubscribed from upgrade emails. Only they can turn them back on.",
        SuppressedReason.OPTED_OUT: "they turned upgrade emails off in their preferences.",
        SuppressedReason.NO_CONSENT: "there is no marketing consent on record for them.",
        SuppressedReason.DECLINE_QUIET: "the account declined an offer lately and is in its quiet period.",
        SuppressedReason.BOUNCED: "their address bounced, so no mail goes to it.",
        SuppressedReason.COMPLAINED: "they marked our mail as spam, so no mail goes to them.",
        SuppressedReason.NO_LIVE_TEMPLATE: "there is no live email template for proposals.",
    }
    return reasons.get(message.suppressed_reason, message.get_suppressed_reason_display() or "it was stopped.")


def email_proposal_link(
    tenant: Tenant, *, proposal: Proposal, contact: Contact, actor: Actor, now: datetime | None = None
) -> ProposalEmail:
    """Email `contact` a fresh single-use link to this shared proposal (see the module's invariants).

    Raises NotFound for a contact outside the proposal's account (another tenant's included), Conflict when the
    proposal is not shared, the account is in an experiment's control group, or no template is live. Never
    raises for the cap or consent: the answer's message is suppressed and its text says why."""
    now = now or timezone.now()
    proposal = Proposal.objects.for_tenant(tenant).select_related("account").get(pk=proposal.pk)
    if contact.tenant_id != tenant.pk or contact.account_id != proposal.account_id:
        raise NotFound("No such contact.")
    if proposal.state != ProposalState.SHARED:
        raise Conflict("Share the proposal first: only a shared proposal opens in the portal.", code="invalid_state",
                       details={"state": proposal.state})  # fmt: skip
    require_not_held_out(tenant, proposal.account_id, doing="email a proposal")
    cause = email_cause(tenant, proposal, now=now)
    earlier = (
        messaging_selectors.list_messages(tenant, contact=contact, cause=cause)
        .filter(template_key=TEMPLATE_KEY)
        .first()
    )
    if earlier is not None:
        return ProposalEmail(earlier, True, _explain(tenant, earlier, contact=contact, repeated=True))
    if not messaging_selectors.live_templates(tenant, key=TEMPLATE_KEY, channel=Channel.EMAIL):
        raise Conflict(
            f"No email template for proposals is live (key '{TEMPLATE_KEY}'): a product manager writes one in "
            "the admin and a second person approves it. Until then, make a link and send it yourself.",
            code="no_template",
        )
    with transaction.atomic():
        url = document_link(tenant, account=proposal.account, kind=KIND, ref=proposal_ref(proposal), contact=contact,
                            actor=actor)  # fmt: skip
        context = {
            "proposal": {
                "title": proposal.title,
                "url": url,
                "expires_on": formats.date_format(_local(tenant, now + LINK_TTL), "DATE_FORMAT"),
            },
            "sender": _sender(actor),
            "portal_url": url,
        }
        message = messaging.send_message(tenant, contact=contact, template_key=TEMPLATE_KEY, cause=cause,
                                         context=context, category=Category.UPGRADE, channel=Channel.EMAIL,
                                         now=now)  # fmt: skip
        repeated = (message.context or {}).get("proposal", {}).get("url") != url  # another click won the key
        if repeated:
            transaction.set_rollback(True)  # the link this click made was never sent: it is not kept either
        else:
            admitted = message.state in ADMITTED
            record_audit(tenant, actor=actor, obj=proposal,
                         action="proposal.link_emailed" if admitted else "proposal.link_email_stopped",
                         after={"contact": contact.email, "message": message.pk, "state": message.state,
                                "reason": message.suppressed_reason})  # fmt: skip
    return ProposalEmail(message, repeated, _explain(tenant, message, contact=contact, repeated=repeated))
