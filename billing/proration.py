"""Stripe's proration, as a pure function: what an upgrade costs today and at the next renewal.

Plain values in, plain values out: no database, no Stripe, no floats. The offer engine
uses it for estimates; billing uses it to cross-check Stripe's own preview.

How Stripe prorates (and so how this does):
- By the second. The share of the period still to run is
  `(period_end - at) / (period_end - period_start)`, with the period's real length
  (a 31-day month is longer than February; a leap year is 366 days).
- Same interval: a credit for the unused time on the current price (negative line) and a
  charge for the remaining time on the new price, both over `[at, period_end)`. Each
  line is `unit_amount * quantity * remaining / period`, rounded once (half away from zero).
  The billing date does not move.
- Interval change (month <-> year, or another interval_count): the cycle resets at `at`.
  The customer is credited the unused time on the current price and charged the new
  price in full for a new period starting at `at`.
- A negative total is not refunded: it becomes credit balance that Stripe applies to the
  next invoice, so `amount_due_now` is never negative and the next renewal is reduced.
"""

from __future__ import annotations

import calendar
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Literal

from catalog.pricing import round_half_up

Interval = Literal["month", "year"]


@dataclass(frozen=True)
class PriceLine:
    unit_amount: int  # minor units per unit per interval
    quantity: int
    interval: Interval
    currency: str
    interval_count: int = 1

    def __post_init__(self) -> None:
        if self.interval not in ("month", "year"):
            raise ValueError(f"interval must be 'month' or 'year', not {self.interval!r}")
        if self.quantity < 0 or self.unit_amount < 0 or self.interval_count < 1:
            raise ValueError("unit_amount and quantity must be >= 0 and interval_count >= 1")

    @property
    def amount(self) -> int:
        """What one full period costs."""
        return self.unit_amount * self.quantity

    @property
    def cycle(self) -> tuple[str, int]:
        return (self.interval, self.interval_count)


@dataclass(frozen=True)
class ProrationLine:
    description: str
    amount: int  # minor units; credits are negative
    period_start: datetime
    period_end: datetime


@dataclass(frozen=True)
class Proration:
    lines: list[ProrationLine]
    amount_due_now: int  # never negative: a credit is kept as balance, not refunded
    next_renewal_at: datetime
    next_renewal_amount: int  # the next regular invoice, less any credit left over now

    @property
    def total(self) -> int:
        """Sum of the lines; negative when the change leaves the customer credit."""
        return sum(line.amount for line in self.lines)


def add_interval(start: datetime, interval: Interval, count: int = 1) -> datetime:
    """`start` plus whole months or years, clamping to the month's last day (Jan 31 + 1 month = Feb 28/29)."""
    months = count * (12 if interval == "year" else 1)
    month_index = start.month - 1 + months
    year = start.year + month_index // 12
    month = month_index % 12 + 1
    day = min(start.day, calendar.monthrange(year, month)[1])
    return start.replace(year=year, month=month, day=day)


def _seconds(delta: timedelta) -> int:
    return delta.days * 86_400 + delta.seconds  # whole seconds, as Stripe counts them


def prorated_amount(amount: int, *, remaining_seconds: int, period_seconds: int) -> int:
    """`amount` scaled to the remaining share of its period, rounded once."""
    if period_seconds <= 0:
        raise ValueError("the period must be longer than zero seconds")
    return round_half_up(amount * remaining_seconds, period_seconds)


def _check_aware(**values: datetime) -> None:
    for name, value in values.items():
        if value.tzinfo is None or value.utcoffset() is None:
            raise ValueError(f"{name} must be timezone-aware")


def _describe(verb: str, line: PriceLine, at: datetime) -> str:
    price = f"{line.unit_amount} {line.currency.upper()}/{line.interval}"
    return f"{verb} time on {line.quantity} × {price} after {at:%d %b %Y}"


def prorate(
    *, current: PriceLine, new: PriceLine, period_start: datetime, period_end: datetime, at: datetime
) -> Proration:
    """What changing from `current` to `new` at `at` costs, as Stripe computes it (see module docstring)."""
    _check_aware(period_start=period_start, period_end=period_end, at=at)
    if current.currency.lower() != new.currency.lower():
        raise ValueError("Stripe cannot change a subscription's currency")
    if not period_start <= at < period_end:
        raise ValueError("`at` must fall inside the current period [period_start, period_end)")
    period = _seconds(period_end - period_start)
    remaining = _seconds(period_end - at)
    credit = -prorated_amount(current.amount, remaining_seconds=remaining, period_seconds=period)
    lines: list[ProrationLine] = []
    if current.amount:
        lines.append(ProrationLine(_describe("Unused", current, at), credit, at, period_end))

    if new.cycle != current.cycle:
        # The billing cycle restarts now: a full new period on the new price.
        new_end = add_interval(at, new.interval, new.interval_count)
        lines.append(
            ProrationLine(
                f"{new.quantity} × {new.unit_amount} {new.currency.upper()}/{new.interval} from {at:%d %b %Y}",
                new.amount,
                at,
                new_end,
            )
        )
        next_renewal_at = new_end
    else:
        charge = prorated_amount(new.amount, remaining_seconds=remaining, period_seconds=period)
        if new.amount:
            lines.append(ProrationLine(_describe("Remaining", new, at), charge, at, period_end))
        next_renewal_at = period_end

    total = sum(line.amount for line in lines)
    amount_due_now = max(total, 0)
    leftover_credit = min(total, 0)  # becomes customer balance, spent on the next invoice
    next_renewal_amount = max(new.amount + leftover_credit, 0)
    return Proration(
        lines=lines,
        amount_due_now=amount_due_now,
        next_renewal_at=next_renewal_at,
        next_renewal_amount=next_renewal_amount,
    )
