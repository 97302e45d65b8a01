"""Writes that follow Stripe: the subscription's status and period, its end, the settled plan change,
the Stripe customer, and delinquency."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Any

from django.db import transaction
from django.utils import timezone

from accounts.models import Tenant
from accounts.services import Actor, snapshot
from billing.models import License, LicenseStatus
from billing.proration import add_interval
from billing.services.licenses.money import compute_mrr
from billing.services.licenses.records import (
    LICENSE_AUDIT_FIELDS,
    _audit,
    _lock,
    announce,
    license_state,
    record_change,
)
from billing.services.licenses.term_ramp import follow_term_year, is_ramp
from billing.stripe_client import Subscription
from catalog.models import Price

STRIPE_STATUS = {
    "active": LicenseStatus.ACTIVE,
    "trialing": LicenseStatus.TRIALING,
    "past_due": LicenseStatus.PAST_DUE,
    "unpaid": LicenseStatus.PAST_DUE,
    "canceled": LicenseStatus.CANCELED,
    "incomplete_expired": LicenseStatus.CANCELED,
}


@transaction.atomic
def end_license(
    tenant: Tenant,
    *,
    license: License,
    actor: Actor,
    reason: str,
    at: datetime | None = None,
    stripe_invoice_id: str = "",
) -> License:
    """The subscription ended (cancel at period end reached, or Stripe deleted it): MRR goes to zero."""
    license = _lock(tenant, license)
    if license.status == LicenseStatus.CANCELED and not license.held_from_status:
        return license
    before, mrr_before, state_before = snapshot(license, LICENSE_AUDIT_FIELDS), license.mrr, license_state(license)
    if license.held_from_status:
        license.held_from_status = LicenseStatus.CANCELED  # restoring a revoked, ended licence keeps it ended
    else:
        license.status = LicenseStatus.CANCELED
    license.cancel_at_period_end = False
    license.mrr = 0
    license.status_reason = reason[:200]
    license.save()
    record_change(
        license,
        kind="cancel",
        before=state_before,
        actor=actor,
        reason=reason,
        mrr_before=mrr_before,
        stripe_invoice_id=stripe_invoice_id,
        effective_at=at,
    )
    _audit(license, actor=actor, action="license.ended", before=before)
    announce(license)
    return license


@transaction.atomic
def sync_license_from_subscription(
    tenant: Tenant, *, license: License, subscription: Subscription, event_created: datetime | None = None
) -> License:
    """Follow Stripe's status, period and cancel flag. Tier/price/seats never change here (settlement does)."""
    license = _lock(tenant, license)
    if subscription.status in ("canceled", "incomplete_expired"):
        return end_license(
            tenant,
            license=license,
            actor="stripe",
            reason="Subscription ended in Stripe",
            at=subscription.ended_at or subscription.canceled_at,
        )
    before = snapshot(license, LICENSE_AUDIT_FIELDS)
    status = STRIPE_STATUS.get(subscription.status)
    if status is not None:
        if license.held_from_status:
            license.held_from_status = status  # a revoke/suspend stays in force; restore returns to this
        else:
            license.status = status
    if subscription.current_period_start and subscription.current_period_end:
        license.current_period_start = subscription.current_period_start
        license.current_period_end = subscription.current_period_end
    license.cancel_at_period_end = subscription.cancel_at_period_end
    if license.stripe_schedule_id and not subscription.schedule_id:
        license.stripe_schedule_id = ""  # Stripe ended the ramp's schedule (completed, released or canceled)
    follow_term_year(license)  # a period that starts a new year of a ramped term takes that year's discount
    if event_created and (license.stripe_synced_at is None or event_created > license.stripe_synced_at):
        license.stripe_synced_at = event_created
    license.save()
    after = snapshot(license, LICENSE_AUDIT_FIELDS)
    if any(before.get(k) != after.get(k) for k in after):
        _audit(license, actor="stripe", action="license.synced_from_stripe", before=before)
        announce(license)
    return license


def apply_plan_change(
    tenant: Tenant,
    *,
    license: License,
    target: Price,
    seats: int,
    addon_prices: list[Price],
    subscription: Subscription | None,
    tier_stripe_price_id: str | None,
    activate: bool,
    kind: str,
    actor: Actor,
    reason: str,
    reference: str,
    stripe_invoice_id: str = "",
    term_years: int | None = None,
    discount_percent: Decimal | None = None,
    year_percents: list[str] | None = None,
    fresh_period: bool = True,
) -> dict[str, Any]:
    """A settled plan change reaches the licence: tier, price, seats, add-ons, interval, Stripe ids, period, MRR.

    Called by plan-change settlement only, inside its transaction, with `license` locked and already checked
    (not held, not ended, still what the quote was made from). Writes the LicenseChange and announces it.
    Returns the licence's audit snapshot from before, for the settlement's own audit entry.

    `term_years` (the term bought; None keeps the licence's): a term of several years commits from the
    new period's start (as provisioning does) and is renewed as a whole at `commitment_ends_at`; one year
    has no commitment. `discount_percent` (the change's coupon, now the subscription's; None keeps the
    licence's) is the licence's renewal discount from now on: in its MRR and on each renewal until a term
    renewal replaces it. Both are recorded in the LicenseChange.
    """
    before, mrr_before = license_state(license), license.mrr
    before.update(_term_state(license))
    audit_before = snapshot(license, LICENSE_AUDIT_FIELDS)
    license.tier = target.tier
    license.price = target
    license.seats = seats
    license.interval = target.interval
    license.currency = target.currency
    if activate and license.status == LicenseStatus.TRIALING:
        license.status = LicenseStatus.ACTIVE
    if subscription is not None:
        license.stripe_subscription_id = subscription.id
        license.stripe_customer_id = subscription.customer_id or license.stripe_customer_id
        license.stripe_subscription_item_id = next(
            (i.id for i in subscription.items if i.price_id == tier_stripe_price_id),
            license.stripe_subscription_item_id,
        )
        if subscription.current_period_start and subscription.current_period_end:
            license.current_period_start = subscription.current_period_start
            license.current_period_end = subscription.current_period_end
    if term_years is not None:
        license.term_years = term_years
        term_from = license.current_period_start if fresh_period else license.current_period_end
        license.commitment_ends_at = add_interval(term_from, "year", term_years) if term_years > 1 else None
        license.term_percents = list(year_percents or []) if term_years > 1 and is_ramp(year_percents) else []
    if discount_percent is not None:
        license.renewal_discount_percent = discount_percent
    elif term_years is not None and license.term_percents:  # a ramp whose first year has no discount
        license.renewal_discount_percent = Decimal(license.term_percents[0])
    license.mrr = compute_mrr(
        price=target, seats=license.seats, addon_prices=addon_prices, discount_percent=license.renewal_discount_percent
    )
    license.save()
    license.addons.set([p.addon for p in addon_prices])
    record_change(
        license,
        kind=kind,
        before=before,
        actor=actor,
        reason=reason,
        reference=reference,
        mrr_before=mrr_before,
        stripe_invoice_id=stripe_invoice_id,
        to_extra=_term_state(license),
    )
    announce(license)
    return audit_before


def _term_state(license: License) -> dict[str, Any]:
    """The term and discount a plan change may set, as kept in its LicenseChange (from and to)."""
    return {
        "term_years": license.term_years,
        "commitment_ends_at": license.commitment_ends_at.isoformat() if license.commitment_ends_at else None,
        "renewal_discount_percent": str(Decimal(license.renewal_discount_percent or 0)),
        "term_percents": list(license.term_percents or []),
    }


def set_stripe_customer(tenant: Tenant, *, license: License, customer_id: str) -> None:
    """The licence's Stripe customer, recorded once (the first purchase creates it; a later answer keeps it)."""
    License.objects.for_tenant(tenant).filter(pk=license.pk, stripe_customer_id="").update(
        stripe_customer_id=customer_id, updated_at=timezone.now()
    )
    license.stripe_customer_id = (
        License.objects.for_tenant(tenant).values_list("stripe_customer_id", flat=True).get(pk=license.pk)
    )


def attach_stripe_subscription(
    tenant: Tenant, *, license: License, customer_id: str, subscription: Subscription
) -> None:
    """An existing licence is billed by this subscription from now on (an import, the demo seed): its Stripe ids
    and its period follow the subscription. What it holds (tier, price, seats) is not changed here."""
    period_start = subscription.current_period_start or license.current_period_start
    License.objects.for_tenant(tenant).filter(pk=license.pk).update(
        stripe_customer_id=customer_id,
        stripe_subscription_id=subscription.id,
        stripe_subscription_item_id=subscription.items[0].id if subscription.items else "",
        current_period_start=period_start,
        current_period_end=subscription.current_period_end or add_interval(period_start, license.interval),
        updated_at=timezone.now(),
    )


DELINQUENT_NOTE = "Stripe marks the customer delinquent"


def note_customer_delinquency(tenant: Tenant, *, license: License, delinquent: bool) -> None:
    """Delinquency is shown to staff as the status reason; the status itself follows the subscription (past_due).

    A reason someone else wrote (a hold, a cancellation) is never overwritten.
    """
    note = DELINQUENT_NOTE if delinquent else ""
    License.objects.for_tenant(tenant).filter(pk=license.pk, status_reason__in=["", DELINQUENT_NOTE]).exclude(
        status_reason=note
    ).update(status_reason=note, updated_at=timezone.now())
