"""Quote: ask Stripe for the invoice a change would create now, pin its proration date, keep every line."""

from __future__ import annotations

import logging
from datetime import datetime, timedelta
from decimal import Decimal

from django.db import transaction
from django.utils import timezone

from accounts.models import Tenant
from accounts.services import Actor, actor_label, record_audit
from billing.errors import BillingErrorCode, Conflict, InvalidInput, stripe_errors_translated
from billing.models import (
    License,
    LicenseStatus,
    PlanChange,
    PlanChangeItem,
    PlanChangeKind,
    PlanChangeState,
)
from billing.selectors import license_addon_prices, open_plan_change, stripe_account_for
from billing.services.catalog_sync import ensure_stripe_price
from billing.services.licenses import compute_mrr, monthly_amount
from billing.services.plan_changes.discounts import clean_discount_term, clean_year_percents, ensure_coupon
from billing.services.plan_changes.estimate import _local_estimate
from billing.services.plan_changes.first_purchase import _ensure_customer, _supersede_unpaid_new_subscriptions
from billing.services.stripe_accounts import stripe_for
from billing.stripe_client import ItemTarget, StripeGateway, Subscription, plan_item_changes
from catalog.models import GovernanceState, Price
from catalog.selectors import addon_sold_with, tier_seat_limit

log = logging.getLogger(__name__)

QUOTE_TTL = timedelta(minutes=30)
HOLDING = (LicenseStatus.ACTIVE, LicenseStatus.TRIALING)


def _is_downgrade(license: License, *, target: Price, seats: int, addon_prices: list[Price]) -> bool:
    """Annual -> monthly, or less revenue on the same interval: takes effect at the period end.

    Monthly -> annual is never a downgrade even when the annual saving lowers MRR: Stripe
    resets the cycle and charges the year at once. Both sides are compared before any
    renewal discount, so a loyalty discount does not make a same-price change look like an upgrade.
    """
    if license.interval != target.interval:
        return license.interval == "year"
    new_mrr = compute_mrr(price=target, seats=seats, addon_prices=addon_prices)
    current_mrr = compute_mrr(
        price=license.price, seats=license.seats, addon_prices=license_addon_prices(license.tenant, license)
    )
    return new_mrr < current_mrr


def _kind(license: License, *, target: Price, seats: int, same_addons: bool, downgrade: bool) -> str:
    if not license.stripe_subscription_id:
        return PlanChangeKind.NEW  # a free (or unbilled) licence: the first paid period starts a subscription
    if target.interval != license.interval:
        return PlanChangeKind.INTERVAL
    if downgrade:
        return PlanChangeKind.DOWNGRADE
    if target.pk == license.price_id and same_addons:
        return PlanChangeKind.SEATS
    return PlanChangeKind.UPGRADE


def _targets(
    tenant: Tenant,
    gateway: StripeGateway,
    license: License,
    subscription: Subscription | None,
    *,
    target: Price,
    seats: int,
    addon_prices: list[Price],
) -> list[ItemTarget]:
    tier_price = ensure_stripe_price(tenant, price=target, gateway=gateway)
    tier_item = None
    if subscription is not None and subscription.items:
        tier_item = next(
            (i.id for i in subscription.items if i.id == license.stripe_subscription_item_id), subscription.items[0].id
        )
    targets = [ItemTarget(tier_price.stripe_price_id, seats if target.per_seat else 1, tier_item)]
    existing = {i.price_id: i.id for i in (subscription.items if subscription else ()) if i.id != tier_item}
    for addon_price in addon_prices:
        mapped = ensure_stripe_price(tenant, price=addon_price, gateway=gateway)
        targets.append(
            ItemTarget(
                mapped.stripe_price_id, seats if addon_price.per_seat else 1, existing.get(mapped.stripe_price_id)
            )
        )
    return targets


def _validate_target(tenant: Tenant, license: License, *, target: Price, seats: int, addon_prices: list[Price]) -> None:
    errors: dict[str, list[str]] = {}
    if target.tenant_id != tenant.pk or target.tier_id is None:
        errors["target_price"] = ["Not a tier price of this tenant."]
    elif target.state != GovernanceState.PUBLISHED:
        errors["target_price"] = ["Only published prices can be bought."]
    elif target.currency != license.currency:
        errors["target_price"] = [f"The licence is billed in {license.currency}; this price is in {target.currency}."]
    if seats < 1:
        errors["seats"] = ["At least one seat."]
    elif target.tier_id is not None and "target_price" not in errors:
        limit = tier_seat_limit(target.tier)
        if limit is not None and seats > limit:
            errors["seats"] = [f"The tier allows at most {limit} seat(s)."]
    for p in addon_prices:
        if p.tenant_id != tenant.pk or p.addon_id is None or p.state != GovernanceState.PUBLISHED:
            errors.setdefault("addon_prices", []).append(f"Price {p.pk} is not a published add-on price.")
        elif p.interval != target.interval or p.currency != target.currency:
            errors.setdefault("addon_prices", []).append(f"Price {p.pk} must match the plan's interval and currency.")
        elif target.tier_id is not None and not addon_sold_with(p.addon, target.tier):
            errors.setdefault("addon_prices", []).append(f"{p.addon.name} is not sold with {target.tier.name}.")
    if errors:
        raise InvalidInput("Invalid plan change.", details=errors)
    same_addons = sorted(p.pk for p in addon_prices) == sorted(
        p.pk for p in license_addon_prices(license.tenant, license)
    )
    if target.pk == license.price_id and seats == license.seats and same_addons:
        raise InvalidInput("The licence already holds exactly this.", code=BillingErrorCode.NOTHING_TO_CHANGE)


def quote_plan_change(
    tenant: Tenant,
    *,
    license: License,
    target_price: Price,
    seats: int | None = None,
    addon_prices: list[Price] | None = None,
    at: datetime | None = None,
    reference: str = "",
    requested_by: Actor = None,
    discount_percent: Decimal | None = None,
    discount_explanation: str = "",
    term_years: int | None = None,
    year_percents: list[str] | None = None,
) -> PlanChange:
    """Ask Stripe for the invoice this change would create now, pin its proration date, keep every line.

    `discount_percent` (an offer's discount) goes to Stripe as the subscription's coupon, so the preview,
    the invoice and every renewal carry it (plan_changes/discounts.py); `term_years` is the term bought,
    set on the licence at settlement. None for either keeps what the licence has. `year_percents`: a ramped
    term, the discount of each year (the first is `discount_percent`); after settlement a subscription schedule
    bills each year with its own (licenses/term_ramp.py).
    """
    if license.tenant_id != tenant.pk:
        raise InvalidInput("Not a licence of this tenant.")
    seats = license.seats if seats is None else seats
    addon_prices = list(addon_prices or [])
    _validate_target(tenant, license, target=target_price, seats=seats, addon_prices=addon_prices)
    percent, term_years, term_errors = clean_discount_term(
        tenant, target=target_price, discount_percent=discount_percent, term_years=term_years
    )
    ramp, ramp_errors = clean_year_percents(year_percents, percent=percent, term_years=term_years)
    term_errors.update(ramp_errors)
    if term_errors:
        raise InvalidInput("Invalid plan change.", details=term_errors)
    if license.status not in HOLDING or license.held_from_status:
        raise Conflict("Only an active licence can change plan.", code=BillingErrorCode.LICENSE_NOT_ACTIVE)
    if open_plan_change(tenant, license) is not None:
        raise Conflict("Another change for this licence is in progress.", code=BillingErrorCode.CHANGE_IN_FLIGHT)
    at = (at or timezone.now()).replace(microsecond=0)  # Stripe counts whole seconds
    settings_row = stripe_account_for(tenant)
    downgrade = _is_downgrade(license, target=target_price, seats=seats, addon_prices=addon_prices)
    # A new subscription has no period to wait for: it starts when its first invoice is paid.
    at_period_end = (
        downgrade
        and bool(license.stripe_subscription_id)
        and not (settings_row and settings_row.downgrade_prorated_credit)
    )
    same_addons = sorted(p.pk for p in addon_prices) == sorted(
        p.pk for p in license_addon_prices(license.tenant, license)
    )
    kind = _kind(license, target=target_price, seats=seats, same_addons=same_addons, downgrade=downgrade)
    if at_period_end and (percent is not None or term_years is not None):
        raise InvalidInput(
            "Invalid plan change.",
            details={
                "discount_percent" if percent is not None else "term_years": [
                    "A discount or term comes with a change charged now, not one that waits for the period end."
                ]
            },
        )
    new_mrr = compute_mrr(price=target_price, seats=seats, addon_prices=addon_prices)

    gateway = stripe_for(tenant)
    if kind == PlanChangeKind.NEW:
        _supersede_unpaid_new_subscriptions(tenant, license=license, actor=requested_by)
    with stripe_errors_translated():
        subscription = (
            gateway.retrieve_subscription(license.stripe_subscription_id) if license.stripe_subscription_id else None
        )
        if subscription is not None and subscription.has_pending_update:
            raise Conflict(
                "Stripe still holds an unpaid change for this subscription.", code=BillingErrorCode.CHANGE_IN_FLIGHT
            )
        targets = _targets(
            tenant, gateway, license, subscription, target=target_price, seats=seats, addon_prices=addon_prices
        )
        changes = plan_item_changes(subscription, targets)
        customer_id = license.stripe_customer_id
        if at_period_end:
            preview = None
        else:
            if not customer_id:
                customer_id = _ensure_customer(tenant, gateway, license)
            coupon_id = (
                ensure_coupon(tenant, gateway, percent=percent, term_years=term_years, currency=license.currency)
                if percent is not None
                else None
            )
            preview = gateway.preview_change(
                customer_id=customer_id,
                subscription_id=subscription.id if subscription else None,
                changes=changes,
                proration_date=at,
                coupon_id=coupon_id,
            )

    if preview is not None:
        lines = [line.as_dict() for line in preview.lines]
        total, due = preview.total, preview.amount_due
    else:
        # Nothing is charged now; the next renewal bills the new price. Shown as the one line it is.
        effective = license.current_period_end
        total, due = 0, 0
        lines = [
            {
                "description": f"From {effective:%d %b %Y}: {target_price.tier.name}, {seats} seat(s), "
                f"{target_price.get_interval_display().lower()}",
                "amount": sum(
                    t.quantity * p.amount for t, p in zip(targets, [target_price, *addon_prices], strict=True)
                ),
                "currency": target_price.currency,
                "period_start": effective.isoformat(),
                "period_end": None,
                "proration": False,
                "price_id": targets[0].price_id,
                "quantity": seats,
            }
        ]
    estimate = _local_estimate(tenant, license, subscription, changes=changes, at=at, discount_percent=percent)
    if estimate and preview is not None:
        estimate["matches_stripe"] = estimate["amount_due_now"] == preview.amount_due
        if not estimate["matches_stripe"]:
            log.warning("Local proration differs from Stripe's preview", extra={"license": license.pk})

    with transaction.atomic():
        plan_change = PlanChange(
            tenant=tenant,
            license=license,
            account_id=license.account_id,
            kind=kind,
            state=PlanChangeState.QUOTED,
            from_price=license.price,
            from_seats=license.seats,
            from_subscription_id=license.stripe_subscription_id,
            target_price=target_price,
            target_seats=seats,
            proration_date=None if at_period_end or kind == PlanChangeKind.NEW else at,
            quote_lines=lines,
            quote_total=total,
            quote_amount_due=due,
            local_estimate={**estimate, "mrr_after": new_mrr},
            currency=target_price.currency,
            quoted_at=timezone.now(),
            quote_expires_at=timezone.now() + QUOTE_TTL,
            effective_at=license.current_period_end if at_period_end else None,
            reference=reference[:64],
            requested_by_label=actor_label(requested_by)[:200],
            stripe_subscription_id=license.stripe_subscription_id,
            discount_percent=percent,
            discount_explanation=discount_explanation[:300] if percent is not None else "",
            term_years=term_years,
            year_percents=ramp,
        )
        plan_change.save()
        plan_change.target_addon_prices.set(addon_prices)
        plan_change.from_addons.set(license.addons.all())
        PlanChangeItem.objects.bulk_create(
            PlanChangeItem(
                tenant=tenant,
                plan_change=plan_change,
                position=position,
                item_id=change.item_id or "",
                stripe_price_id=change.price_id or "",
                quantity=change.quantity,
                deleted=change.deleted,
            )
            for position, change in enumerate(changes)
        )
        record_audit(
            tenant,
            actor=requested_by,
            action="plan_change.quoted",
            obj=plan_change,
            after={
                "kind": kind,
                "target_price": target_price.pk,
                "seats": seats,
                "amount_due": due,
                "proration_date": None if at_period_end or kind == PlanChangeKind.NEW else at.isoformat(),
                "discount_percent": None if percent is None else str(percent),
                "term_years": term_years,
                "year_percents": ramp,
            },
        )
    return plan_change


def monthly_total(price: Price, seats: int) -> int:
    return monthly_amount(price, seats)
