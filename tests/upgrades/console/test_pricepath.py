"""The price path against hand-worked multi-year examples (pure: no database)."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

import pytest

from upgrades.console.pricepath import price_path, term_end


def at(y: int, m: int, d: int) -> datetime:
    return datetime(y, m, d, 9, 30, tzinfo=UTC)


def test_flat_three_year_annual_from_today():
    # Business 790.00/seat/year x 3 seats = 2,370.00 a year; 10 % for the 3-year term = 237.00 off: 2,133.00.
    today = at(2026, 3, 15)
    ends = term_end(first_at=today, renew_from=at(2027, 3, 15), term_years=3, fresh_period=True)
    assert ends == at(2029, 3, 15)
    path = price_path(
        first_at=today,
        first_amount=213_300,
        first_list_amount=237_000,
        renew_from=at(2027, 3, 15),
        interval="year",
        renewal_lines=[237_000],
        year_percents=["10"],
        term_ends_at=ends,
        fresh_period=True,
    )
    assert [(r.date, r.amount, r.discount_amount, r.year) for r in path.rows] == [
        (at(2026, 3, 15), 213_300, 23_700, 1),
        (at(2027, 3, 15), 213_300, 23_700, 2),
        (at(2028, 3, 15), 213_300, 23_700, 3),
    ]
    assert path.total == 639_900
    assert path.list_total == 711_000
    assert path.saving == 71_100
    assert path.flat


def test_mid_period_upgrade_two_year_term_with_stub_and_half_up_rounding():
    # Upgraded on 15 Mar, the annual period renews 1 Sep: today's prorated charge 123.45, then two full years
    # of 333.33 at 5 % (16.6665 -> 16.67 off: 316.66) and 10 % (33.333 -> 33.33 off: 300.00).
    today, renew = at(2026, 3, 15), at(2026, 9, 1)
    ends = term_end(first_at=today, renew_from=renew, term_years=2, fresh_period=False)
    assert ends == at(2028, 9, 1)
    path = price_path(
        first_at=today,
        first_amount=12_345,
        renew_from=renew,
        interval="year",
        renewal_lines=[33_333],
        year_percents=[Decimal("5"), Decimal("10")],
        term_ends_at=ends,
        fresh_period=False,
    )
    assert [(r.date, r.amount, r.year) for r in path.rows] == [
        (at(2026, 3, 15), 12_345, 1),
        (at(2026, 9, 1), 31_666, 1),
        (at(2027, 9, 1), 30_000, 2),
    ]
    assert path.total == 12_345 + 31_666 + 30_000
    assert not path.flat  # a ramp: Stripe needs a subscription schedule


def test_monthly_one_year_term_clamps_month_ends_from_the_anchor():
    # 31 Jan start, monthly 29.00 x 3 seats = 87.00: 12 invoices, Feb 28, Mar 31 (no drift), ... Dec 31.
    today = at(2026, 1, 31)
    ends = term_end(first_at=today, renew_from=at(2026, 2, 28), term_years=1, fresh_period=True)
    path = price_path(
        first_at=today,
        first_amount=8_700,
        renew_from=at(2026, 2, 28),
        interval="month",
        renewal_lines=[8_700],
        year_percents=["0"],
        term_ends_at=ends,
        fresh_period=True,
    )
    assert len(path.rows) == 12
    assert path.rows[1].date == at(2026, 2, 28)
    assert path.rows[2].date == at(2026, 3, 31)  # from the 31 Jan anchor, not Feb 28 + 1 month
    assert path.rows[-1].date == at(2026, 12, 31)
    assert path.rows[-1].date < ends
    assert path.total == 12 * 8_700
    assert {r.year for r in path.rows} == {1}


def test_a_renewals_discount_is_rounded_per_line_as_stripe_discounts_the_invoice():
    # 297.00 + 5.00 a month at 12.5 %: 37.125 -> 37.13 and 0.625 -> 0.63 is 37.76 off (12.5 % of the sum,
    # rounded once, would be 37.75): the path shows what Stripe will charge, 264.24 a month.
    today = at(2026, 1, 1)
    path = price_path(
        first_at=today,
        first_amount=26_424,
        renew_from=at(2026, 2, 1),
        interval="month",
        renewal_lines=[29_700, 500],
        year_percents=["12.5"],
        term_ends_at=at(2026, 4, 1),
        fresh_period=True,
    )
    renewals = [r for r in path.rows if r.kind == "renewal"]
    assert [(r.list_amount, r.discount_amount, r.amount) for r in renewals] == [(30_200, 3_776, 26_424)] * 2


@pytest.mark.parametrize(
    "kwargs",
    [
        {"interval": "week"},
        {"year_percents": []},
        {"year_percents": ["120"]},
        {"renewal_lines": [100, -1]},
    ],
)
def test_invalid_inputs_are_refused(kwargs):
    base = {
        "first_at": at(2026, 1, 1),
        "first_amount": 100,
        "renew_from": at(2027, 1, 1),
        "interval": "year",
        "renewal_lines": [100],
        "year_percents": ["0"],
        "term_ends_at": at(2028, 1, 1),
        "fresh_period": True,
    }
    with pytest.raises(ValueError):
        price_path(**{**base, **kwargs})
