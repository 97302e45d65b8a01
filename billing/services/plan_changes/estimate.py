"""Our own proration of a quoted change, kept beside Stripe's preview to catch a quote we cannot explain."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Any

from accounts.models import Tenant
from billing.models import License, StripePrice
from billing.proration import PriceLine, prorate
from billing.stripe_client import ItemChange, Subscription
from catalog.pricing import apply_percent


def _zero_line(like: PriceLine) -> PriceLine:
    return PriceLine(unit_amount=0, quantity=0, interval=like.interval, currency=like.currency)


def _local_estimate(
    tenant: Tenant,
    license: License,
    subscription: Subscription | None,
    *,
    changes: list[ItemChange],
    at: datetime,
    discount_percent: Decimal | None = None,
) -> dict[str, Any]:
    """Our own proration of the same item changes (billing/proration.py), kept beside Stripe's quote.

    Item by item, as Stripe does it: a kept item that changes is credited and charged, an added
    item is charged, a deleted item is credited, an unchanged item is left out; a new
    subscription is its full first period. The licence's renewal discount, which Stripe applies
    as a coupon, is taken off each line; with the change's own `discount_percent` (its coupon replaces
    the subscription's before the invoice is drawn up) that is taken off the charges, while a credit
    for unused time still gives back what its period was paid with (the licence's discount), as Stripe
    credits a proration. Customer credit balance is not known here.
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
    paid_with = Decimal(license.renewal_discount_percent or 0)  # what the current period was paid with
    charged_with = paid_with if discount_percent is None else discount_percent

    def net(amount: int) -> int:
        # A credit gives back what was paid (its period's discount); a charge takes the change's discount.
        discount = paid_with if amount < 0 else charged_with
        return amount - apply_percent(amount, discount) if discount else amount

    amounts = [net(a) for a in amounts if a]
    return {"amount_due_now": max(sum(amounts), 0), "lines": amounts}
