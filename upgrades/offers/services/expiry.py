"""The expiry sweep (beat): offers past their `expires_at` close as expired, per tenant under RLS.

Invariants:
- Idempotent: a second run (or two overlapping runs) finds nothing more to do; each offer moves
  under its own row lock through `lifecycle.transition_offer`.
- An accepted offer whose payment is with Stripe (or done) never expires: it is the customer's
  purchase. Its settlement is caught up here if the signal was missed (fulfilled, not expired).
  An accepted offer whose payment failed does expire, and its plan change is cancelled first (its
  unpaid invoice voided), so nothing is paid for an offer that is gone; if Stripe can't be reached
  the offer waits for the next run.
"""

from __future__ import annotations

import logging
from datetime import datetime

from django.utils import timezone

from accounts.models import Tenant
from accounts.tenancy import each_tenant
from billing.models import PlanChangeState
from billing.services.plan_changes import cancel_plan_change
from upgrades.offers.errors import TierwiseError
from upgrades.offers.models import Offer, OfferState
from upgrades.offers.selectors import accepted_offers_with_settled_payment, offers_due_to_expire
from upgrades.offers.services.acceptance import fulfil_offer
from upgrades.offers.services.lifecycle import transition_offer

log = logging.getLogger(__name__)

S = OfferState
SWEEP = "expiry-sweep"
PAYMENT_KEEPS_OPEN = (
    PlanChangeState.PENDING,
    PlanChangeState.SCHEDULED,
    PlanChangeState.SUBMITTED,
    PlanChangeState.SETTLED,
)


def _expire_one(tenant: Tenant, offer: Offer, *, now: datetime) -> bool:
    pc = offer.plan_change
    if offer.state == S.ACCEPTED and pc is not None:
        if pc.state in PAYMENT_KEEPS_OPEN:
            return False
        if pc.state == PlanChangeState.FAILED:
            try:
                cancel_plan_change(tenant, plan_change=pc, actor=SWEEP, reason="offer expired")
            except TierwiseError as exc:
                log.warning("Offer %s: its failed plan change was not cancelled (%s); next run", offer.pk, exc)
                return False
    try:
        transition_offer(tenant, offer=offer, to_state=S.EXPIRED, actor=SWEEP, now=now, note="expired")
    except TierwiseError as exc:  # moved meanwhile (accepted, declined): nothing to expire
        log.info("Offer %s not expired: %s", offer.pk, exc)
        return False
    return True


def expire_offers_for_tenant(tenant: Tenant, *, now: datetime | None = None) -> int:
    """Expire the tenant's due offers; returns how many expired. Settled payments are caught up first."""
    now = now or timezone.now()
    for offer in accepted_offers_with_settled_payment(tenant):
        assert offer.plan_change is not None
        fulfil_offer(tenant, offer=offer, plan_change=offer.plan_change)
    return sum(_expire_one(tenant, offer, now=now) for offer in offers_due_to_expire(tenant, now=now))


def expire_offers(*, now: datetime | None = None) -> int:
    """Beat: every tenant in turn, each inside its own tenant context (row-level security)."""
    now = now or timezone.now()
    return sum(expire_offers_for_tenant(tenant, now=now) for tenant in each_tenant())
