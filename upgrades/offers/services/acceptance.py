"""The customer opens an offer, accepts one of its options, and billing takes the payment.

Invariants:
- Every price shown is the price charged. Accepting asks billing for Stripe's own quote of the chosen
  option (`quote_plan_change`, reference `offer:<id>`) and compares its amount due now with the quote
  the customer saw; when they differ the offer's quote is replaced by Stripe's and the acceptance is
  refused with `quote_stale`, so the customer sees the new figure before anything is paid. A Stripe
  quote the customer was already shown (stored on the offer, still valid) is confirmed as it is.
- An offer is ACCEPTED with its plan change; it is FULFILLED only when billing says the plan change
  settled (`fulfil_offer`, from `billing.signals.plan_change_settled`), with `amount_charged` from
  the settled invoice. A failed payment leaves it accepted, showing the failure, with a retry path.
- An account with no licence row holds the tenant's default free tier (recommendation/free.py) and buys
  through billing's first-purchase path, as the plan-change API does from a free licence: billing's free
  licence (no price, nothing billed, what the account already holds) is recorded when Stripe is first
  asked, and the quote is a "new" subscription; the paid licence comes only when the payment settles.
- Stripe is called outside database transactions; state moves only through
  `lifecycle.transition_offer`.
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

from django.db import IntegrityError, transaction
from django.utils import timezone

from accounts.models import Tenant
from accounts.services import Actor, record_audit
from billing import selectors as billing_selectors
from billing.errors import BillingUnavailable
from billing.models import License, PlanChange, PlanChangeState
from billing.services.licenses import provision_license
from billing.services.plan_changes import confirm_plan_change, quote_plan_change, retry_plan_change
from billing.services.plan_changes.quoting import QUOTE_TTL
from catalog.models import Price
from catalog.selectors import get_default_tier
from upgrades.offers.errors import Conflict, InvalidInput, OffersErrorCode, TierwiseError
from upgrades.offers.models import Offer, OfferState
from upgrades.offers.pricing import quote_from_plan_change
from upgrades.offers.services.lifecycle import lock_offer, transition_offer

log = logging.getLogger(__name__)

S = OfferState
QUOTE_STALE = "quote_stale"
# A Stripe quote is reused for an acceptance only while this much of its life is left.
REUSE_MARGIN = timedelta(minutes=2)
# A shown quote older than this is refreshed from Stripe when the customer opens the offer.
STALE_AFTER = QUOTE_TTL
IN_FLIGHT = (PlanChangeState.PENDING, PlanChangeState.SCHEDULED, PlanChangeState.SUBMITTED)


# --- the quote ------------------------------------------------------------------------------


def quote_for(plan_change: PlanChange, *, option_key: str) -> dict[str, Any]:
    """Stripe's preview (stored on the plan change) in the offer's quote shape, for `option_key`."""
    return {**quote_from_plan_change(plan_change), "plan_change": plan_change.pk, "option": option_key}


def shown_option(offer: Offer) -> str:
    return str((offer.quote or {}).get("option") or offer.recommended_option or "")


def quote_is_stale(offer: Offer, *, now: datetime) -> bool:
    """The shown quote is an estimate, old, or its Stripe quote can no longer be confirmed."""
    quote = offer.quote or {}
    if quote.get("source") != "stripe" or offer.quoted_at is None or now - offer.quoted_at >= STALE_AFTER:
        return True
    pc = offer.plan_change
    return pc is None or pc.state != PlanChangeState.QUOTED or pc.quote_expires_at <= timezone.now() + REUSE_MARGIN


def _option(offer: Offer, option_key: str) -> dict[str, Any]:
    for option in offer.options or []:
        if isinstance(option, dict) and option.get("key") == option_key:
            return option
    keys = ", ".join(str(o.get("key")) for o in offer.options or [] if isinstance(o, dict))
    raise InvalidInput("Invalid acceptance.", details={"option": [f"No option {option_key!r}; choose one of: {keys}."]})


def _license(tenant: Tenant, offer: Offer, *, actor: Actor) -> License:
    """The licence the plan change starts from; for an account with none, billing's free licence (first purchase)."""
    license = billing_selectors.get_license_for_account(tenant, offer.account)
    if license is not None:
        return license
    free = get_default_tier(tenant)
    if free is None or (offer.holding or {}).get("license") is not None:
        raise Conflict("The account holds no licence to change.", code=OffersErrorCode.WRONG_STATE)
    try:
        with transaction.atomic():
            return provision_license(
                tenant,
                account=offer.account,
                price=None,
                tier=free,
                seats=1,
                actor=actor,
                reason="Free tier recorded for a first purchase",
                reference=f"offer:{offer.pk}",
            )
    except IntegrityError:  # a concurrent acceptance or open recorded it first
        license = billing_selectors.get_license_for_account(tenant, offer.account)
        if license is None:
            raise
        return license


def _prices(tenant: Tenant, option: dict[str, Any]) -> tuple[Price, list[Price], int]:
    ids = [int(i) for i in option.get("price_ids") or []]
    found = {p.pk: p for p in Price.objects.for_tenant(tenant).select_related("tier", "addon").filter(pk__in=ids)}
    if not ids or any(i not in found for i in ids):
        raise Conflict("This option's prices are no longer on sale.", code=OffersErrorCode.WRONG_STATE)
    return found[ids[0]], [found[i] for i in ids[1:]], int(option.get("seats") or 1)


def _discount_term(option: dict[str, Any]) -> tuple[Decimal | None, str, int | None]:
    """The option's own discount (percent, explanation) and its multi-year term, as billing takes them."""
    discount = option.get("discount") or {}
    percent = Decimal(str(discount.get("percent") or 0)).quantize(Decimal("0.01")) if discount else Decimal(0)
    years = int(option.get("term_years") or 1)
    return (percent or None), str(discount.get("explanation") or ""), (years if years > 1 else None)


def _matches(plan_change: PlanChange, option: dict[str, Any]) -> bool:
    ids = [int(i) for i in option.get("price_ids") or []]
    percent, _, years = _discount_term(option)
    return (
        bool(ids)
        and plan_change.target_price_id == ids[0]
        and plan_change.target_seats == int(option.get("seats") or 1)
        and sorted(plan_change.target_addon_prices.values_list("pk", flat=True)) == sorted(ids[1:])
        and plan_change.discount_percent == percent
        and plan_change.term_years == years
    )


def _reusable(offer: Offer, option: dict[str, Any]) -> PlanChange | None:
    """The offer's own Stripe quote of this option, if the customer was shown it and it can still be confirmed."""
    pc = offer.plan_change
    if (
        pc is None
        or pc.state != PlanChangeState.QUOTED
        or pc.quote_expires_at <= timezone.now() + REUSE_MARGIN
        or shown_option(offer) != option.get("key")
        or (offer.quote or {}).get("plan_change") != pc.pk
        or not _matches(pc, option)
    ):
        return None
    return pc


def _ask_stripe(tenant: Tenant, *, offer: Offer, option: dict[str, Any], actor: Actor) -> PlanChange:
    price, addon_prices, seats = _prices(tenant, option)
    license = _license(tenant, offer, actor=actor)
    percent, explanation, years = _discount_term(option)
    return quote_plan_change(
        tenant,
        license=license,
        target_price=price,
        seats=seats,
        addon_prices=addon_prices,
        reference=f"offer:{offer.pk}",
        requested_by=actor,
        discount_percent=percent,
        discount_explanation=explanation,
        term_years=years,
    )


@transaction.atomic
def _store_quote(tenant: Tenant, *, offer: Offer, plan_change: PlanChange, option_key: str, actor: Actor) -> Offer:
    """Show Stripe's quote on the offer (no state change): the next acceptance confirms exactly this."""
    locked = lock_offer(tenant, offer)
    before = {"amount_due_now": (locked.quote or {}).get("amount_due_now"), "option": shown_option(locked)}
    locked.quote = quote_for(plan_change, option_key=option_key)
    locked.quoted_at = plan_change.quoted_at
    locked.plan_change = plan_change
    locked.save(update_fields=["quote", "quoted_at", "plan_change", "updated_at"])
    record_audit(
        tenant,
        actor=actor,
        action="offer.quote_refreshed",
        obj=locked,
        before=before,
        after={"amount_due_now": plan_change.quote_amount_due, "option": option_key, "plan_change": plan_change.pk},
    )
    return locked


def _same_charge(shown: dict[str, Any] | None, *, option_key: str, plan_change: PlanChange) -> bool:
    shown = shown or {}
    return (
        shown.get("option") == option_key
        and shown.get("amount_due_now") == plan_change.quote_amount_due
        and str(shown.get("currency", "")).upper() == plan_change.currency.upper()
    )


def _refuse_stale(tenant: Tenant, *, offer: Offer, plan_change: PlanChange, option_key: str, actor: Actor) -> None:
    shown = (offer.quote or {}).get("amount_due_now")
    _store_quote(tenant, offer=offer, plan_change=plan_change, option_key=option_key, actor=actor)
    raise Conflict(
        "The price has changed since this offer was shown: look at the new quote and accept again.",
        code=QUOTE_STALE,
        details={
            "option": option_key,
            "amount_due_now": plan_change.quote_amount_due,
            "shown_amount_due_now": shown,
            "currency": plan_change.currency,
        },
    )


def _fresh_plan_change(tenant: Tenant, *, offer: Offer, option: dict[str, Any], actor: Actor) -> PlanChange:
    """A Stripe quote of `option` that equals what the customer saw, or `quote_stale` (with the new quote shown)."""
    reusable = _reusable(offer, option)
    if reusable is not None:
        return reusable
    plan_change = _ask_stripe(tenant, offer=offer, option=option, actor=actor)
    if not _same_charge(offer.quote, option_key=option["key"], plan_change=plan_change):
        _refuse_stale(tenant, offer=offer, plan_change=plan_change, option_key=option["key"], actor=actor)
    return plan_change


# --- opening --------------------------------------------------------------------------------


def open_offer(tenant: Tenant, *, offer: Offer, actor: Actor, now: datetime | None = None) -> Offer:
    """The customer opened the offer: sent -> viewed, and a stale quote is refreshed from Stripe's preview.

    Opening an offer that is viewed already refreshes its quote when stale; opening any other
    offer changes nothing. Stripe being unreachable never stops the customer seeing the offer: the
    estimate stays (marked as such) and the acceptance asks Stripe again.
    """
    now = now or timezone.now()
    current = Offer.objects.for_tenant(tenant).select_related("plan_change", "account").get(pk=offer.pk)
    if current.state == S.SENT:
        current = transition_offer(tenant, offer=current, to_state=S.VIEWED, actor=actor, now=now)
    if current.state != S.VIEWED or current.expires_at <= now or not quote_is_stale(current, now=now):
        return current
    key = shown_option(current)
    try:
        option = _option(current, key)
        plan_change = _ask_stripe(tenant, offer=current, option=option, actor=actor)
    except (BillingUnavailable, TierwiseError) as exc:
        log.warning("Offer %s: the quote was not refreshed from Stripe (%s)", current.pk, exc)
        return current
    return _store_quote(tenant, offer=current, plan_change=plan_change, option_key=key, actor=actor)


# --- accepting ------------------------------------------------------------------------------


def _refuse_unless_acceptable(offer: Offer, *, now: datetime) -> None:
    if offer.state not in (S.SENT, S.VIEWED):
        raise Conflict(
            f"An offer that is {offer.get_state_display().lower()} can't be accepted.",
            code=OffersErrorCode.ILLEGAL_TRANSITION,
            details={"state": offer.state, "to_state": S.ACCEPTED},
        )
    if offer.expires_at <= now:
        raise Conflict("This offer has expired.", code=OffersErrorCode.OFFER_EXPIRED, details={"state": offer.state})
    if offer.discount_approval_needed and offer.discount_approved_at is None:
        raise Conflict(
            "This offer's discount is waiting for an approval.", code=OffersErrorCode.APPROVAL_NEEDED, details=None
        )


def accept_offer(tenant: Tenant, *, offer: Offer, option_key: str, actor: Actor, now: datetime | None = None) -> Offer:
    """The customer chose `option_key`: Stripe's quote is checked against the shown one, confirmed, and the
    offer is accepted with its plan change (fulfilled later, when the payment settles).

    Accepting the same option again is a no-op; another option after acceptance is refused.
    """
    now = now or timezone.now()
    current = Offer.objects.for_tenant(tenant).select_related("plan_change", "account").get(pk=offer.pk)
    if current.state in (S.ACCEPTED, S.FULFILLED) and current.accepted_option == option_key:
        return current
    _refuse_unless_acceptable(current, now=now)
    option = _option(current, option_key)
    plan_change = _fresh_plan_change(tenant, offer=current, option=option, actor=actor)
    with transaction.atomic():
        locked = lock_offer(tenant, current)
        if locked.state in (S.ACCEPTED, S.FULFILLED) and locked.accepted_option == option_key:
            return locked  # a concurrent acceptance of the same option won
        _refuse_unless_acceptable(locked, now=now)
        # Confirmed in the same transaction as the acceptance: if either fails, neither happened, and
        # billing hands the change to Stripe only once this commits.
        plan_change = confirm_plan_change(tenant, plan_change=plan_change, actor=actor)
        accepted = transition_offer(
            tenant,
            offer=locked,
            to_state=S.ACCEPTED,
            actor=actor,
            now=now,
            note=f"option {option_key}",
            fields={
                "accepted_option": option_key,
                "plan_change": plan_change,
                "quote": quote_for(plan_change, option_key=option_key),
                "quoted_at": plan_change.quoted_at,
            },
        )
    if isinstance(offer, Offer):
        offer.refresh_from_db()
    return accepted


def retry_offer_payment(tenant: Tenant, *, offer: Offer, actor: Actor, now: datetime | None = None) -> Offer:
    """After a failed payment (the customer fixed their card): pay again, never twice.

    A failed plan change is retried by billing on the same invoice. One billing had to give up
    (Stripe discarded it, or the licence moved) is quoted again; the same check as at acceptance
    applies: a different amount is shown first (`quote_stale`).
    """
    now = now or timezone.now()
    current = Offer.objects.for_tenant(tenant).select_related("plan_change", "account").get(pk=offer.pk)
    if current.state != S.ACCEPTED or current.plan_change is None:
        raise Conflict(
            f"An offer that is {current.get_state_display().lower()} has no payment to retry.",
            code=OffersErrorCode.WRONG_STATE,
            details={"state": current.state},
        )
    pc = current.plan_change
    if pc.state in (*IN_FLIGHT, PlanChangeState.SETTLED):
        return current
    if pc.state == PlanChangeState.FAILED and pc.failure_code != "quote_expired":
        retry_plan_change(tenant, plan_change=pc, actor=actor)
        record_audit(tenant, actor=actor, action="offer.payment_retried", obj=current, after={"plan_change": pc.pk})
        current.refresh_from_db()
        return current
    if current.expires_at <= now:
        raise Conflict("This offer has expired.", code=OffersErrorCode.OFFER_EXPIRED, details={"state": current.state})
    option = _option(current, current.accepted_option)
    plan_change = _fresh_plan_change(tenant, offer=current, option=option, actor=actor)
    with transaction.atomic():
        locked = lock_offer(tenant, current)
        if locked.state != S.ACCEPTED or locked.plan_change_id != pc.pk:
            return locked  # moved meanwhile (withdrawn, expired, or another retry won)
        plan_change = confirm_plan_change(tenant, plan_change=plan_change, actor=actor)
        locked.plan_change = plan_change
        locked.quote = quote_for(plan_change, option_key=option["key"])
        locked.quoted_at = plan_change.quoted_at
        locked.save(update_fields=["plan_change", "quote", "quoted_at", "updated_at"])
        record_audit(
            tenant,
            actor=actor,
            action="offer.payment_retried",
            obj=locked,
            before={"plan_change": pc.pk},
            after={"plan_change": plan_change.pk},
        )
    return locked


# --- settlement -----------------------------------------------------------------------------


def fulfil_offer(tenant: Tenant, *, offer: Offer, plan_change: PlanChange, now: datetime | None = None) -> Offer:
    """Billing settled the offer's plan change: accepted -> fulfilled, with what the settled invoice charged.

    Idempotent (a signal delivered twice, the sweep's catch-up). A settlement of an offer that closed
    meanwhile is recorded for staff, never turned into a fulfilment.
    """
    plan_change = PlanChange.objects.for_tenant(tenant).get(pk=plan_change.pk)
    current = Offer.objects.for_tenant(tenant).get(pk=offer.pk)
    if plan_change.state != PlanChangeState.SETTLED or current.state == S.FULFILLED:
        return current
    if current.state != S.ACCEPTED or current.plan_change_id != plan_change.pk:
        log.warning("Plan change %s settled for offer %s, which is %s", plan_change.pk, current.pk, current.state)
        record_audit(
            tenant,
            actor="system",
            action="offer.settled_after_close",
            obj=current,
            after={"state": current.state, "plan_change": plan_change.pk, "charged": plan_change.charged_amount},
        )
        return current
    return transition_offer(
        tenant,
        offer=current,
        to_state=S.FULFILLED,
        actor="billing",
        now=now or plan_change.settled_at or timezone.now(),
        note=f"plan change {plan_change.pk} settled",
        fields={"amount_charged": plan_change.charged_amount},
    )
