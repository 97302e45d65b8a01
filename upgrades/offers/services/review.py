"""Staff decisions on an offer: a CSM's review before it is sent, an approval of a discount outside
policy, and withdrawal.

Invariants: each needs a person with the right to do it (Capability.REVIEW_OFFERS; for a discount,
the role the tenant's DiscountPolicy names, or the owner), never the person who built the offer
(four eyes); each is recorded on the offer and audited. State moves only through
`lifecycle.transition_offer`.
"""

from __future__ import annotations

from datetime import datetime

from django.db import transaction
from django.utils import timezone

from accounts.models import Capability, Membership, Role, Tenant, User
from accounts.services import Actor, actor_label, record_audit
from billing.models import PlanChangeState
from billing.services.plan_changes import cancel_plan_change
from catalog.selectors import get_discount_policy
from upgrades.offers.errors import Conflict, OffersErrorCode, PermissionDenied
from upgrades.offers.models import OPEN_STATES, Offer, OfferState
from upgrades.offers.services.lifecycle import lock_offer, transition_offer

S = OfferState
PAYMENT_BUSY = (
    PlanChangeState.PENDING,
    PlanChangeState.SCHEDULED,
    PlanChangeState.SUBMITTED,
    PlanChangeState.SETTLED,
)


def _membership(tenant: Tenant, actor: Actor) -> Membership | None:
    if not isinstance(actor, User):
        return None
    return Membership.objects.for_tenant(tenant).filter(user=actor).first()


def require_capability(tenant: Tenant, actor: Actor, capability: str, *, doing: str) -> Membership | None:
    """The actor's membership if it may do this (a superuser always may); `PermissionDenied` otherwise."""
    if isinstance(actor, User) and actor.is_superuser:
        return _membership(tenant, actor)
    membership = _membership(tenant, actor)
    if membership is None or not membership.can(capability):
        raise PermissionDenied(
            f"You may not {doing}: that needs the '{Capability(capability).label}' permission.",
            code=OffersErrorCode.NO_CAPABILITY,
        )
    return membership


def _refuse_builder(offer: Offer, actor: Actor, *, doing: str) -> None:
    """Four eyes: a person who built the offer doesn't also review it or approve its discount."""
    if isinstance(actor, User) and offer.created_by_label and offer.created_by_label == actor_label(actor):
        raise PermissionDenied(
            f"You built this offer, so someone else must {doing} it.", code=OffersErrorCode.FOUR_EYES
        )


def _discount_waiting(offer: Offer) -> bool:
    return offer.discount_approval_needed and offer.discount_approved_at is None


def review_offer(tenant: Tenant, *, offer: Offer, actor: Actor, now: datetime | None = None) -> Offer:
    """A CSM reviewed the offer and sends it: awaiting_review -> sent. Not while a discount waits for approval."""
    require_capability(tenant, actor, str(Capability.REVIEW_OFFERS), doing="review offers")
    current = Offer.objects.for_tenant(tenant).get(pk=offer.pk)
    _refuse_builder(current, actor, doing="review")
    if current.state == S.SENT and current.reviewed_at is not None:
        return current  # reviewed twice is reviewed once
    if current.state == S.AWAITING_REVIEW and _discount_waiting(current):
        raise Conflict(
            "The offer's discount is outside policy and waits for an approval before it can be sent.",
            code=OffersErrorCode.APPROVAL_NEEDED,
        )
    if current.state != S.AWAITING_REVIEW:
        raise Conflict(
            f"Only an offer awaiting review can be reviewed; this one is {current.get_state_display().lower()}.",
            code=OffersErrorCode.ILLEGAL_TRANSITION,
            details={"state": current.state, "to_state": S.SENT},
        )
    now = now or timezone.now()
    return transition_offer(
        tenant,
        offer=current,
        to_state=S.SENT,
        actor=actor,
        now=now,
        note="reviewed",
        fields={"reviewed_by": actor if isinstance(actor, User) else None, "reviewed_at": now},
    )


def _may_approve_discount(tenant: Tenant, membership: Membership | None, actor: Actor) -> bool:
    if isinstance(actor, User) and actor.is_superuser:
        return True
    if membership is None or not membership.is_accepted:
        return False
    policy = get_discount_policy(tenant)
    roles = {Role.OWNER, (policy.exception_approver_role if policy is not None else Role.OWNER)}
    return membership.role in roles


def approve_offer_discount(tenant: Tenant, *, offer: Offer, actor: Actor, now: datetime | None = None) -> Offer:
    """Record the approval of a discount outside policy (by the policy's exception approver or the owner).

    An offer that waited only for this approval (no CSM review asked for) is then sent.
    """
    membership = _membership(tenant, actor)
    if not _may_approve_discount(tenant, membership, actor):
        policy = get_discount_policy(tenant)
        role = str(policy.exception_approver_role if policy is not None else Role.OWNER)
        raise PermissionDenied(
            f"Only the {role.replace('_', ' ')} (or the owner) may approve a discount outside policy.",
            code=OffersErrorCode.NO_CAPABILITY,
        )
    now = now or timezone.now()
    with transaction.atomic():
        locked = lock_offer(tenant, offer)
        _refuse_builder(locked, actor, doing="approve the discount of")
        if not locked.discount_approval_needed:
            raise Conflict(
                "This offer's discount is within policy; there is nothing to approve.", code=OffersErrorCode.WRONG_STATE
            )
        if locked.discount_approved_at is not None:
            return locked
        if locked.state not in OPEN_STATES or locked.state == S.ACCEPTED:
            raise Conflict(
                f"An offer that is {locked.get_state_display().lower()} takes no approval.",
                code=OffersErrorCode.WRONG_STATE,
                details={"state": locked.state},
            )
        locked.discount_approved_by = actor if isinstance(actor, User) else None
        locked.discount_approved_at = now
        locked.save(update_fields=["discount_approved_by", "discount_approved_at", "updated_at"])
        record_audit(
            tenant,
            actor=actor,
            action="offer.discount_approved",
            obj=locked,
            after={"discount": locked.discount, "role": membership.role if membership else "superuser"},
        )
        if locked.state == S.AWAITING_REVIEW and not locked.requires_review:
            locked = transition_offer(
                tenant, offer=locked, to_state=S.SENT, actor=actor, now=now, note="discount approved"
            )
    if isinstance(offer, Offer):
        offer.refresh_from_db()
    return locked


def withdraw_offer(
    tenant: Tenant, *, offer: Offer, actor: Actor, reason: str = "", now: datetime | None = None
) -> Offer:
    """Staff take an offer back (any open state). Not while its payment is with Stripe or settled; a failed
    payment's plan change is cancelled first (its unpaid invoice voided), so nothing can be paid later."""
    require_capability(tenant, actor, str(Capability.REVIEW_OFFERS), doing="withdraw offers")
    current = Offer.objects.for_tenant(tenant).select_related("plan_change").get(pk=offer.pk)
    if current.state == S.WITHDRAWN:
        return current
    pc = current.plan_change
    if current.state == S.ACCEPTED and pc is not None:
        if pc.state in PAYMENT_BUSY:
            raise Conflict(
                "The customer's payment for this offer is in progress or done; it can't be withdrawn now.",
                code=OffersErrorCode.WRONG_STATE,
                details={"state": current.state, "payment": pc.state},
            )
        if pc.state == PlanChangeState.FAILED:
            cancel_plan_change(tenant, plan_change=pc, actor=actor, reason="offer withdrawn")
    return transition_offer(
        tenant, offer=current, to_state=S.WITHDRAWN, actor=actor, now=now, note=(reason or "withdrawn")[:500]
    )


__all__ = [
    "approve_offer_discount",
    "require_capability",
    "review_offer",
    "withdraw_offer",
]
