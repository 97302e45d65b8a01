"""Money of a licence: interval totals and monthly recurring revenue (integer minor units)."""

from __future__ import annotations

from decimal import Decimal

from catalog.models import Price
from catalog.pricing import apply_percent, round_half_up

# --- Money -----------------------------------------------------------------------------------------


def interval_total(price: Price, seats: int) -> int:
    return price.amount * seats if price.per_seat else price.amount


def monthly_amount(price: Price, seats: int) -> int:
    """A price for `seats` seats as monthly recurring revenue (annual / 12, rounded once)."""
    total = interval_total(price, seats)
    return total if price.interval == "month" else round_half_up(total, 12)


def compute_mrr(
    *,
    price: Price | None,
    seats: int,
    addon_prices: list[Price] = (),  # type: ignore[assignment]
    discount_percent: Decimal = Decimal(0),
) -> int:
    gross = (monthly_amount(price, seats) if price is not None else 0) + sum(
        monthly_amount(p, seats) for p in addon_prices
    )
    return gross - apply_percent(gross, discount_percent) if discount_percent else gross
