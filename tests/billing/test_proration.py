"""Hand-worked proration examples: each number below was worked out on paper first.

Conventions checked: by the second over the period's real length, each line rounded once
(half away from zero), credits negative, a cycle reset on interval change.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta, timezone, tzinfo

import pytest

from billing.proration import PriceLine, Proration, ProrationLine, add_interval, prorate, prorated_amount


def at(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)


def monthly(unit: int, qty: int = 1) -> PriceLine:
    return PriceLine(unit_amount=unit, quantity=qty, interval="month", currency="usd")


def yearly(unit: int, qty: int = 1) -> PriceLine:
    return PriceLine(unit_amount=unit, quantity=qty, interval="year", currency="usd")


def refused(message: str):
    """The refusal word for word: billing shows it, and a fragment match would pass a garbled one."""
    return pytest.raises(ValueError, match=f"^{re.escape(message)}$")


def january(current: PriceLine, new: PriceLine, when: datetime) -> Proration:
    return prorate(current=current, new=new, period_start=at(2025, 1, 1), period_end=at(2025, 2, 1), at=when)


def test_upgrade_in_a_31_day_month_credits_unused_and_charges_remaining_time():
    # January has 31 days; on the 11th, 21 days remain.
    # credit 2,900 x 21/31 = 1,964.52 -> -1,965; charge 9,900 x 21/31 = 6,706.45 -> 6,706.
    result = prorate(
        current=monthly(2900),
        new=monthly(9900),
        period_start=at(2025, 1, 1),
        period_end=at(2025, 2, 1),
        at=at(2025, 1, 11),
    )
    assert [line.amount for line in result.lines] == [-1965, 6706]
    assert all((line.period_start, line.period_end) == (at(2025, 1, 11), at(2025, 2, 1)) for line in result.lines)
    assert result.amount_due_now == 4741
    assert result.next_renewal_at == at(2025, 2, 1)
    assert result.next_renewal_amount == 9900


def test_proration_counts_seconds_not_days():
    # 08:30:15 into the 11th: 1,814,400 - 30,615 = 1,783,785 s of 2,678,400 s remain.
    # charge 9,900 x 1,783,785 / 2,678,400 = 6,593.29 -> 6,593; credit 2,900 x ... = 1,931.37 -> -1,931.
    result = prorate(
        current=monthly(2900),
        new=monthly(9900),
        period_start=at(2025, 1, 1),
        period_end=at(2025, 2, 1),
        at=at(2025, 1, 11, 8, 30, 15),
    )
    assert [line.amount for line in result.lines] == [-1931, 6593]
    assert result.amount_due_now == 4662


def test_seat_increase_in_a_leap_february_is_exactly_half_at_mid_month():
    # 1-29 Feb 2024 is 29 days; noon on the 15th leaves 14.5 days: exactly half.
    result = prorate(
        current=monthly(1000, qty=3),
        new=monthly(1000, qty=5),
        period_start=at(2024, 2, 1),
        period_end=at(2024, 3, 1),
        at=at(2024, 2, 15, 12),
    )
    assert [line.amount for line in result.lines] == [-1500, 2500]
    assert result.amount_due_now == 1000
    assert result.next_renewal_amount == 5000


def test_the_same_change_in_a_common_year_february_uses_28_days():
    # 13.5 of 28 days remain: 3,000 x 27/56 = 1,446.43 -> -1,446; 5,000 x 27/56 = 2,410.71 -> 2,411.
    result = prorate(
        current=monthly(1000, qty=3),
        new=monthly(1000, qty=5),
        period_start=at(2023, 2, 1),
        period_end=at(2023, 3, 1),
        at=at(2023, 2, 15, 12),
    )
    assert [line.amount for line in result.lines] == [-1446, 2411]
    assert result.amount_due_now == 965


def test_annual_upgrade_in_a_leap_year_uses_366_days():
    # 1 Jul 2024 -> 1 Jan 2025 is 184 of 366 days.
    # credit 29,000 x 184/366 = 14,579.23 -> -14,579; charge 99,000 x 184/366 = 49,770.49 -> 49,770.
    result = prorate(
        current=yearly(29000),
        new=yearly(99000),
        period_start=at(2024, 1, 1),
        period_end=at(2025, 1, 1),
        at=at(2024, 7, 1),
    )
    assert [line.amount for line in result.lines] == [-14579, 49770]
    assert result.amount_due_now == 35191
    assert result.next_renewal_at == at(2025, 1, 1)


def test_switching_monthly_to_annual_resets_the_cycle_and_charges_the_new_price_in_full():
    # 11 of 31 days unused on 2 x 2,900: 5,800 x 11/31 = 2,058.06 -> -2,058.
    # The new annual period starts now: 2 x 29,000 = 58,000, renewing a year later.
    result = prorate(
        current=monthly(2900, qty=2),
        new=yearly(29000, qty=2),
        period_start=at(2025, 1, 1),
        period_end=at(2025, 2, 1),
        at=at(2025, 1, 21),
    )
    assert [line.amount for line in result.lines] == [-2058, 58000]
    assert (result.lines[1].period_start, result.lines[1].period_end) == (at(2025, 1, 21), at(2026, 1, 21))
    assert result.amount_due_now == 55942
    assert result.next_renewal_at == at(2026, 1, 21)
    assert result.next_renewal_amount == 58000


def test_downgrade_mid_period_leaves_credit_for_the_next_invoice_not_a_refund():
    # credit -6,706 on 9,900; charge 1,965 on 2,900 (21 of 31 days): total -4,741.
    result = prorate(
        current=monthly(9900),
        new=monthly(2900),
        period_start=at(2025, 1, 1),
        period_end=at(2025, 2, 1),
        at=at(2025, 1, 11),
    )
    assert result.total == -4741
    assert result.amount_due_now == 0
    assert result.next_renewal_amount == 0  # 2,900 - 4,741 leaves no charge at renewal


def test_upgrade_from_a_free_plan_has_no_credit_line():
    result = prorate(
        current=monthly(0),
        new=monthly(3100),
        period_start=at(2025, 1, 1),
        period_end=at(2025, 2, 1),
        at=at(2025, 1, 11),
    )
    assert [line.amount for line in result.lines] == [2100]  # 3,100 x 21/31 = 2,100 exactly


@pytest.mark.parametrize(
    ("start", "interval", "count", "expected"),
    [
        (at(2024, 1, 31), "month", 1, at(2024, 2, 29)),
        (at(2025, 1, 31), "month", 1, at(2025, 2, 28)),
        (at(2024, 2, 29), "year", 1, at(2025, 2, 28)),
        (at(2025, 11, 30), "month", 3, at(2026, 2, 28)),
        (at(2025, 3, 15, 10, 5), "year", 2, at(2027, 3, 15, 10, 5)),
    ],
)
def test_add_interval_clamps_to_the_last_day_of_shorter_months(start, interval, count, expected):
    assert add_interval(start, interval, count) == expected


def test_prorate_refuses_a_moment_outside_the_period_and_naive_times():
    with pytest.raises(ValueError, match="inside the current period"):
        prorate(
            current=monthly(1),
            new=monthly(2),
            period_start=at(2025, 1, 1),
            period_end=at(2025, 2, 1),
            at=at(2025, 2, 1),
        )
    with pytest.raises(ValueError, match="timezone-aware"):
        prorate(
            current=monthly(1),
            new=monthly(2),
            period_start=datetime(2025, 1, 1),
            period_end=at(2025, 2, 1),
            at=at(2025, 1, 5),
        )
    with pytest.raises(ValueError, match="currency"):
        prorate(
            current=monthly(1),
            new=PriceLine(2, 1, "month", "eur"),
            period_start=at(2025, 1, 1),
            period_end=at(2025, 2, 1),
            at=at(2025, 1, 5),
        )


def test_a_change_at_the_first_second_of_a_period_credits_and_charges_the_whole_period():
    result = january(monthly(2900), monthly(9900), at(2025, 1, 1))
    assert result == Proration(
        lines=[
            ProrationLine("Unused time on 1 × 2900 USD/month after 01 Jan 2025", -2900, at(2025, 1, 1), at(2025, 2, 1)),
            ProrationLine(
                "Remaining time on 1 × 9900 USD/month after 01 Jan 2025", 9900, at(2025, 1, 1), at(2025, 2, 1)
            ),
        ],
        amount_due_now=7000,
        next_renewal_at=at(2025, 2, 1),
        next_renewal_amount=9900,
    )


def test_a_change_on_the_last_day_is_prorated_by_the_second_not_by_the_day():
    # 1 a second (2,678,400 for January's 2,678,400 s) -> 100 a second: 86,399 s remain after 00:00:01 on the 31st.
    per_second = monthly(2_678_400)
    hundred_per_second = monthly(267_840_000)
    result = january(per_second, hundred_per_second, at(2025, 1, 31, 0, 0, 1))
    assert [line.amount for line in result.lines] == [-86_399, 8_639_900]
    last_second = january(per_second, hundred_per_second, at(2025, 1, 31, 23, 59, 59))
    assert [line.amount for line in last_second.lines] == [-1, 100]
    assert last_second.amount_due_now == 99


def test_a_downgrade_whose_credit_is_smaller_than_the_new_price_reduces_the_next_renewal():
    # credit 9,900 x 21/31 = 6,706.45 -> -6,706; charge 8,000 x 21/31 = 5,419.35 -> 5,419; total -1,287.
    result = january(monthly(9900), monthly(8000), at(2025, 1, 11))
    assert [line.amount for line in result.lines] == [-6706, 5419]
    assert result.amount_due_now == 0
    assert result.next_renewal_amount == 8000 - 1287


def test_a_downgrade_to_a_free_plan_is_a_credit_line_alone():
    result = january(monthly(3100, qty=2), monthly(0), at(2025, 1, 11))
    assert result.lines == [
        ProrationLine("Unused time on 2 × 3100 USD/month after 11 Jan 2025", -4200, at(2025, 1, 11), at(2025, 2, 1))
    ]
    assert (result.amount_due_now, result.next_renewal_amount, result.total) == (0, 0, -4200)


def test_a_new_interval_count_resets_the_cycle_for_that_many_intervals():
    quarterly = PriceLine(unit_amount=8000, quantity=1, interval="month", currency="usd", interval_count=3)
    result = january(monthly(0), quarterly, at(2025, 1, 21))
    assert result.lines == [
        ProrationLine("1 × 8000 USD/month from 21 Jan 2025", 8000, at(2025, 1, 21), at(2025, 4, 21)),
    ]
    assert (result.amount_due_now, result.next_renewal_at, result.next_renewal_amount) == (8000, at(2025, 4, 21), 8000)


def test_the_credit_line_on_an_interval_change_is_described_for_the_customer():
    result = january(monthly(2900, qty=2), yearly(29000, qty=2), at(2025, 1, 21))
    assert [line.description for line in result.lines] == [
        "Unused time on 2 × 2900 USD/month after 21 Jan 2025",
        "2 × 29000 USD/year from 21 Jan 2025",
    ]


def test_add_interval_adds_one_interval_by_default():
    assert add_interval(at(2025, 1, 31), "month") == at(2025, 2, 28)
    assert add_interval(at(2025, 1, 31), "year") == at(2026, 1, 31)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"interval": "week"}, "interval must be 'month' or 'year', not 'week'"),
        ({"quantity": -1}, "unit_amount and quantity must be >= 0 and interval_count >= 1"),
        ({"unit_amount": -1}, "unit_amount and quantity must be >= 0 and interval_count >= 1"),
        ({"interval_count": 0}, "unit_amount and quantity must be >= 0 and interval_count >= 1"),
    ],
)
def test_a_price_line_refuses_impossible_values_word_for_word(kwargs, message):
    with refused(message):
        PriceLine(**({"unit_amount": 100, "quantity": 1, "interval": "month", "currency": "usd"} | kwargs))


def test_a_price_line_may_be_free_or_have_no_seats():
    assert PriceLine(unit_amount=0, quantity=1, interval="month", currency="usd").amount == 0
    assert PriceLine(unit_amount=100, quantity=0, interval="year", currency="usd").amount == 0
    assert PriceLine(unit_amount=100, quantity=3, interval="year", currency="usd", interval_count=1).amount == 300


def test_prorated_amount_needs_a_period_of_at_least_one_second():
    assert prorated_amount(100, remaining_seconds=1, period_seconds=1) == 100
    assert prorated_amount(101, remaining_seconds=1, period_seconds=2) == 51  # 50.5 -> 51
    for period in (0, -5):
        with refused("the period must be longer than zero seconds"):
            prorated_amount(100, remaining_seconds=0, period_seconds=period)


class NoOffset(tzinfo):
    """A tzinfo that doesn't know its offset: such a datetime is naive, as Python defines it."""

    def utcoffset(self, dt):
        return None

    def dst(self, dt):
        return None


@pytest.mark.parametrize("field", ["period_start", "period_end", "at"])
def test_prorate_names_the_naive_time(field):
    times = {"period_start": at(2025, 1, 1), "period_end": at(2025, 2, 1), "at": at(2025, 1, 5)}
    with refused(f"{field} must be timezone-aware"):
        prorate(current=monthly(1), new=monthly(2), **(times | {field: times[field].replace(tzinfo=None)}))
    with refused(f"{field} must be timezone-aware"):
        prorate(current=monthly(1), new=monthly(2), **(times | {field: times[field].replace(tzinfo=NoOffset())}))


def test_prorate_refusals_word_for_word_and_currency_case_does_not_matter():
    with refused("`at` must fall inside the current period [period_start, period_end)"):
        january(monthly(1), monthly(2), at(2024, 12, 31, 23, 59, 59))
    with refused("`at` must fall inside the current period [period_start, period_end)"):
        january(monthly(1), monthly(2), at(2025, 2, 1))
    with refused("Stripe cannot change a subscription's currency"):
        january(monthly(1), PriceLine(2, 1, "month", "eur"), at(2025, 1, 5))
    shouting = PriceLine(unit_amount=3100, quantity=1, interval="month", currency="USD")
    assert [line.amount for line in january(monthly(0), shouting, at(2025, 1, 11)).lines] == [2100]


def test_a_moment_given_with_a_utc_offset_is_prorated_as_the_same_instant():
    plus_two = timezone(timedelta(hours=2))
    moment = datetime(2025, 1, 11, 2, tzinfo=plus_two)  # 00:00 UTC on the 11th
    assert [line.amount for line in january(monthly(2900), monthly(9900), moment).lines] == [-1965, 6706]
