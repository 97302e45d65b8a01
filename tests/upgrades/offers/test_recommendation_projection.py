"""Projection examples worked by hand (no database): the trend, the peak floor, the run-rate fallback."""

from __future__ import annotations

import datetime

from catalog.models import Aggregation
from upgrades.offers.recommendation.projection import NO_USAGE, RUN_RATE, TREND, least_squares, project_meter

D = datetime.date
DAY = datetime.timedelta(days=1)


def weeks_of(last: D, rates_oldest_first: list[int]) -> dict[D, int]:
    """Each week (ending on `last`, going back) at a flat daily rate."""
    daily = {}
    n = len(rates_oldest_first)
    for w, rate in enumerate(rates_oldest_first):
        week_last = last - DAY * (7 * (n - 1 - w))
        for i in range(7):
            daily[week_last - DAY * i] = rate
    return daily


def test_least_squares_of_a_line_is_the_line():
    from fractions import Fraction as F

    a, b = least_squares([(F(0), F(1)), (F(1), F(3)), (F(2), F(5))])
    assert (a, b) == (1, 2)


def test_growing_usage_is_projected_along_the_weekly_trend():
    # Daily rates 100, 200, 300, 400 over four weeks ending 28 Feb. Week middles t = -24, -17, -10, -3 days:
    # slope 100/7 a day, a = 3100/7. The next 30 days (t = 1..30, middle 15.5): rate 3100/7 + 1550/7 = 4650/7,
    # times 30 = 139,500/7 = 19,928.57 -> 19,929. The recent peak period (the 28 days seen) is 7,000: below it.
    today = D(2026, 3, 1)
    daily = weeks_of(today - DAY, [100, 200, 300, 400])
    p = project_meter(daily=daily, aggregation=Aggregation.COUNT, today=today, period_days=30, window_value=0,
                      window_first=today, window_days=31)  # fmt: skip
    assert p.model == TREND
    assert p.projected == 19_929
    assert p.inputs["weekly"] == [700, 1400, 2100, 2800]
    assert p.inputs["weeks_used"] == 4
    assert p.inputs["peak_period"] == 7_000
    assert p.inputs["floored_at_peak"] is False


def test_falling_usage_is_never_projected_below_the_recent_peak_period():
    # 400, 300, 200, 100 a day: the line reaches zero before the next period; the peak period (7,000) stands.
    today = D(2026, 3, 1)
    daily = weeks_of(today - DAY, [400, 300, 200, 100])
    p = project_meter(daily=daily, aggregation=Aggregation.COUNT, today=today, period_days=30, window_value=0,
                      window_first=today, window_days=31)  # fmt: skip
    assert p.model == TREND
    assert p.inputs["trend_projection"] == 0
    assert p.projected == 7_000
    assert p.inputs["floored_at_peak"] is True


def test_flat_usage_projects_the_same_month_again():
    # 8 weeks at 1,000 a day, a 30-day period: 30,000 (the trend and the peak agree).
    today = D(2026, 3, 1)
    daily = weeks_of(today - DAY, [1000] * 8)
    p = project_meter(daily=daily, aggregation=Aggregation.SUM, today=today, period_days=30, window_value=0,
                      window_first=today, window_days=31)  # fmt: skip
    assert p.projected == 30_000
    assert p.inputs["slope"] == 0


def test_only_the_lookback_weeks_are_fitted():
    # 12 weeks of history, lookback 4: the old weeks (10,000 a day) don't count for the trend, but 4 weeks at 100.
    today = D(2026, 3, 1)
    daily = weeks_of(today - DAY, [10_000] * 8 + [100] * 4)
    p = project_meter(daily=daily, aggregation=Aggregation.COUNT, today=today, period_days=28, window_value=0,
                      window_first=today, window_days=31, lookback_weeks=4)  # fmt: skip
    assert p.inputs["weekly"] == [700] * 4
    assert p.projected == 2_800


def test_max_meters_take_the_line_at_the_far_end_of_the_next_period():
    # Weekly peaks 10, 12, 14, 16 (one day a week): slope 2/7 a day, 16 at t = -3 -> a = 118/7.
    # At t = 30: 118/7 + 60/7 = 178/7 = 25.43 -> 26.
    today = D(2026, 3, 1)
    last = today - DAY
    daily = {last - DAY * (7 * j): peak for j, peak in enumerate([16, 14, 12, 10])}
    daily[last - DAY * 27] = 1  # history reaches back four full weeks
    p = project_meter(daily=daily, aggregation=Aggregation.MAX, today=today, period_days=30, window_value=0,
                      window_first=today, window_days=31)  # fmt: skip
    assert p.model == TREND
    assert p.inputs["weekly"] == [10, 12, 14, 16]
    assert p.projected == 26


def test_too_little_history_falls_back_to_this_periods_run_rate_and_says_so():
    # 50 a day since 1 March, today 10 March: 500 so far over 10 days, a 31-day month -> 1,550.
    today = D(2026, 3, 10)
    daily = {D(2026, 3, d): 50 for d in range(1, 11)}
    p = project_meter(daily=daily, aggregation=Aggregation.COUNT, today=today, period_days=30, window_value=500,
                      window_first=D(2026, 3, 1), window_days=31)  # fmt: skip
    assert p.model == RUN_RATE
    assert p.projected == 1_550
    assert p.inputs["history_days"] == 10
    assert "only 10 days of history" in p.inputs["reason"]


def test_a_new_account_mid_month_runs_at_its_own_pace_not_the_months():
    # Started on the 20th: 100 a day for 5 days -> 500 over 5 days of a 31-day month = 3,100.
    today = D(2026, 3, 24)
    daily = {D(2026, 3, d): 100 for d in range(20, 25)}
    p = project_meter(daily=daily, aggregation=Aggregation.COUNT, today=today, period_days=30, window_value=500,
                      window_first=D(2026, 3, 1), window_days=31)  # fmt: skip
    assert p.model == RUN_RATE
    assert p.projected == 3_100


def test_no_usage_at_all_projects_nothing():
    p = project_meter(daily={}, aggregation=Aggregation.COUNT, today=D(2026, 3, 1), period_days=30, window_value=0,
                      window_first=D(2026, 3, 1), window_days=31)  # fmt: skip
    assert (p.model, p.projected) == (NO_USAGE, 0)
