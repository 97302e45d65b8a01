"""The price path of a proposal option: every invoice over the whole term, with its date and amount.

Pure: no database, no clock. The first row is what accepting costs today (the quote's `amount_due_now`,
by billing's own proration); then one row per renewal from `renew_from`, every `interval`, until the
term ends. Each renewal is the list amount less the discount for that year of the term (`year_percents`,
one per year; a flat multi-year deal has the same percent every year, which is what one Stripe price with
a coupon invoices). Amounts are integer minor units; a renewal's discount is rounded half up once per
invoice line and added up, as Stripe (and its stand-in) discount an invoice (catalog.pricing.discount_on_lines).

Term: a change that starts a fresh period today (a first purchase or an interval change) commits
`term_years` from today; a mid-period change on the same interval commits the rest of the current period
plus `term_years` full years from the renewal.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from typing import Any, cast

from billing.proration import Interval, add_interval
from catalog.pricing import discount_on_lines


@dataclass(frozen=True)
class PathRow:
    n: int
    date: datetime
    kind: str  # "today" | "renewal"
    list_amount: int
    discount_amount: int
    amount: int
    year: int  # year of the term the invoice falls in (1-based)
    percent: Decimal

    def as_dict(self) -> dict[str, Any]:
        return {
            "n": self.n,
            "date": self.date.isoformat(),
            "kind": self.kind,
            "list_amount": self.list_amount,
            "discount_amount": self.discount_amount,
            "amount": self.amount,
            "year": self.year,
            "percent": f"{self.percent:.2f}",
        }


@dataclass(frozen=True)
class PricePath:
    rows: list[PathRow] = field(default_factory=list)
    term_ends_at: datetime | None = None
    total: int = 0
    list_total: int = 0

    @property
    def saving(self) -> int:
        return self.list_total - self.total

    @property
    def flat(self) -> bool:
        """One renewal amount throughout: billable as one price with a coupon (no subscription schedule)."""
        return len({r.amount for r in self.rows if r.kind == "renewal"}) <= 1

    def as_rows(self) -> list[dict[str, Any]]:
        return [r.as_dict() for r in self.rows]


def term_end(*, first_at: datetime, renew_from: datetime, term_years: int, fresh_period: bool) -> datetime:
    if term_years < 1:
        raise ValueError("term_years must be at least 1")
    start = first_at if fresh_period else renew_from
    return add_interval(start, "year", term_years)


def price_path(
    *,
    first_at: datetime,
    first_amount: int,
    first_list_amount: int | None = None,
    renew_from: datetime,
    interval: str,
    renewal_lines: Sequence[int],
    year_percents: Sequence[Decimal | str | int],
    term_ends_at: datetime,
    fresh_period: bool,
) -> PricePath:
    """Every invoice from today to `term_ends_at` (exclusive). `renewal_lines` are a renewal invoice's line
    amounts before discount (the tier's and each add-on's). `year_percents[k]` is the discount in year
    k+1 of the term; years past the list use its last entry. `fresh_period`: today's charge starts a new
    period (first purchase, interval change), so it is the term's first period; otherwise the renewals are."""
    if interval not in ("month", "year"):
        raise ValueError("interval must be month or year")
    every = cast(Interval, interval)
    renewal_list_amount = sum(renewal_lines)
    if any(line < 0 for line in renewal_lines) or first_amount < 0:
        raise ValueError("amounts must not be negative")
    if not year_percents:
        raise ValueError("year_percents must name at least one year")
    percents = [Decimal(str(p)) for p in year_percents]
    if any(p < 0 or p > 100 for p in percents):
        raise ValueError("a percent must be between 0 and 100")
    if renew_from < first_at or term_ends_at <= first_at:
        raise ValueError("the renewal and the term's end must come after the first invoice")

    first_list = first_amount if first_list_amount is None else first_list_amount
    rows = [
        PathRow(
            n=1,
            date=first_at,
            kind="today",
            list_amount=first_list,
            discount_amount=first_list - first_amount,
            amount=first_amount,
            year=1,
            percent=percents[0],
        )
    ]
    per_year = 12 if interval == "month" else 1
    offset = 1 if fresh_period else 0  # a fresh period's first charge is the term's first period
    k = 0
    while True:
        # From the billing anchor each time, as Stripe's billing_cycle_anchor (no month-end drift): a fresh
        # period is anchored today (31 Jan -> 28 Feb -> 31 Mar), a mid-period change keeps its renewal.
        at = add_interval(first_at, every, k + 1) if fresh_period else add_interval(renew_from, every, k)
        if at >= term_ends_at:
            break
        year = (k + offset) // per_year + 1
        percent = percents[min(year, len(percents)) - 1]
        off = discount_on_lines(renewal_lines, percent)
        rows.append(
            PathRow(
                n=len(rows) + 1,
                date=at,
                kind="renewal",
                list_amount=renewal_list_amount,
                discount_amount=off,
                amount=renewal_list_amount - off,
                year=year,
                percent=percent,
            )
        )
        k += 1
    return PricePath(
        rows=rows,
        term_ends_at=term_ends_at,
        total=sum(r.amount for r in rows),
        list_total=sum(r.list_amount for r in rows),
    )
