"""Projecting an account's need for one meter into the next period, from daily rollups.

Model `least_squares_weekly_trend` (at least MIN_WEEKS full weeks of history):
  1. take the last `lookback_weeks` full weeks (ending yesterday, the last complete UTC day) that
     have history; each week is one point: its daily rate (sum / 7) for count and sum meters, its
     peak day for max and unique-count meters;
  2. fit y = a + b*t by ordinary least squares, t = the week's middle day (days from the last one);
  3. count/sum: projected = P * (a + b*t_mid), the area under the line over the next P days (exact for
     a line); max/unique: projected = the line's higher end over the next period;
  4. never below the recent peak period: the largest P-day block actually used (or this window so far).

Model `current_period_run_rate` (too little history): this window's usage so far, spread over the
days of history in it, times the window's length (max meters: the window's peak so far). The
evidence says so plainly.

Pure functions, no database: `recent_daily` in engine reads the rollups (one query for all meters).
Arithmetic is exact (Fraction) and rounded up once, at the end.
"""

from __future__ import annotations

import datetime
import math
from dataclasses import dataclass, field
from fractions import Fraction
from typing import Any

from catalog.models import Aggregation

DAY = datetime.timedelta(days=1)
MIN_WEEKS = 2
DEFAULT_LOOKBACK_WEEKS = 8
TREND = "least_squares_weekly_trend"
RUN_RATE = "current_period_run_rate"
NO_USAGE = "no_usage"


@dataclass(frozen=True)
class Projection:
    model: str
    projected: int
    inputs: dict[str, Any] = field(default_factory=dict)


def _additive(aggregation: str) -> bool:
    return aggregation in (Aggregation.COUNT, Aggregation.SUM)


def _ceil(value: Fraction) -> int:
    return max(0, math.ceil(value))


def least_squares(points: list[tuple[Fraction, Fraction]]) -> tuple[Fraction, Fraction]:
    """(a, b) of y = a + b*t minimising the squared error; a flat line through the mean for one point."""
    n = len(points)
    mean_t = sum((t for t, _ in points), Fraction(0)) / n
    mean_y = sum((y for _, y in points), Fraction(0)) / n
    sxx = sum(((t - mean_t) ** 2 for t, _ in points), Fraction(0))
    if sxx == 0:
        return mean_y, Fraction(0)
    b = sum(((t - mean_t) * (y - mean_y) for t, y in points), Fraction(0)) / sxx
    return mean_y - b * mean_t, b


def peak_period(
    daily: dict[datetime.date, int], *, aggregation: str, last: datetime.date, first: datetime.date, period_days: int
) -> int:
    """The largest P-day block used, blocks ending at `last` going back to `first` (the oldest may be partial)."""
    best = 0
    end = last
    while end >= first:
        start = max(first, end - DAY * (period_days - 1))
        values = [daily.get(start + DAY * i, 0) for i in range((end - start).days + 1)]
        best = max(best, sum(values) if _additive(aggregation) else max(values, default=0))
        end = start - DAY
    return best


def project_meter(
    *,
    daily: dict[datetime.date, int],
    aggregation: str,
    today: datetime.date,
    period_days: int,
    window_value: int,
    window_first: datetime.date,
    window_days: int,
    lookback_weeks: int = DEFAULT_LOOKBACK_WEEKS,
) -> Projection:
    """The meter's projected value over the next period of `period_days` days (see the module doc)."""
    last = today - DAY  # the last complete UTC day
    lookback_first = last - DAY * (lookback_weeks * 7 - 1)
    seen = sorted(d for d, v in daily.items() if lookback_first <= d <= today and v)
    if not seen and not window_value:
        return Projection(NO_USAGE, 0, {"lookback_weeks": lookback_weeks, "period_days": period_days})
    history_first = seen[0] if seen else today
    weeks = min(lookback_weeks, max(0, ((last - history_first).days + 1) // 7))
    if weeks < MIN_WEEKS:
        return _run_rate(
            daily=daily,
            aggregation=aggregation,
            today=today,
            window_value=window_value,
            window_first=max(window_first, history_first),
            window_days=window_days,
            history_days=(today - history_first).days + 1,
        )
    points: list[tuple[Fraction, Fraction]] = []
    weekly: list[int] = []
    for j in reversed(range(weeks)):  # oldest first
        week_last = last - DAY * (7 * j)
        values = [daily.get(week_last - DAY * i, 0) for i in range(7)]
        value = sum(values) if _additive(aggregation) else max(values)
        weekly.append(value)
        rate = Fraction(value, 7) if _additive(aggregation) else Fraction(value)
        points.append((Fraction(-(7 * j + 3)), rate))  # the week's middle day, relative to `last`
    a, b = least_squares(points)
    if _additive(aggregation):
        middle = Fraction(period_days + 1, 2)  # the next period is days 1..P after `last`
        trend = _ceil(period_days * (a + b * middle))
    else:
        trend = _ceil(max(a + b * 1, a + b * period_days))
    first = last - DAY * (weeks * 7 - 1)
    peak = max(peak_period(daily, aggregation=aggregation, last=last, first=first, period_days=period_days),
               window_value)  # fmt: skip
    return Projection(
        TREND,
        max(trend, peak),
        {
            "lookback_weeks": lookback_weeks,
            "weeks_used": weeks,
            "weekly": weekly,
            "weekly_measure": "sum" if _additive(aggregation) else "peak day",
            "slope": _num(b),
            "intercept": _num(a),
            "period_days": period_days,
            "trend_projection": trend,
            "peak_period": peak,
            "floored_at_peak": peak > trend,
        },
    )


def _run_rate(
    *,
    daily: dict[datetime.date, int],
    aggregation: str,
    today: datetime.date,
    window_value: int,
    window_first: datetime.date,
    window_days: int,
    history_days: int,
) -> Projection:
    elapsed = max(1, (today - window_first).days + 1)
    if _additive(aggregation):
        projected = max(window_value, _ceil(Fraction(window_value * window_days, elapsed)))
    else:
        projected = window_value
    return Projection(
        RUN_RATE,
        projected,
        {
            "reason": f"only {history_days} day{'s' if history_days != 1 else ''} of history "
            f"(a trend needs {MIN_WEEKS} full weeks)",
            "history_days": history_days,
            "window_value": window_value,
            "window_days_elapsed": elapsed,
            "window_days": window_days,
        },
    )


def _num(value: Fraction) -> float:
    return round(float(value), 4)
