# ruff: noqa: S608  -- compiled SQL: every value is a bound parameter; only column names are inlined.
"""Billing-period windows: a meter whose usage resets at each licence's own period start.

Usage counts such a meter from the UTC day the licence's current period started while that period
is in force, and by calendar month when no period is (no entitled licence, or a period that ended
without a renewal). A rule also looks at past days ("on K of the last N days", the backtest's
replayed days): a day before the current period began was in the period before it, which started
one interval (month or year) earlier, clamped to the month's last day; earlier periods are not
stored, so a day before that one counts by calendar month. That rule is usage's own
(`usage.selectors.windows.period_first_day_on`, which the staff usage chart uses too); this module
writes the same in SQL.

Each day's window is cut at that day's end (at `now` for today), as usage's own charts cut theirs.
The SQL reads the account's licence row `lic` (joined with the entitled statuses, as usage's plans
take a billing period only from an entitled licence); the Python reads the same licence fields from
`AccountData`, so the two evaluators agree.
"""

from __future__ import annotations

import datetime

from catalog.models import MeterWindow
from upgrades.rules.conditions.base import AccountData, EvalContext, MeterInfo, SqlQuery
from usage.selectors.windows import period_first_day_on

UTC = datetime.UTC
# A period is at most a year long: the earliest rollup day any billing-period window of a day can start on.
REACH = datetime.timedelta(days=366)
DAY = datetime.timedelta(days=1)


def day_end(day: datetime.date, ctx: EvalContext) -> datetime.datetime:
    """The instant a day's window is cut at: `now` for today, else the day's last microsecond (UTC)."""
    if day >= ctx.utc_today:
        return ctx.now
    return datetime.datetime(day.year, day.month, day.day, tzinfo=UTC) + datetime.timedelta(days=1, microseconds=-1)


def period_first_day(data: AccountData, day: datetime.date, ctx: EvalContext) -> datetime.date | None:
    """First day of the billing period in force at the end of `day`, or None (count by calendar month)."""
    if data.period_start is None or data.period_end is None:
        return None
    return period_first_day_on((data.period_start, data.period_end), interval=data.interval, day=day,
                               at=day_end(day, ctx))  # fmt: skip


def sql_period_first_day(q: SqlQuery, day: datetime.date) -> str:
    """`period_first_day` in SQL over the licence row `lic` (NULL where Python says None)."""
    start, end, interval = "lic.current_period_start", "lic.current_period_end", 'lic."interval"'
    if q.vendor == "postgresql":
        utc = f"({start} AT TIME ZONE 'UTC')"
        first = f"{utc}::date"
        # PostgreSQL clamps as add_interval does: 31 March - 1 month = 28/29 February.
        step = f"(CASE WHEN {interval} = 'year' THEN INTERVAL '1 year' ELSE INTERVAL '1 month' END)"
        previous = f"({utc} - {step})::date"
    else:
        # SQLite rolls over instead (31 March - 1 month = 3 March): clamp to the last day of the target month.
        first = f"date({start})"
        previous = (
            f"(CASE WHEN {interval} = 'year' "
            f"THEN MIN(date({start}, '-1 year'), date({start}, 'start of month', '-1 year', '+1 month', '-1 day')) "
            f"ELSE MIN(date({start}, '-1 month'), date({start}, 'start of month', '-1 day')) END)"
        )
    at = day_end(day, q.ctx)
    in_force = f"{start} <= {q.ts(at)} AND {end} > {q.ts(at)}"
    before = f"{start} > {q.ts(at)} AND {previous} <= {q.day(day)}"
    return f"(CASE WHEN {in_force} THEN {first} WHEN {before} THEN {previous} END)"


def window_start(meter: MeterInfo, day: datetime.date) -> datetime.date:
    """First day of the meter's window as it stood at the end of `day` (calendar month or rolling days;
    a billing-period meter without a period in force counts by calendar month, as usage's windows do)."""
    if meter.window == MeterWindow.ROLLING_DAYS:
        return day - DAY * ((meter.window_days or 1) - 1)
    return day.replace(day=1)


def account_window_start(meter: MeterInfo, data: AccountData, day: datetime.date, ctx: EvalContext) -> datetime.date:
    """window_start for one account: a billing-period meter starts at the account's period in force on `day`."""
    if meter.window == MeterWindow.BILLING_PERIOD:
        first = period_first_day(data, day, ctx)
        if first is not None:
            return first
    return window_start(meter, day)


def sql_window_start(q: SqlQuery, meter: MeterInfo, day: datetime.date) -> str:
    """account_window_start in SQL (a billing-period meter reads the licence row `lic`)."""
    if meter.window == MeterWindow.BILLING_PERIOD:
        return f"COALESCE({sql_period_first_day(q, day)}, {q.day(window_start(meter, day))})"
    return q.day(window_start(meter, day))
