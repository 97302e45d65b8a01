"""The offer state machine: the one place an offer's state changes.

Every move is checked against `ALLOWED`, taken under a row lock (so two workers, or a customer
and a CSM, can't both move the same offer), stamped on the offer, written as an `OfferEvent` and
audited. An illegal move raises `Conflict(code=illegal_transition)` and writes nothing.

Other modules (building, acceptance, declines, expiry, the portal and console) call
`transition_offer`; none of them writes `Offer.state` itself.
"""

from __future__ import annotations

from datetime import datetime

from django.db import transaction
from django.utils import timezone

from accounts.models import Tenant
from accounts.services import Actor, actor_label, record_audit, record_audits
from upgrades.offers.errors import Conflict, OffersErrorCode
from upgrades.offers.models import Offer, OfferEvent, OfferState

S = OfferState
_CLOSING = (S.DECLINED, S.EXPIRED, S.WITHDRAWN)

ALLOWED: dict[str, frozenset[str]] = {
    S.DRAFT: frozenset({S.AWAITING_REVIEW, S.SENT, *_CLOSING}),
    S.AWAITING_REVIEW: frozenset({S.SENT, *_CLOSING}),
    S.SENT: frozenset({S.VIEWED, S.ACCEPTED, *_CLOSING}),
    S.VIEWED: frozenset({S.ACCEPTED, *_CLOSING}),
    # An accepted offer whose payment failed can still be withdrawn or expire; it is fulfilled when
    # billing says the plan change settled.
    S.ACCEPTED: frozenset({S.FULFILLED, S.EXPIRED, S.WITHDRAWN}),
    S.FULFILLED: frozenset(),
    S.DECLINED: frozenset(),
    S.EXPIRED: frozenset(),
    S.WITHDRAWN: frozenset(),
}

# The timestamp each state sets on the offer.
STAMPS: dict[str, str] = {
    S.AWAITING_REVIEW: "",
    S.SENT: "sent_at",
    S.VIEWED: "viewed_at",
    S.ACCEPTED: "accepted_at",
    S.FULFILLED: "fulfilled_at",
    S.DECLINED: "closed_at",
    S.EXPIRED: "closed_at",
    S.WITHDRAWN: "closed_at",
}


def can_move(from_state: str, to_state: str) -> bool:
    return to_state in ALLOWED.get(from_state, frozenset())


def lock_offer(tenant: Tenant | int, offer: Offer | int) -> Offer:
    """The offer, row-locked for the rest of the transaction (call inside `transaction.atomic`)."""
    offer_id = offer.pk if isinstance(offer, Offer) else offer
    return Offer.objects.for_tenant(tenant).select_for_update().get(pk=offer_id)


@transaction.atomic
def transition_offer(
    tenant: Tenant,
    *,
    offer: Offer,
    to_state: str,
    actor: Actor,
    note: str = "",
    now: datetime | None = None,
    fields: dict | None = None,
) -> Offer:
    """Move `offer` to `to_state` (legal moves only), setting `fields` on it in the same write.

    Moving to the state it is already in is a no-op that returns the offer (a task run twice, a
    double click), so callers stay idempotent without checking first.
    """
    now = now or timezone.now()
    locked = lock_offer(tenant, offer)
    if locked.state == to_state:
        return locked
    if not can_move(locked.state, to_state):
        raise Conflict(
            f"An offer that is {locked.get_state_display().lower()} can't become {S(to_state).label.lower()}.",
            code=OffersErrorCode.ILLEGAL_TRANSITION,
            details={"state": locked.state, "to_state": to_state},
        )
    from_state = locked.state
    locked.state = to_state
    update = ["state", "updated_at"]
    stamp = STAMPS.get(to_state)
    if stamp:
        setattr(locked, stamp, now)
        update.append(stamp)
    for name, value in (fields or {}).items():
        setattr(locked, name, value)
        update.append(name)
    locked.save(update_fields=sorted(set(update)))
    OfferEvent.objects.create(
        tenant=tenant,
        offer=locked,
        from_state=from_state,
        to_state=to_state,
        actor_label=actor_label(actor)[:200],
        note=note[:500],
        at=now,
    )
    record_audit(
        tenant,
        actor=actor,
        action=f"offer.{to_state}",
        obj=locked,
        before={"state": from_state},
        after={"state": to_state, **({"note": note} if note else {})},
    )
    if isinstance(offer, Offer):
        offer.refresh_from_db()
    return locked


def release_offer(tenant: Tenant, *, offer: Offer, actor: Actor, now: datetime | None = None) -> Offer:
    """A freshly built draft goes out: to a CSM's review queue when the rule, the settings or an
    out-of-policy discount says so, otherwise straight to sent (messaging then tells the customer)."""
    if offer.state != S.DRAFT:
        return offer
    needs_review = offer.requires_review or (offer.discount_approval_needed and offer.discount_approved_at is None)
    return transition_offer(
        tenant, offer=offer, to_state=S.AWAITING_REVIEW if needs_review else S.SENT, actor=actor, now=now
    )


def release_target(offer: Offer) -> str:
    needs_review = offer.requires_review or (offer.discount_approval_needed and offer.discount_approved_at is None)
    return S.AWAITING_REVIEW if needs_review else S.SENT


@transaction.atomic
def release_offers(tenant: Tenant, *, offers: list[Offer], actor: Actor, now: datetime | None = None) -> list[Offer]:
    """`release_offer` for a batch of fresh drafts in a few statements: one row lock for all, one UPDATE
    per target state, the events in one INSERT and the audit entries in another.

    Offers no longer in draft (a retry, another worker) are returned as they are, as `release_offer`
    does; every move is still checked against `ALLOWED` before anything is written. Returns the offers
    (the locked rows, moved) in the order given.
    """
    now = now or timezone.now()
    ids = [o.pk for o in offers]
    locked = {o.pk: o for o in Offer.objects.for_tenant(tenant).select_for_update().filter(pk__in=ids).order_by("pk")}
    moves: dict[str, list[Offer]] = {}
    for pk in dict.fromkeys(ids):
        row = locked.get(pk)
        if row is None or row.state != S.DRAFT:
            continue
        to_state = release_target(row)
        if not can_move(row.state, to_state):  # never with today's ALLOWED; kept so a change there is honoured
            raise Conflict(
                f"An offer that is {row.get_state_display().lower()} can't become {S(to_state).label.lower()}.",
                code=OffersErrorCode.ILLEGAL_TRANSITION,
                details={"state": row.state, "to_state": to_state, "offer": row.pk},
            )
        moves.setdefault(to_state, []).append(row)
    label = actor_label(actor)[:200]
    events, audits = [], []
    for to_state, rows in moves.items():
        update: dict = {"state": to_state, "updated_at": now}
        stamp = STAMPS.get(to_state)
        if stamp:
            update[stamp] = now
        Offer.objects.for_tenant(tenant).filter(pk__in=[r.pk for r in rows], state=S.DRAFT).update(**update)
        for row in rows:
            for name, value in update.items():
                setattr(row, name, value)
            events.append(OfferEvent(tenant=tenant, offer=row, from_state=S.DRAFT, to_state=to_state,
                                     actor_label=label, note="", at=now))  # fmt: skip
            audits.append((f"offer.{to_state}", row, {"state": S.DRAFT.value}, {"state": to_state}))
    if events:
        OfferEvent.objects.bulk_create(events)
        record_audits(tenant, actor=actor, entries=audits)
    return [locked.get(pk, offer) for pk, offer in zip(ids, offers, strict=True)]
