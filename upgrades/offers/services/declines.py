"""The customer said no: a reason code and their own words, kept as `Feedback`.

Invariant: the Feedback row and the move to declined are one write (both or neither); declining
twice answers the first decline (a double click, a retried request), never a second row.
"""

from __future__ import annotations

from datetime import datetime

from django.db import transaction
from django.utils import timezone

from accounts.models import Contact, Tenant
from accounts.services import Actor, record_audit
from upgrades.offers.errors import Conflict, InvalidInput, OffersErrorCode
from upgrades.offers.models import DeclineReason, Feedback, FeedbackKind, Offer, OfferState
from upgrades.offers.selectors import decline_feedback
from upgrades.offers.services.lifecycle import lock_offer, transition_offer

S = OfferState
TEXT_MAX = 4000
SOURCES = ("api", "portal", "console", "admin")


def _validate(reason_code: str, text: str, source: str) -> None:
    errors: dict[str, list[str]] = {}
    if reason_code not in DeclineReason.values:
        errors["reason"] = [f"Unknown reason; use one of: {', '.join(DeclineReason.values)}."]
    if len(text) > TEXT_MAX:
        errors["text"] = [f"At most {TEXT_MAX} characters."]
    elif "\x00" in text:
        errors["text"] = ["May not contain NUL characters."]
    if source not in SOURCES:
        errors["source"] = [f"Unknown source; use one of: {', '.join(SOURCES)}."]
    if errors:
        raise InvalidInput("Invalid decline.", details=errors)


@transaction.atomic
def decline_offer(
    tenant: Tenant,
    *,
    offer: Offer,
    reason_code: str,
    text: str = "",
    actor: Actor,
    contact: Contact | None = None,
    source: str = "api",
    now: datetime | None = None,
) -> Feedback:
    """sent | viewed -> declined, with a Feedback row (kind decline) holding the reason and the text."""
    text = (text or "").strip()
    _validate(reason_code, text, source)
    if contact is not None and (contact.tenant_id != tenant.pk or contact.account_id != offer.account_id):
        raise InvalidInput("Invalid decline.", details={"contact": ["Not a contact of this offer's account."]})
    now = now or timezone.now()
    locked = lock_offer(tenant, offer)
    if locked.state == S.DECLINED:
        existing = decline_feedback(tenant, locked)
        if existing is not None:
            return existing
    if locked.state not in (S.SENT, S.VIEWED, S.DECLINED):
        raise Conflict(
            f"An offer that is {locked.get_state_display().lower()} can't be declined.",
            code=OffersErrorCode.ILLEGAL_TRANSITION,
            details={"state": locked.state, "to_state": S.DECLINED},
        )
    feedback = Feedback(
        tenant=tenant,
        account_id=locked.account_id,
        offer=locked,
        contact=contact,
        kind=FeedbackKind.DECLINE,
        reason_code=reason_code,
        text=text,
        source=source,
        created_at=now,
    )
    feedback.full_clean()
    feedback.save()
    transition_offer(tenant, offer=locked, to_state=S.DECLINED, actor=actor, now=now, note=f"declined: {reason_code}")
    record_audit(
        tenant, actor=actor, action="offer.feedback", obj=locked, after={"reason": reason_code, "source": source}
    )
    if isinstance(offer, Offer):
        offer.refresh_from_db()
    return feedback
