"""The offer's quote: what accepting an option costs today and at the next renewal, every line shown.

`estimate_quote` computes it with billing's own proration (`billing.proration.prorate`), item by
item exactly as billing's local estimate does (billing/services/plan_changes/estimate.py) and with
the same rules as billing's quote (quoting.py), so the estimate is what Stripe will charge:
- the tier item is kept and changes price (credit for the unused time, charge for the rest of the
  period); an add-on on the same price is left alone, a new one is charged for the rest of the
  period, one given up is credited;
- an interval switch (month <-> year) restarts the cycle now: unused time credited, the new price
  charged in full for a new period from now;
- annual -> monthly, or less revenue on the same interval, is a downgrade: nothing now, the new
  price from the period end (unless the tenant's Stripe settings prorate downgrades);
- a licence without a Stripe subscription (free) starts one: the full first period from now;
- the licence's current renewal discount (a Stripe coupon) comes off each line, as Stripe does;
  an option's own discount (from policy) comes off each of the new price's charges (rounded per line,
  as Stripe does: catalog.pricing.discount_on_lines).
A credit larger than the charges is not refunded: it lowers the next renewal.

`quote_from_plan_change` shows billing's stored Stripe preview in the same shape (source "stripe").
"""

from __future__ import annotations

from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

from django.utils import timezone

from billing.models import License, PlanChange
from billing.proration import Interval, PriceLine, ProrationLine, add_interval, prorate
from billing.selectors import license_addon_prices, stripe_account_for
from billing.services.licenses import compute_mrr
from catalog.models import Price
from catalog.pricing import discount_on_lines, total_for_seats
from upgrades.offers.errors import InvalidInput, OffersErrorCode

Item = tuple[Price | None, PriceLine | None]


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value is not None else None


def _interval(price: Price) -> Interval:
    return "year" if price.interval == "year" else "month"


def _line(price: Price, seats: int) -> PriceLine:
    return PriceLine(
        unit_amount=price.amount,
        quantity=seats if price.per_seat else 1,
        interval=_interval(price),
        currency=price.currency,
    )


def _zero(like: PriceLine) -> PriceLine:
    return PriceLine(unit_amount=0, quantity=0, interval=like.interval, currency=like.currency)


def _name(price: Price) -> str:
    owner = price.tier if price.tier_id else price.addon
    return owner.name if owner is not None else str(price.pk)


def _what(price: Price, line: PriceLine) -> str:
    seats = f", {line.quantity} seat{'s' if line.quantity != 1 else ''}" if price.per_seat else ""
    return f"{_name(price)}{seats}, {'annual' if line.interval == 'year' else 'monthly'}"


def _entry(description: str, amount: int, start: datetime | None, end: datetime | None, kind: str) -> dict[str, Any]:
    return {
        "description": description,
        "amount": amount,
        "period_start": _iso(start),
        "period_end": _iso(end),
        "kind": kind,
    }


def _option_prices(license: License, option: dict[str, Any]) -> tuple[Price, list[Price]]:
    ids = [int(i) for i in option.get("price_ids") or []]
    found = {
        p.pk: p for p in Price.objects.for_tenant(license.tenant_id).select_related("tier", "addon").filter(pk__in=ids)
    }
    if not ids or any(i not in found for i in ids):
        raise InvalidInput(
            "The option's prices are not this tenant's.",
            code=OffersErrorCode.INVALID,
            details={"option": ["Its prices are not in this tenant's catalog."]},
        )
    return found[ids[0]], [found[i] for i in ids[1:]]


def _is_downgrade(
    license: License, *, target: Price, seats: int, addon_prices: list[Price], current_addons: list[Price]
) -> bool:
    """As billing decides it (quoting._is_downgrade): annual -> monthly, or less MRR on the same interval."""
    if license.interval != target.interval:
        return license.interval == "year"
    new_mrr = compute_mrr(price=target, seats=seats, addon_prices=addon_prices)
    return new_mrr < compute_mrr(price=license.price, seats=license.seats, addon_prices=current_addons)


def _pairs(
    license: License, *, target: Price, addon_prices: list[Price], current_addons: list[Price], seats: int
) -> list[tuple[Price | None, PriceLine | None, Price | None, PriceLine | None]]:
    """(before price, before line, after price, after line) per subscription item, as billing pairs them."""
    current_tier = license.price
    pairs: list[tuple[Price | None, PriceLine | None, Price | None, PriceLine | None]] = [
        (
            current_tier,
            _line(current_tier, license.seats) if current_tier is not None else None,
            target,
            _line(target, seats),
        )
    ]
    current_by_id = {p.pk: p for p in current_addons}
    kept: set[int] = set()
    for price in addon_prices:
        before = current_by_id.get(price.pk)
        if before is not None:
            kept.add(before.pk)
            pairs.append((before, _line(before, license.seats), price, _line(price, seats)))
        else:
            pairs.append((None, None, price, _line(price, seats)))
    pairs.extend((p, _line(p, license.seats), None, None) for p in current_addons if p.pk not in kept)
    return pairs


def _prorated(license: License, pairs: list, *, at: datetime) -> tuple[list[tuple[dict[str, Any], str]], datetime]:
    """Every proration line, tagged "credit" or "charge", and the next renewal date."""
    start, end = license.current_period_start, license.current_period_end
    reset = any(b is not None and a is not None and b.cycle != a.cycle for _, b, _, a in pairs)
    out: list[tuple[dict[str, Any], str]] = []
    next_at = end
    for before_price, before, after_price, after in pairs:
        if not reset and before is not None and after is not None and before_price == after_price and before == after:
            continue  # an unchanged item is not on the invoice
        if before is None:
            assert after is not None and after_price is not None
            if reset:  # the cycle restarts: an added item is a full new period, like every other
                new_end = add_interval(at, after.interval, after.interval_count)
                out.append(
                    (_entry(f"{_what(after_price, after)} from today", after.amount, at, new_end, "charge"), "charge")
                )
                continue
            before = _zero(after)
        result = prorate(current=before, new=after or _zero(before), period_start=start, period_end=end, at=at)
        if reset:
            next_at = result.next_renewal_at
        for line in result.lines:
            out.append(_describe(line, before_price, before, after_price, after, reset=reset))
    return [(entry, kind) for entry, kind in out if entry["amount"]], next_at


def _describe(
    line: ProrationLine,
    before_price: Price | None,
    before: PriceLine,
    after_price: Price | None,
    after: PriceLine | None,
    *,
    reset: bool,
) -> tuple[dict[str, Any], str]:
    if line.amount < 0 and before_price is not None:
        text = f"Credit for unused time on {_what(before_price, before)}"
        return _entry(text, line.amount, line.period_start, line.period_end, "credit"), "credit"
    assert after_price is not None and after is not None
    text = (
        f"{_what(after_price, after)} for a new period from today"
        if reset
        else f"{_what(after_price, after)} for the rest of the current period"
    )
    return _entry(text, line.amount, line.period_start, line.period_end, "charge"), "charge"


def _check_period(license: License, at: datetime) -> None:
    if not license.current_period_start <= at < license.current_period_end:
        raise InvalidInput(
            "The licence's current period does not include now; it must renew before it can be quoted.",
            code=OffersErrorCode.INVALID,
            details={"license": ["The current period does not include now."]},
        )


def estimate_quote(
    *,
    license: License,
    option: dict[str, Any],
    now: datetime | None = None,
    prices: tuple[Price, list[Price]] | None = None,
    current_addons: list[Price] | None = None,
) -> dict[str, Any]:
    """What accepting `option` costs today and at the next renewal, by billing's own arithmetic (see the module doc).

    `prices` (the option's tier and add-on prices, in `price_ids` order) and `current_addons` (what the
    licence's add-ons cost now) may be passed by a caller that read them already for a batch.
    """
    at = (now or timezone.now()).replace(microsecond=0)  # Stripe counts whole seconds
    target, addon_prices = prices if prices is not None else _option_prices(license, option)
    seats = int(option.get("seats") or license.seats)
    if current_addons is None:
        current_addons = license_addon_prices(license.tenant_id, license)
    coupon = Decimal(license.renewal_discount_percent or 0)
    own = option.get("discount") or None
    own_percent = Decimal(str(own["percent"])) if own and Decimal(str(own.get("percent") or 0)) else None
    new_prices = [target, *addon_prices]
    renewal_lines = [total_for_seats(amount=p.amount, seats=seats, per_seat=p.per_seat) for p in new_prices]

    lines: list[dict[str, Any]] = []
    kinds: list[str] = []
    has_subscription = bool(license.stripe_subscription_id)
    downgrade = has_subscription and _is_downgrade(
        license, target=target, seats=seats, addon_prices=addon_prices, current_addons=current_addons
    )
    settings_row = stripe_account_for(license.tenant_id) if downgrade else None
    quote_kind = "upgrade"
    if downgrade and not (settings_row and settings_row.downgrade_prorated_credit):
        # Nothing is charged now; the next renewal bills the new price (billing shows it as one line).
        quote_kind = "at_period_end"
        effective = license.current_period_end
        text = f"From {effective.day} {effective:%b %Y}: {option.get('label') or _name(target)}, {seats} seat(s), " + (
            "annual" if target.interval == "year" else "monthly"
        )
        lines.append(_entry(text, sum(renewal_lines), effective, None, "next_period"))
        next_at: datetime = effective
        due_now_total = 0
    else:
        if not has_subscription:
            quote_kind = "new"
            next_at = add_interval(at, _interval(target))
            for price in new_prices:
                line = _line(price, seats)
                if line.amount:
                    lines.append(_entry(f"{_what(price, line)} from today", line.amount, at, next_at, "charge"))
                    kinds.append("charge")
        else:
            _check_period(license, at)
            if target.interval != license.interval:
                quote_kind = "interval"
            pairs = _pairs(
                license, target=target, addon_prices=addon_prices, current_addons=current_addons, seats=seats
            )
            tagged, next_at = _prorated(license, pairs, at=at)
            lines.extend(entry for entry, _ in tagged)
            kinds.extend(kind for _, kind in tagged)
        lines.extend(_discount_lines(lines, kinds, coupon=coupon, own_percent=own_percent, own=own, at=at, end=next_at))
        due_now_total = sum(line["amount"] for line in lines)

    renewal = _renewal_amount(renewal_lines, coupon=coupon, own_percent=own_percent)
    leftover = min(due_now_total, 0)
    return {
        "lines": lines,
        "amount_due_now": max(due_now_total, 0),
        "next_renewal_amount": max(renewal + leftover, 0),
        "next_renewal_at": _iso(next_at),
        "currency": license.currency,
        "source": "estimate",
        "kind": quote_kind,
        "quoted_at": at.isoformat(),
        "option": option.get("key", ""),
    }


def _discount_lines(
    lines: list[dict[str, Any]],
    kinds: list[str],
    *,
    coupon: Decimal,
    own_percent: Decimal | None,
    own: dict[str, Any] | None,
    at: datetime,
    end: datetime,
) -> list[dict[str, Any]]:
    """The discounts, each its own line: the offer's on the new price's charges and the licence's coupon
    where the offer's does not replace it, both taken off line by line as Stripe does."""
    out = []
    charges = [line["amount"] for line, kind in zip(lines, kinds, strict=True) if kind == "charge"]
    credits = [line["amount"] for line, kind in zip(lines, kinds, strict=True) if kind == "credit"]
    if own_percent is not None and charges:
        amount = discount_on_lines(charges, own_percent)
        if amount:
            explanation = str((own or {}).get("explanation") or "").rstrip(".")
            out.append(
                _entry(
                    f"Discount {own_percent.normalize():f} % on the new plan ({explanation})",
                    -amount,
                    at,
                    end,
                    "discount",
                )
            )
    if coupon:
        on = credits if own_percent is not None else credits + charges
        amount = discount_on_lines(on, coupon)
        if amount:
            what = "the credit" if own_percent is not None else "this change"
            out.append(
                _entry(f"Your current {coupon.normalize():f} % discount on {what}", -amount, at, end, "discount")
            )
    return out


def _renewal_amount(totals: list[int], *, coupon: Decimal, own_percent: Decimal | None) -> int:
    """The next regular invoice: its lines less the discount in force (the offer's replaces the coupon)."""
    percent = own_percent if own_percent is not None else coupon
    return sum(totals) - discount_on_lines(totals, percent) if percent else sum(totals)


# --- Stripe's preview, as billing stored it -----------------------------------------------------


def quote_from_plan_change(plan_change: PlanChange) -> dict[str, Any]:
    """Billing's stored Stripe preview (PlanChange.quote_lines etc.) in the quote shape, source "stripe".

    Each Stripe line keeps its amount; what Stripe's discounts take off the lines is one discount
    line, so the lines add up to the invoice's total. The next renewal is the target prices at the
    target seats, less the licence's coupon, less any credit Stripe keeps as balance.
    """
    lines: list[dict[str, Any]] = []
    discount = 0
    for raw in plan_change.quote_lines or []:
        amount = int(raw.get("amount") or 0)
        discount += int(raw.get("discount") or 0)
        kind = "next_period" if raw.get("period_end") is None else ("credit" if amount < 0 else "charge")
        lines.append(
            {
                "description": str(raw.get("description") or ""),
                "amount": amount,
                "period_start": raw.get("period_start"),
                "period_end": raw.get("period_end"),
                "kind": kind,
            }
        )
    if discount:
        ends = [line["period_end"] for line in lines if line["period_end"]]
        starts = [line["period_start"] for line in lines if line["period_start"]]
        lines.append(
            {
                "description": "Discount",
                "amount": -discount,
                "period_start": min(starts) if starts else None,
                "period_end": max(ends) if ends else None,
                "kind": "discount",
            }
        )
    prices = [plan_change.target_price, *plan_change.target_addon_prices.all()]
    totals = [total_for_seats(amount=p.amount, seats=plan_change.target_seats, per_seat=p.per_seat) for p in prices]
    # The change's own discount replaces the licence's coupon on the subscription (billing, plan_changes/discounts.py).
    own = getattr(plan_change, "discount_percent", None)
    coupon = Decimal(plan_change.license.renewal_discount_percent or 0) if own is None else Decimal(own)
    renewal = _renewal_amount(totals, coupon=coupon, own_percent=None)
    leftover = min(int(plan_change.quote_total or 0), 0)
    if plan_change.effective_at is not None:
        next_at = _iso(plan_change.effective_at)
    else:
        ends = [str(line["period_end"]) for line in lines if line.get("period_end")]
        next_at = max(ends) if ends else _iso(plan_change.license.current_period_end)
    return {
        "lines": lines,
        "amount_due_now": int(plan_change.quote_amount_due),
        "next_renewal_amount": max(renewal + leftover, 0),
        "next_renewal_at": next_at,
        "currency": plan_change.currency,
        "source": "stripe",
        "kind": plan_change.kind,
        "quoted_at": plan_change.quoted_at.isoformat(),
        "expires_at": _iso(plan_change.quote_expires_at),
        "plan_change": plan_change.pk,
        "option": "",
    }


def quote_is_stale(quote: dict[str, Any] | None, *, now: datetime, max_age: timedelta) -> bool:
    """A quote is stale when it has no time, is `max_age` old or older, or has passed its own expiry."""
    if not quote or not quote.get("quoted_at"):
        return True
    try:
        quoted_at = datetime.fromisoformat(str(quote["quoted_at"]))
        expires = quote.get("expires_at")
        expires_at = datetime.fromisoformat(str(expires)) if expires else None
    except ValueError:
        return True
    if quoted_at.tzinfo is None:
        return True
    return now - quoted_at >= max_age or (expires_at is not None and now >= expires_at)
