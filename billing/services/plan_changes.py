"""The upgrade hand-off: quote -> confirm -> Stripe -> settle (or fail, retry, cancel).

Invariants (DESIGN.md "Stripe"):
- The licence changes only in `settle_plan_change`, after Stripe says the invoice is paid
  (or, for a downgrade at the period end, after Stripe accepted the change). Stripe is
  asked with `payment_behavior="pending_if_incomplete"`, so it too applies the change only
  once the payment succeeds.
- A payment is never taken twice for one plan change: the subscription update carries
  `PlanChange.idempotency_key` and the exact item list stored with the quote (a retried
  task replays Stripe's first answer), and a payment retry pays the same open invoice.
- Quote == charge: the proration date is pinned in the quote and sent with the update;
  at settlement the invoice's lines are compared with the quoted lines and any difference
  is stored in `charge_mismatch` and audited.
- Stripe is called outside database transactions; each outcome is then written in a short
  atomic block that locks the PlanChange and re-checks its state (so sync answer, webhook
  and reconciliation may race and only the first one acts).
"""

from __future__ import annotations

import logging
from collections import Counter
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

from django.db import IntegrityError, transaction
from django.utils import timezone

from accounts.models import Tenant
from accounts.services import Actor, actor_label, record_audit, snapshot
from billing.errors import BillingErrorCode, BillingUnavailable, Conflict, InvalidInput, TierwiseError
from billing.models import (
    License,
    LicenseStatus,
    PlanChange,
    PlanChangeKind,
    PlanChangeState,
    StripeAccount,
    StripePrice,
)
from billing.proration import PriceLine, prorate
from billing.services.catalog_sync import ensure_stripe_price
from billing.services.licenses import (
    LICENSE_AUDIT_FIELDS,
    announce,
    compute_mrr,
    license_state,
    monthly_amount,
    record_change,
)
from billing.services.stripe_accounts import stripe_for
from billing.signals import plan_change_settled
from billing.stripe_client import (
    Invoice,
    ItemChange,
    ItemTarget,
    StripeDeclined,
    StripeError,
    StripeGateway,
    StripeRejected,
    StripeUnavailable,
    Subscription,
    plan_item_changes,
)
from catalog.models import GovernanceState, Price
from catalog.pricing import apply_percent

log = logging.getLogger(__name__)

QUOTE_TTL = timedelta(minutes=30)
# A scheduled downgrade is sent to Stripe a little before the period end (proration none), so the
# renewal invoice already bills the new price; the licence itself changes at the period end.
DOWNGRADE_LEAD = timedelta(hours=1)
HOLDING = (LicenseStatus.ACTIVE, LicenseStatus.TRIALING)


# --- Helpers -----------------------------------------------------------------------------------------


def unavailable(exc: StripeError) -> BillingUnavailable:
    return BillingUnavailable(
        "Stripe could not be reached; nothing was changed. Try again shortly.", details={"stripe": exc.message}
    )


def rejected(exc: StripeError) -> InvalidInput:
    return InvalidInput(
        "Stripe refused the request.",
        code=BillingErrorCode.STRIPE_REJECTED,
        details={"stripe": exc.message, "stripe_code": exc.code},
    )


def _lock(tenant: Tenant, plan_change_id: int) -> PlanChange:
    return (
        PlanChange.objects.for_tenant(tenant)
        .select_for_update(of=("self",))
        .select_related("license", "target_price", "target_price__tier", "from_price")
        .get(pk=plan_change_id)
    )


def _current_addon_prices(license: License) -> list[Price]:
    """The published price of each add-on the licence holds, on the licence's interval."""
    return [
        p
        for a in license.addons.all()
        for p in a.prices.filter(interval=license.interval, state=GovernanceState.PUBLISHED).order_by("-version")[:1]
    ]


def _is_downgrade(license: License, *, target: Price, seats: int, addon_prices: list[Price]) -> bool:
    """Annual -> monthly, or less revenue on the same interval: takes effect at the period end.

    Monthly -> annual is never a downgrade even when the annual saving lowers MRR: Stripe
    resets the cycle and charges the year at once. Both sides are compared before any
    renewal discount, so a loyalty discount does not make a same-price change look like an upgrade.
    """
    if license.interval != target.interval:
        return license.interval == "year"
    new_mrr = compute_mrr(price=target, seats=seats, addon_prices=addon_prices)
    current_mrr = compute_mrr(price=license.price, seats=license.seats, addon_prices=_current_addon_prices(license))
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


def _zero_line(like: PriceLine) -> PriceLine:
    return PriceLine(unit_amount=0, quantity=0, interval=like.interval, currency=like.currency)


def _local_estimate(
    tenant: Tenant,
    license: License,
    subscription: Subscription | None,
    *,
    changes: list[ItemChange],
    at: datetime,
) -> dict[str, Any]:
    """Our own proration of the same item changes (billing/proration.py), kept beside Stripe's quote.

    Item by item, as Stripe does it: a kept item that changes is credited and charged, an added
    item is charged, a deleted item is credited, an unchanged item is left out; a new
    subscription is its full first period. The licence's renewal discount, which Stripe applies
    as a coupon, is taken off each line. Customer credit balance is not known here.
    """
    by_stripe_id = {
        sp.stripe_price_id: sp.price
        for sp in StripePrice.objects.for_tenant(tenant)
        .select_related("price")
        .filter(
            stripe_price_id__in=[c.price_id for c in changes if c.price_id]
            + [i.price_id for i in (subscription.items if subscription else ())]
        )
    }

    def priced(stripe_price_id: str | None, quantity: int | None) -> PriceLine | None:
        price = by_stripe_id.get(stripe_price_id or "")
        if price is None:
            return None
        return PriceLine(
            unit_amount=price.amount,
            quantity=quantity or 0,
            interval="year" if price.interval == "year" else "month",
            currency=price.currency,
        )

    new_lines: dict[str | None, list[PriceLine]] = {}
    for change in changes:
        if change.deleted:
            continue
        line = priced(change.price_id, change.quantity)
        if line is None:
            return {}
        new_lines.setdefault(change.item_id, []).append(line)
    amounts: list[int] = []
    if subscription is None:
        amounts = [line.amount for lines in new_lines.values() for line in lines]
    else:
        start, end = subscription.current_period_start, subscription.current_period_end
        if start is None or end is None or not start <= at < end:
            return {}
        pairs: list[tuple[PriceLine | None, PriceLine | None, bool]] = []  # (before, after, unchanged)
        for item in subscription.items:
            before = priced(item.price_id, item.quantity)
            if before is None:
                return {}
            kept = next((c for c in changes if c.item_id == item.id and not c.deleted), None)
            after: PriceLine | None = new_lines.pop(item.id, [None])[0] if item.id in new_lines else None
            unchanged = kept is not None and kept.price_id in (None, item.price_id) and before == after
            pairs.append((before, after, unchanged))
        pairs.extend((None, line, False) for line in new_lines.pop(None, []))
        if new_lines:  # an item id Stripe does not know: no estimate
            return {}
        reset = any(a is not None and b is not None and a.cycle != b.cycle for b, a, _ in pairs)
        for before, after, unchanged in pairs:
            if unchanged and not reset:
                continue
            if before is None:
                assert after is not None
                if reset:  # the cycle restarts: an added item is a full new period, like every other
                    amounts.append(after.amount)
                    continue
                before = _zero_line(after)
            result = prorate(
                current=before,
                new=after or _zero_line(before),
                period_start=start,
                period_end=end,
                at=at,
            )
            amounts.extend(line.amount for line in result.lines)
    discount = Decimal(license.renewal_discount_percent or 0)
    amounts = [a - apply_percent(a, discount) if discount else a for a in amounts if a]
    return {"amount_due_now": max(sum(amounts), 0), "lines": amounts}


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
    for p in addon_prices:
        if p.tenant_id != tenant.pk or p.addon_id is None or p.state != GovernanceState.PUBLISHED:
            errors.setdefault("addon_prices", []).append(f"Price {p.pk} is not a published add-on price.")
        elif p.interval != target.interval or p.currency != target.currency:
            errors.setdefault("addon_prices", []).append(f"Price {p.pk} must match the plan's interval and currency.")
    if errors:
        raise InvalidInput("Invalid plan change.", details=errors)
    same_addons = sorted(p.pk for p in addon_prices) == sorted(p.pk for p in _current_addon_prices(license))
    if target.pk == license.price_id and seats == license.seats and same_addons:
        raise InvalidInput("The licence already holds exactly this.", code=BillingErrorCode.NOTHING_TO_CHANGE)


# --- Quote -------------------------------------------------------------------------------------------


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
) -> PlanChange:
    """Ask Stripe for the invoice this change would create now, pin its proration date, keep every line."""
    if license.tenant_id != tenant.pk:
        raise InvalidInput("Not a licence of this tenant.")
    seats = license.seats if seats is None else seats
    addon_prices = list(addon_prices or [])
    _validate_target(tenant, license, target=target_price, seats=seats, addon_prices=addon_prices)
    if license.status not in HOLDING or license.held_from_status:
        raise Conflict("Only an active licence can change plan.", code=BillingErrorCode.LICENSE_NOT_ACTIVE)
    if (
        PlanChange.objects.for_tenant(tenant)
        .filter(
            license=license, state__in=[PlanChangeState.PENDING, PlanChangeState.SCHEDULED, PlanChangeState.SUBMITTED]
        )
        .exists()
    ):
        raise Conflict("Another change for this licence is in progress.", code=BillingErrorCode.CHANGE_IN_FLIGHT)
    at = (at or timezone.now()).replace(microsecond=0)  # Stripe counts whole seconds
    settings_row = StripeAccount.objects.for_tenant(tenant).first()
    downgrade = _is_downgrade(license, target=target_price, seats=seats, addon_prices=addon_prices)
    # A new subscription has no period to wait for: it starts when its first invoice is paid.
    at_period_end = (
        downgrade
        and bool(license.stripe_subscription_id)
        and not (settings_row and settings_row.downgrade_prorated_credit)
    )
    same_addons = sorted(p.pk for p in addon_prices) == sorted(p.pk for p in _current_addon_prices(license))
    kind = _kind(license, target=target_price, seats=seats, same_addons=same_addons, downgrade=downgrade)
    new_mrr = compute_mrr(price=target_price, seats=seats, addon_prices=addon_prices)

    gateway = stripe_for(tenant)
    if kind == PlanChangeKind.NEW:
        _supersede_unpaid_new_subscriptions(tenant, license=license, actor=requested_by)
    try:
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
            preview = gateway.preview_change(
                customer_id=customer_id,
                subscription_id=subscription.id if subscription else None,
                changes=changes,
                proration_date=at,
            )
    except StripeUnavailable as exc:
        raise unavailable(exc) from exc
    except StripeRejected as exc:
        raise rejected(exc) from exc

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
    estimate = _local_estimate(tenant, license, subscription, changes=changes, at=at)
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
            target_price=target_price,
            target_seats=seats,
            proration_date=None if at_period_end or kind == PlanChangeKind.NEW else at,
            quote_lines=lines,
            quote_total=total,
            quote_amount_due=due,
            local_estimate={**estimate, "stripe_items": [c.as_dict() for c in changes], "mrr_after": new_mrr},
            currency=target_price.currency,
            quoted_at=timezone.now(),
            quote_expires_at=timezone.now() + QUOTE_TTL,
            effective_at=license.current_period_end if at_period_end else None,
            reference=reference[:64],
            requested_by_label=actor_label(requested_by)[:200],
            stripe_subscription_id=license.stripe_subscription_id,
        )
        plan_change.save()
        plan_change.target_addon_prices.set(addon_prices)
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
            },
        )
    return plan_change


def _ensure_customer(tenant: Tenant, gateway: StripeGateway, license: License) -> str:
    account = license.account
    contact = account.contacts.order_by("pk").first()
    customer = gateway.create_customer(
        email=contact.email if contact else "",
        name=account.name,
        metadata={"tierwise_account": account.external_id},
        idempotency_key=f"tw-{tenant.pk}-customer-{account.pk}",
    )
    License.objects.filter(pk=license.pk, stripe_customer_id="").update(stripe_customer_id=customer.id)
    license.stripe_customer_id = customer.id
    return customer.id


# --- Confirm -----------------------------------------------------------------------------------------


@transaction.atomic
def confirm_plan_change(tenant: Tenant, *, plan_change: PlanChange, actor: Actor) -> PlanChange:
    """The customer said yes: commit the change, then (on commit) hand it to Stripe."""
    plan_change = _lock(tenant, plan_change.pk)
    if plan_change.state != PlanChangeState.QUOTED:
        if plan_change.state in (
            PlanChangeState.PENDING,
            PlanChangeState.SCHEDULED,
            PlanChangeState.SUBMITTED,
            PlanChangeState.SETTLED,
        ):
            return plan_change  # confirming twice is the same as once
        raise Conflict(
            f"This change is {plan_change.get_state_display().lower()}.", code=BillingErrorCode.INVALID_STATE
        )
    if plan_change.quote_expires_at <= timezone.now():
        raise Conflict("The quote has expired; ask for a new one.", code=BillingErrorCode.QUOTE_EXPIRED)
    scheduled = plan_change.effective_at is not None
    plan_change.state = PlanChangeState.SCHEDULED if scheduled else PlanChangeState.PENDING
    plan_change.idempotency_key = f"tw-{tenant.pk}-plan-change-{plan_change.pk}"
    try:
        with transaction.atomic():
            plan_change.save(update_fields=["state", "idempotency_key", "updated_at"])
    except IntegrityError as exc:  # the one-in-flight constraint: another change was confirmed first
        raise Conflict(
            "Another change for this licence is in progress.", code=BillingErrorCode.CHANGE_IN_FLIGHT
        ) from exc
    record_audit(
        tenant,
        actor=actor,
        action="plan_change.confirmed",
        obj=plan_change,
        after={"state": plan_change.state, "idempotency_key": plan_change.idempotency_key},
    )
    if not scheduled:
        _enqueue_submit(tenant.pk, plan_change.pk)
    return plan_change


def _enqueue_submit(tenant_id: int, plan_change_id: int) -> None:
    from billing import tasks

    transaction.on_commit(lambda: tasks.submit_plan_change.delay(tenant_id, plan_change_id))


def _enqueue_resubmit(tenant_id: int, plan_change_id: int) -> None:
    from billing import tasks

    transaction.on_commit(lambda: tasks.retry_plan_change_payment.delay(tenant_id, plan_change_id))


# --- Stripe call -------------------------------------------------------------------------------------


def submit_plan_change(tenant: Tenant, *, plan_change_id: int) -> PlanChange:
    """Send the confirmed change to Stripe (task body). Safe to run again: same key, same body, same answer.

    Raises StripeUnavailable for the task to retry; every other outcome is written down.
    """
    plan_change = PlanChange.objects.for_tenant(tenant).select_related("license", "target_price").get(pk=plan_change_id)
    if plan_change.state not in (PlanChangeState.PENDING, PlanChangeState.SUBMITTED):
        return plan_change
    PlanChange.objects.filter(pk=plan_change.pk).update(attempts=plan_change.attempts + 1)
    gateway = stripe_for(tenant)
    changes = [ItemChange.from_dict(c) for c in plan_change.local_estimate.get("stripe_items", [])]
    license = plan_change.license
    try:
        if license.stripe_subscription_id:
            subscription = gateway.change_subscription(
                subscription_id=license.stripe_subscription_id,
                changes=changes,
                proration_date=plan_change.proration_date,
                proration_behavior="always_invoice",
                idempotency_key=plan_change.idempotency_key,
            )
        else:
            subscription = _create_subscription(gateway, plan_change, license, changes)
    except StripeUnavailable as exc:
        _note_failure(tenant, plan_change.pk, code="stripe_unavailable", message=exc.message, final=False)
        raise
    except StripeDeclined as exc:
        return mark_plan_change_failed(tenant, plan_change_id=plan_change.pk, code=exc.code, message=exc.message)
    except StripeRejected as exc:
        return mark_plan_change_failed(
            tenant, plan_change_id=plan_change.pk, code=exc.code or "stripe_rejected", message=exc.message
        )
    with transaction.atomic():
        locked = _lock(tenant, plan_change.pk)
        if locked.state in (PlanChangeState.PENDING, PlanChangeState.SUBMITTED):
            locked.state = PlanChangeState.SUBMITTED
            locked.stripe_invoice_id = subscription.latest_invoice_id or ""
            locked.stripe_subscription_id = subscription.id
            locked.save(update_fields=["state", "stripe_invoice_id", "stripe_subscription_id", "updated_at"])
        # The licence learns its new subscription id only at settlement: an unpaid (incomplete) first
        # subscription is not the licence's, and its expiry must not end the free plan.
    return reconcile_plan_change(tenant, plan_change_id=plan_change.pk, via="sync")


PLAN_CHANGE_METADATA_KEY = "tierwise_plan_change"


def _create_subscription(
    gateway: StripeGateway, plan_change: PlanChange, license: License, changes: list[ItemChange]
) -> Subscription:
    """The first paid subscription (from a free licence): one per plan change, ever.

    The create call carries the plan change's own idempotency key, so a retried task replays
    Stripe's first answer; past Stripe's 24 h replay window the subscription is found again by
    the plan change id in its metadata. `allow_incomplete`: a declined first payment leaves the
    subscription incomplete with its invoice open, and a retry pays that invoice.
    """
    if plan_change.stripe_subscription_id:
        return gateway.retrieve_subscription(plan_change.stripe_subscription_id)
    if plan_change.attempts > 0 or plan_change.payment_attempts > 0:
        existing = gateway.find_subscription(
            customer_id=license.stripe_customer_id,
            metadata_key=PLAN_CHANGE_METADATA_KEY,
            metadata_value=str(plan_change.pk),
        )
        if existing is not None:
            return existing
    return gateway.create_subscription(
        customer_id=license.stripe_customer_id,
        idempotency_key=plan_change.idempotency_key,
        items=[ItemTarget(c.price_id or "", c.quantity or 1) for c in changes if not c.deleted],
        metadata={"tierwise_account": license.account.external_id, PLAN_CHANGE_METADATA_KEY: str(plan_change.pk)},
        payment_behavior="allow_incomplete",
    )


def _supersede_unpaid_new_subscriptions(tenant: Tenant, *, license: License, actor: Actor) -> None:
    """A new quote replaces an earlier first purchase whose payment failed: its open invoice is voided and its
    incomplete subscription ended, so the customer cannot end up paying for two subscriptions."""
    for earlier in PlanChange.objects.for_tenant(tenant).filter(
        license=license, kind=PlanChangeKind.NEW, state=PlanChangeState.FAILED
    ):
        if not earlier.stripe_subscription_id and earlier.attempts and license.stripe_customer_id:
            # It failed without an answer (Stripe unreachable): its create call may have gone through after all.
            try:
                found = stripe_for(tenant).find_subscription(
                    customer_id=license.stripe_customer_id,
                    metadata_key=PLAN_CHANGE_METADATA_KEY,
                    metadata_value=str(earlier.pk),
                )
            except StripeUnavailable as exc:
                raise unavailable(exc) from exc
            if found is not None:
                PlanChange.objects.filter(pk=earlier.pk, stripe_subscription_id="").update(
                    stripe_subscription_id=found.id, stripe_invoice_id=found.latest_invoice_id or ""
                )
                earlier = reconcile_plan_change(tenant, plan_change_id=earlier.pk, via="reconcile")
                if earlier.state == PlanChangeState.SETTLED:
                    raise Conflict(
                        "An earlier purchase for this licence went through; ask for a new quote.",
                        code=BillingErrorCode.CHANGE_IN_FLIGHT,
                    )
        cancel_plan_change(tenant, plan_change=earlier, actor=actor, reason="Superseded by a new quote")


def _note_failure(tenant: Tenant, plan_change_id: int, *, code: str, message: str, final: bool) -> None:
    PlanChange.objects.for_tenant(tenant).filter(pk=plan_change_id).update(
        failure_code=code[:64], failure_message=message[:300], updated_at=timezone.now()
    )
    if final:
        mark_plan_change_failed(tenant, plan_change_id=plan_change_id, code=code, message=message)


def give_up_plan_change(tenant: Tenant, *, plan_change_id: int, message: str) -> PlanChange:
    """The task's retries are spent (Stripe unreachable): fail visibly; a retry later reuses the same key."""
    return mark_plan_change_failed(tenant, plan_change_id=plan_change_id, code="stripe_unavailable", message=message)


def _target_quantities(plan_change: PlanChange) -> dict[str, int]:
    return {
        c["price_id"]: c["quantity"]
        for c in plan_change.local_estimate.get("stripe_items", [])
        if not c.get("deleted") and c.get("price_id")
    }


def reconcile_plan_change(tenant: Tenant, *, plan_change_id: int, via: str) -> PlanChange:
    """Look at Stripe's truth (re-fetched, never trusted from an event) and settle or fail. Any caller, any order."""
    plan_change = PlanChange.objects.for_tenant(tenant).select_related("license").get(pk=plan_change_id)
    if plan_change.state in (
        PlanChangeState.SETTLED,
        PlanChangeState.CANCELED,
        PlanChangeState.QUOTED,
        PlanChangeState.SCHEDULED,
    ):
        return plan_change
    gateway = stripe_for(tenant)
    sub_id = plan_change.stripe_subscription_id or plan_change.license.stripe_subscription_id
    if not sub_id:
        return plan_change
    try:
        subscription = gateway.retrieve_subscription(sub_id)
        invoice_id = plan_change.stripe_invoice_id
        reached_stripe = subscription.has_pending_update or subscription.quantities() == _target_quantities(plan_change)
        if not invoice_id and plan_change.effective_at is None and subscription.latest_invoice_id and reached_stripe:
            # The webhook beat the task's own write: the update's invoice is the subscription's latest.
            invoice_id = subscription.latest_invoice_id
            PlanChange.objects.filter(pk=plan_change.pk, stripe_invoice_id="").update(stripe_invoice_id=invoice_id)
        invoice = gateway.retrieve_invoice(invoice_id) if invoice_id else None
        applied = not subscription.has_pending_update and subscription.quantities() == _target_quantities(plan_change)
        if applied and (invoice is None or invoice.is_paid):
            return settle_plan_change(
                tenant, plan_change_id=plan_change.pk, subscription=subscription, invoice=invoice, via=via
            )
        if invoice is not None and invoice.status == "void":
            return mark_plan_change_failed(
                tenant,
                plan_change_id=plan_change.pk,
                code="quote_expired",
                message="Stripe discarded the unpaid change; ask for a new quote.",
            )
        # A PENDING change belongs to its task (a first call or a retry is under way): an old failure must not
        # overwrite it. Only a SUBMITTED change (Stripe has answered) is failed from here.
        if invoice is not None and invoice.status == "open" and plan_change.state == PlanChangeState.SUBMITTED:
            failure = gateway.payment_failure(invoice.id or "")
            if failure is not None:
                return mark_plan_change_failed(
                    tenant, plan_change_id=plan_change.pk, code=failure.code, message=failure.message
                )
    except StripeUnavailable:
        raise
    except StripeRejected as exc:
        log.warning("Stripe refused a reconciliation read: %s", exc.message)
    return PlanChange.objects.get(pk=plan_change.pk)


# --- Outcomes ----------------------------------------------------------------------------------------


def _period_seconds(line: dict[str, Any]) -> int | None:
    try:
        start = datetime.fromisoformat(line["period_start"])
        end = datetime.fromisoformat(line["period_end"])
    except (KeyError, TypeError, ValueError):
        return None
    return int((end - start).total_seconds())


def compare_quote(
    quote_lines: list[dict[str, Any]],
    charged_lines: list[dict[str, Any]],
    *,
    quoted_due: int,
    charged_due: int | None,
    new_subscription: bool = False,
) -> dict[str, Any]:
    """Every difference between what we showed and what Stripe billed; empty when they agree.

    A line agrees when its amount, discount, price, proration flag and period agree. For a new
    subscription the first period starts when it is paid, not when it was quoted, so its
    full-period lines are compared by the period's length (a month is a month), not its dates.
    """

    def key(line: dict[str, Any]) -> tuple[Any, ...]:
        period: tuple[Any, ...] = (line.get("period_start"), line.get("period_end"))
        if new_subscription and not line.get("proration"):
            period = ("length", _period_seconds(line))
        return (
            line.get("amount"),
            line.get("discount", 0),
            *period,
            line.get("price_id"),
            bool(line.get("proration")),
        )

    quoted, charged = Counter(map(key, quote_lines)), Counter(map(key, charged_lines))
    missing, unexpected = quoted - charged, charged - quoted
    difference: dict[str, Any] = {}
    if charged_due is not None and charged_due != quoted_due:
        difference.update(quoted_amount_due=quoted_due, charged_amount=charged_due, difference=charged_due - quoted_due)
    if missing or unexpected:
        difference["quoted_lines_not_billed"] = [list(k) for k in missing.elements()]
        difference["billed_lines_not_quoted"] = [list(k) for k in unexpected.elements()]
    return difference


@transaction.atomic
def settle_plan_change(
    tenant: Tenant, *, plan_change_id: int, subscription: Subscription | None, invoice: Invoice | None, via: str
) -> PlanChange:
    """Payment settled: the licence changes, a LicenseChange is written, the world is told. Once only."""
    plan_change = _lock(tenant, plan_change_id)
    if plan_change.state == PlanChangeState.SETTLED:
        return plan_change
    license = (
        License.objects.for_tenant(tenant).select_for_update().select_related("tier").get(pk=plan_change.license_id)
    )
    before, mrr_before = license_state(license), license.mrr
    audit_before = snapshot(license, LICENSE_AUDIT_FIELDS)
    target = plan_change.target_price
    change_kind = plan_change.kind
    if change_kind == PlanChangeKind.NEW:  # the licence existed (e.g. on the free tier): it moves up or down
        change_kind = "upgrade" if target.tier.rank >= license.tier.rank else "downgrade"
    addon_prices = list(plan_change.target_addon_prices.select_related("addon"))
    license.tier = target.tier
    license.price = target
    license.seats = plan_change.target_seats
    license.interval = target.interval
    license.currency = target.currency
    if license.status == LicenseStatus.TRIALING and invoice is not None and invoice.is_paid:
        license.status = LicenseStatus.ACTIVE
    if subscription is not None:
        license.stripe_subscription_id = subscription.id
        license.stripe_customer_id = subscription.customer_id or license.stripe_customer_id
        tier_price_id = plan_change.local_estimate.get("stripe_items", [{}])[0].get("price_id")
        license.stripe_subscription_item_id = next(
            (i.id for i in subscription.items if i.price_id == tier_price_id), license.stripe_subscription_item_id
        )
        if subscription.current_period_start and subscription.current_period_end:
            license.current_period_start = subscription.current_period_start
            license.current_period_end = subscription.current_period_end
    license.mrr = compute_mrr(
        price=target, seats=license.seats, addon_prices=addon_prices, discount_percent=license.renewal_discount_percent
    )
    license.save()
    license.addons.set([p.addon for p in addon_prices])

    charged_lines = [line.as_dict() for line in invoice.lines] if invoice is not None else []
    mismatch = (
        {}
        if invoice is None
        else compare_quote(
            plan_change.quote_lines,
            charged_lines,
            quoted_due=plan_change.quote_amount_due,
            charged_due=invoice.amount_paid if invoice.is_paid else invoice.amount_due,
            new_subscription=plan_change.kind == PlanChangeKind.NEW,
        )
    )
    plan_change.state = PlanChangeState.SETTLED
    plan_change.settled_at = timezone.now()
    plan_change.settled_via = via
    plan_change.charged_amount = invoice.amount_paid if invoice is not None else 0
    plan_change.charged_lines = charged_lines
    plan_change.charge_mismatch = mismatch
    plan_change.failure_code = ""
    plan_change.failure_message = ""
    plan_change.save()
    record_change(
        license,
        kind=change_kind,
        before=before,
        actor=plan_change.requested_by_label or "system",
        reason=f"Plan change #{plan_change.pk} settled ({via})",
        reference=plan_change.reference or f"plan_change:{plan_change.pk}",
        mrr_before=mrr_before,
        stripe_invoice_id=(invoice.id or "") if invoice is not None else "",
    )
    record_audit(
        tenant,
        actor="stripe" if via == "webhook" else "system",
        action="plan_change.settled",
        obj=plan_change,
        before={"license": audit_before},
        after={
            "via": via,
            "charged_amount": plan_change.charged_amount,
            "license": snapshot(license, LICENSE_AUDIT_FIELDS),
        },
    )
    if mismatch:
        # Quote == charge is checked, not hoped: a difference is recorded and shown, never swallowed.
        record_audit(tenant, actor="system", action="plan_change.charge_mismatch", obj=plan_change, after=mismatch)
        log.warning("Charge differs from quote", extra={"plan_change": plan_change.pk, "mismatch": mismatch})
    announce(license)
    tenant_id, account_id, pc_id, reference = tenant.pk, license.account_id, plan_change.pk, plan_change.reference
    transaction.on_commit(
        lambda: plan_change_settled.send(
            sender=PlanChange, tenant_id=tenant_id, account_id=account_id, plan_change_id=pc_id, reference=reference
        )
    )
    return plan_change


@transaction.atomic
def mark_plan_change_failed(tenant: Tenant, *, plan_change_id: int, code: str, message: str) -> PlanChange:
    """The payment (or the call) failed: the licence stays as it was, the state says why."""
    plan_change = _lock(tenant, plan_change_id)
    if plan_change.state in (PlanChangeState.SETTLED, PlanChangeState.CANCELED, PlanChangeState.FAILED):
        if plan_change.state == PlanChangeState.FAILED and plan_change.failure_code != code:
            plan_change.failure_code, plan_change.failure_message = code[:64], message[:300]
            plan_change.save(update_fields=["failure_code", "failure_message", "updated_at"])
        return plan_change  # a late failure never undoes a settlement
    plan_change.state = PlanChangeState.FAILED
    plan_change.failure_code = code[:64]
    plan_change.failure_message = message[:300]
    plan_change.save(update_fields=["state", "failure_code", "failure_message", "updated_at"])
    record_audit(
        tenant, actor="system", action="plan_change.failed", obj=plan_change, after={"code": code, "message": message}
    )
    return plan_change


# --- Retry and cancel ----------------------------------------------------------------------------------


@transaction.atomic
def retry_plan_change(tenant: Tenant, *, plan_change: PlanChange, actor: Actor) -> PlanChange:
    """After the customer fixed their card: try the payment again (the same invoice; never a second one)."""
    plan_change = _lock(tenant, plan_change.pk)
    if plan_change.state != PlanChangeState.FAILED:
        if plan_change.state in (PlanChangeState.PENDING, PlanChangeState.SUBMITTED, PlanChangeState.SETTLED):
            return plan_change
        raise Conflict(
            f"This change is {plan_change.get_state_display().lower()}.", code=BillingErrorCode.INVALID_STATE
        )
    if plan_change.failure_code == "quote_expired":
        raise Conflict("Stripe discarded this change; ask for a new quote.", code=BillingErrorCode.QUOTE_EXPIRED)
    plan_change.state = PlanChangeState.PENDING
    plan_change.payment_attempts += 1
    try:
        with transaction.atomic():
            plan_change.save(update_fields=["state", "payment_attempts", "updated_at"])
    except IntegrityError as exc:
        raise Conflict(
            "Another change for this licence is in progress.", code=BillingErrorCode.CHANGE_IN_FLIGHT
        ) from exc
    record_audit(
        tenant,
        actor=actor,
        action="plan_change.retried",
        obj=plan_change,
        after={"payment_attempt": plan_change.payment_attempts},
    )
    _enqueue_resubmit(tenant.pk, plan_change.pk)
    return plan_change


def retry_plan_change_payment(tenant: Tenant, *, plan_change_id: int) -> PlanChange:
    """Task body for a retry: pay the open invoice of the pending update, or re-send the first call."""
    plan_change = PlanChange.objects.for_tenant(tenant).get(pk=plan_change_id)
    if plan_change.state != PlanChangeState.PENDING:
        return plan_change
    if not plan_change.stripe_invoice_id:
        return submit_plan_change(tenant, plan_change_id=plan_change.pk)
    gateway = stripe_for(tenant)
    try:
        invoice = gateway.retrieve_invoice(plan_change.stripe_invoice_id)
        if invoice.status == "open":
            gateway.pay_invoice(
                invoice.id or "", idempotency_key=f"{plan_change.idempotency_key}-pay-{plan_change.payment_attempts}"
            )
    except StripeDeclined as exc:
        return mark_plan_change_failed(tenant, plan_change_id=plan_change.pk, code=exc.code, message=exc.message)
    except StripeRejected as exc:
        return mark_plan_change_failed(
            tenant, plan_change_id=plan_change.pk, code=exc.code or "stripe_rejected", message=exc.message
        )
    PlanChange.objects.filter(pk=plan_change.pk, state=PlanChangeState.PENDING).update(
        state=PlanChangeState.SUBMITTED, updated_at=timezone.now()
    )
    return reconcile_plan_change(tenant, plan_change_id=plan_change.pk, via="retry")


def cancel_plan_change(tenant: Tenant, *, plan_change: PlanChange, actor: Actor, reason: str = "") -> PlanChange:
    """Withdraw a quote, a scheduled downgrade or a failed change (voiding its unpaid invoice in Stripe)."""
    plan_change = PlanChange.objects.for_tenant(tenant).get(pk=plan_change.pk)
    if plan_change.state in (PlanChangeState.PENDING, PlanChangeState.SUBMITTED):
        raise Conflict("The change is with Stripe right now; wait for its result.", code=BillingErrorCode.INVALID_STATE)
    if plan_change.state in (PlanChangeState.SETTLED, PlanChangeState.CANCELED):
        return plan_change
    if plan_change.state == PlanChangeState.FAILED and plan_change.stripe_invoice_id:
        gateway = stripe_for(tenant)
        try:
            invoice = gateway.retrieve_invoice(plan_change.stripe_invoice_id)
            if invoice.status == "open":
                gateway.void_invoice(invoice.id or "", idempotency_key=f"{plan_change.idempotency_key}-void")
            if plan_change.kind == PlanChangeKind.NEW and plan_change.stripe_subscription_id:
                subscription = gateway.retrieve_subscription(plan_change.stripe_subscription_id)
                if subscription.status == "incomplete":  # never paid: nothing of the customer's ends with it
                    gateway.cancel_subscription(subscription.id)
        except StripeUnavailable as exc:
            raise unavailable(exc) from exc
        except StripeRejected as exc:
            raise rejected(exc) from exc
    with transaction.atomic():
        locked = _lock(tenant, plan_change.pk)
        if locked.state in (PlanChangeState.SETTLED, PlanChangeState.CANCELED):
            return locked
        locked.state = PlanChangeState.CANCELED
        locked.failure_message = (reason or locked.failure_message)[:300]
        locked.save(update_fields=["state", "failure_message", "updated_at"])
        record_audit(tenant, actor=actor, action="plan_change.canceled", obj=locked, after={"reason": reason})
    return locked


# --- Downgrades at the period end ------------------------------------------------------------------------


def apply_due_plan_changes(*, now: datetime | None = None) -> int:
    """Beat: send scheduled downgrades to Stripe shortly before the period end, settle them at the end."""
    now = now or timezone.now()
    done = 0
    due = PlanChange.objects.filter(state=PlanChangeState.SCHEDULED, effective_at__lte=now + DOWNGRADE_LEAD)
    for plan_change in due.select_related("tenant", "license")[:500]:
        try:
            _apply_scheduled(plan_change.tenant, plan_change_id=plan_change.pk, now=now)
            done += 1
        except (StripeError, TierwiseError) as exc:
            log.warning("Scheduled plan change %s not applied yet: %s", plan_change.pk, exc)
    ready = PlanChange.objects.filter(
        state=PlanChangeState.SUBMITTED,
        effective_at__lte=now,
        stripe_invoice_id="",
        kind__in=[PlanChangeKind.DOWNGRADE, PlanChangeKind.INTERVAL, PlanChangeKind.SEATS],
    )
    for plan_change in ready.select_related("tenant")[:500]:
        settle_plan_change(
            plan_change.tenant, plan_change_id=plan_change.pk, subscription=None, invoice=None, via="schedule"
        )
        done += 1
    return done


def _apply_scheduled(tenant: Tenant, *, plan_change_id: int, now: datetime) -> None:
    plan_change = PlanChange.objects.for_tenant(tenant).select_related("license").get(pk=plan_change_id)
    if plan_change.state != PlanChangeState.SCHEDULED:
        return
    license = plan_change.license
    if license.stripe_subscription_id:
        changes = [ItemChange.from_dict(c) for c in plan_change.local_estimate.get("stripe_items", [])]
        stripe_for(tenant).change_subscription(
            subscription_id=license.stripe_subscription_id,
            changes=changes,
            proration_date=None,
            proration_behavior="none",
            idempotency_key=plan_change.idempotency_key,
            pending_if_incomplete=False,
        )
    with transaction.atomic():
        locked = _lock(tenant, plan_change_id)
        if locked.state == PlanChangeState.SCHEDULED:
            locked.state = PlanChangeState.SUBMITTED
            locked.save(update_fields=["state", "updated_at"])
    if plan_change.effective_at is not None and plan_change.effective_at <= now:
        settle_plan_change(tenant, plan_change_id=plan_change_id, subscription=None, invoice=None, via="schedule")


def reconcile_stale_plan_changes(*, older_than: timedelta = timedelta(minutes=2)) -> int:
    """Beat: catch changes whose webhook never came or whose task died (each call is idempotent)."""
    from billing import tasks

    cutoff = timezone.now() - older_than
    count = 0
    for pc in PlanChange.objects.filter(
        state__in=[PlanChangeState.PENDING, PlanChangeState.SUBMITTED], updated_at__lt=cutoff
    ).exclude(stripe_invoice_id="", state="submitted")[:200]:
        if pc.state == PlanChangeState.PENDING:
            tasks.retry_plan_change_payment.delay(pc.tenant_id, pc.pk)
        else:
            tasks.reconcile_plan_change.delay(pc.tenant_id, pc.pk)
        count += 1
    return count


def monthly_total(price: Price, seats: int) -> int:
    return monthly_amount(price, seats)
