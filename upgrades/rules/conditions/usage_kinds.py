# ruff: noqa: S608  -- compiled SQL: every value is a bound parameter; only model table names are inlined.
"""Conditions over metered usage: utilisation vs the effective limit, seats, value, growth, fall.

Utilisation counts a meter over its window as usage does: calendar month, rolling N days, or the
billing period of the account's licence (`periods.window_start` and `account_window_start`: from the
period start in force on each day).
"""

from __future__ import annotations

import datetime
from typing import Any

from catalog.models import Aggregation, MeterWindow
from upgrades.rules.conditions.base import (
    AccountData,
    Condition,
    EvalContext,
    Fields,
    MeterInfo,
    Result,
    RuleCatalog,
    SqlQuery,
    register,
)
from upgrades.rules.conditions.periods import REACH, account_window_start, sql_window_start, window_start
from upgrades.rules.conditions.tables import tables

DAY = datetime.timedelta(days=1)
ENTITLED = ("active", "trialing", "past_due")  # usage.selectors.ENTITLED_STATUSES, as SQL literals


def py_aggregate(meter: MeterInfo, data: AccountData, first: datetime.date, last: datetime.date) -> int:
    """The meter's number over [first, last] from one account's rollups (as usage's windows compute it)."""
    if meter.aggregation == Aggregation.UNIQUE_COUNT:
        seen: set[str] = set()
        for day, values in data.distinct.get(meter.id, {}).items():
            if first <= day <= last:
                seen |= values
        return len(seen)
    numbers = [v for day, v in data.rollups.get(meter.id, {}).items() if first <= day <= last]
    if not numbers:
        return 0
    return max(numbers) if meter.aggregation == Aggregation.MAX else sum(numbers)


def sql_aggregate(q: SqlQuery, meter: MeterInfo, first: datetime.date | str, last: datetime.date) -> str:
    """The same number in SQL, over the rows `r` of the meter's rollup (or distinct-value) table.
    `first` is a day, or SQL for one (`sql_window_start`, rendered just before this call)."""
    inside = f"r.day >= {first if isinstance(first, str) else q.day(first)} AND r.day <= {q.day(last)}"
    if q.vendor == "postgresql":  # FILTER skips the rows outside the window without evaluating a CASE per aggregate
        if meter.aggregation == Aggregation.UNIQUE_COUNT:
            return f"COUNT(DISTINCT r.value) FILTER (WHERE {inside})"
        fn = "MAX" if meter.aggregation == Aggregation.MAX else "SUM"
        return f"COALESCE({fn}(r.value) FILTER (WHERE {inside}), 0)"
    if meter.aggregation == Aggregation.UNIQUE_COUNT:
        return f"COUNT(DISTINCT CASE WHEN {inside} THEN r.value END)"
    fn = "MAX" if meter.aggregation == Aggregation.MAX else "SUM"
    return f"COALESCE({fn}(CASE WHEN {inside} THEN r.value END), 0)"


def rollup_table(meter: MeterInfo) -> str:
    t = tables()
    return t.distinct if meter.aggregation == Aggregation.UNIQUE_COUNT else t.rollup


def _licence_join(q: SqlQuery, *, outer: bool) -> str:
    """The account's entitled licence as `lic` (usage's plans read seats and the billing period only from one)."""
    statuses = ", ".join(q.p(s) for s in ENTITLED)
    sql = (f"{'LEFT ' if outer else ''}JOIN {tables().license} lic ON lic.tenant_id = r.tenant_id "
           f"AND lic.account_id = r.account_id AND lic.status IN ({statuses})")  # fmt: skip
    return sql if q.account_ids is None else f"{sql} AND {q.among('lic.account_id')}"


def used_now_sql(q: SqlQuery, meter: MeterInfo) -> str:
    """`SELECT account_id, used`: each account's number of the meter in its window as it stands now (a
    billing-period meter from the licence's period start, as the rules and usage count it)."""
    today = q.ctx.utc_today
    used = sql_aggregate(q, meter, sql_window_start(q, meter, today), today)  # first: its parameters come first
    per_period = meter.window == MeterWindow.BILLING_PERIOD
    lic = _licence_join(q, outer=True) if per_period else ""
    lowest = today - REACH if per_period else window_start(meter, today)
    return (f"SELECT r.account_id, {used} FROM {rollup_table(meter)} r {lic} WHERE {q.rows('r')} "
            f"AND r.meter_id = {q.p(meter.id)} AND r.day >= {q.day(lowest)} AND r.day <= {q.day(today)} "
            "GROUP BY r.account_id")  # fmt: skip


class _MeterCondition(Condition):
    meter: str

    def info(self, catalog: RuleCatalog) -> MeterInfo:
        return catalog.meters[self.meter]

    def meter_ids(self, catalog: RuleCatalog) -> set[int]:
        return {catalog.meters[self.meter].id}


@register
class MeterUtilisation(_MeterCondition):
    """>= percent of the effective limit on at least `min_days` of the last `days` days (1 of 1 = now)."""

    kind = "meter_utilisation"
    label = "Meter at a share of its limit"

    def __init__(self, *, meter: str, percent: int, days: int = 1, min_days: int = 1) -> None:
        self.meter, self.percent, self.days, self.min_days = meter, percent, days, min_days

    def to_json(self) -> dict[str, Any]:
        return {"kind": self.kind, "meter": self.meter, "percent": self.percent, "days": self.days,
                "min_days": self.min_days}  # fmt: skip

    @classmethod
    def from_json(cls, data: dict[str, Any], catalog: RuleCatalog, path: str) -> Condition:
        f = Fields(data, path, {"meter", "percent", "days", "min_days"})
        f.meter("meter", catalog)
        percent = f.integer("percent", lo=1, hi=1000, what="The threshold (percent of the limit)")
        days = f.integer("days", lo=1, hi=31, default=1, what="The number of days")
        min_days = f.integer("min_days", lo=1, hi=31, default=1, what="The number of days over the threshold")
        if not f.errors and min_days > days:
            f.fail("min_days", f"Over the threshold on {min_days} days cannot happen in {days} days.")
        f.done()
        return cls(meter=data["meter"], percent=percent, days=days, min_days=min_days)

    def describe(self, catalog: RuleCatalog) -> str:
        meter = self.info(catalog)
        per_period = meter.window == MeterWindow.BILLING_PERIOD
        if self.days == 1:
            return f"{meter.name} at >= {self.percent}% of the limit {'this billing period' if per_period else 'now'}"
        text = f"{meter.name} at >= {self.percent}% of the limit on {self.min_days} of the last {self.days} days"
        return f"{text} (each day counted from its billing period's start)" if per_period else text

    def _days(self, ctx: EvalContext) -> list[datetime.date]:
        return [ctx.utc_today - DAY * i for i in range(self.days)]

    def rollup_first_day(self, ctx: EvalContext) -> datetime.date:
        meter, first = self.info(ctx.catalog), ctx.utc_today - DAY * (self.days - 1)
        # A billing period may have started up to a year before the first day (both evaluators stop there).
        return first - REACH if meter.window == MeterWindow.BILLING_PERIOD else window_start(meter, first)

    def denominator(self, data: AccountData, meter: MeterInfo) -> int | None:
        return data.limits.get(meter.id)

    def evaluate(self, data: AccountData, ctx: EvalContext) -> Result:
        meter = self.info(ctx.catalog)
        limit = self.denominator(data, meter)
        if not limit:
            return Result(False, {"limit": None})
        reach = self.rollup_first_day(ctx)
        starts = [account_window_start(meter, data, d, ctx) for d in self._days(ctx)]
        used = [py_aggregate(meter, data, max(s, reach), d) for s, d in zip(starts, self._days(ctx), strict=True)]
        over = sum(1 for u in used if u * 100 >= self.percent * limit)
        latest = used[0] * 100 // limit
        numbers = {"meter": meter.key, "limit": limit, "used": used[0], "percent": latest,
                   "threshold": self.percent, "days_over": over, "days": self.days}  # fmt: skip
        per_period = meter.window == MeterWindow.BILLING_PERIOD
        if per_period:
            numbers["since"] = starts[0].isoformat()
        if self.days == 1:
            sentence = f"{meter.name} at {latest}% of the limit ({used[0]:,} of {limit:,})"
            if per_period:
                sentence += f" since {starts[0].day} {starts[0]:%b %Y}"
        else:
            sentence = f"{meter.name} at {latest}% of the limit on {over} of the last {self.days} days"
        return Result(over >= self.min_days, numbers, sentence)

    def _rows_join(self, q: SqlQuery) -> str:
        """What each rollup row needs: a billing-period meter's licence row `lic` (its period)."""
        if self.info(q.ctx.catalog).window == MeterWindow.BILLING_PERIOD:
            return _licence_join(q, outer=True)  # the period: no entitled licence counts by calendar month
        return ""

    _inner_columns = ""  # more per-account columns of the grouped rows (x)

    def _denominator_join(self, q: SqlQuery) -> str:
        """The limit, joined to the grouped rows `x` (one per account), not to every rollup row."""
        sql = (f"JOIN {tables().limit} l ON l.tenant_id = {q.tenant()} AND l.account_id = x.account_id "
               f"AND l.meter_id = {q.p(self.info(q.ctx.catalog).id)}")  # fmt: skip
        # Scoped: narrow the limits too, or the planner may walk every limit row of the tenant.
        return sql if q.account_ids is None else f"{sql} AND {q.among('l.account_id')}"

    _denominator_column = "l.limit_value"

    def compile(self, q: SqlQuery) -> str:
        # Parameters are collected in the order the text is written: build it front to back.
        # Each day's number is summed per account in one pass over the rollups, and the limit is joined to
        # the grouped rows after: joining it to every rollup row first cost a third of a tenant-wide match.
        meter = self.info(q.ctx.catalog)
        days = self._days(q.ctx)
        used = ", ".join(
            f"{sql_aggregate(q, meter, sql_window_start(q, meter, d), d)} AS u{i}" for i, d in enumerate(days)
        )
        inner = f"SELECT r.account_id, {used}{self._inner_columns} FROM {rollup_table(meter)} r {self._rows_join(q)} "
        inner += (
            f"WHERE {q.rows('r')} AND r.meter_id = {q.p(meter.id)} "
            f"AND r.day >= {q.day(self.rollup_first_day(q.ctx))} AND r.day <= {q.day(q.ctx.utc_today)} "
        )
        if meter.window == MeterWindow.BILLING_PERIOD:
            # Per account, no earlier than its first window needs (windows only move forward, except to a
            # calendar month after a period lapsed: hence no later than the first day's month either).
            first = days[-1]
            least = "LEAST" if q.vendor == "postgresql" else "MIN"
            inner += f"AND r.day >= {least}({sql_window_start(q, meter, first)}, {q.day(window_start(meter, first))}) "
        inner += "GROUP BY r.account_id"
        head = f"a.id IN (SELECT x.account_id FROM ({inner}) x {self._denominator_join(q)} WHERE "
        cases = [
            f"(CASE WHEN x.u{i} * 100 >= {q.p(self.percent)} * {self._denominator_column} THEN 1 ELSE 0 END)"
            for i in range(len(days))
        ]
        return f"{head}{' + '.join(cases)} >= {q.p(self.min_days)})"


@register
class SeatsUsed(MeterUtilisation):
    """Seats in use (a meter's current value) at >= percent of the seats bought on the licence."""

    kind = "seats_used"
    label = "Seats used vs seats bought"
    group = "Licence"

    def __init__(self, *, meter: str, percent: int, days: int = 1, min_days: int = 1) -> None:
        super().__init__(meter=meter, percent=percent, days=1, min_days=1)

    def to_json(self) -> dict[str, Any]:
        return {"kind": self.kind, "meter": self.meter, "percent": self.percent}

    def describe(self, catalog: RuleCatalog) -> str:
        return f"{self.info(catalog).name} (seats in use) at >= {self.percent}% of the seats bought"

    def denominator(self, data: AccountData, meter: MeterInfo) -> int | None:
        return data.seats

    def evaluate(self, data: AccountData, ctx: EvalContext) -> Result:
        result = super().evaluate(data, ctx)
        if result.numbers.get("limit"):
            n = result.numbers
            result.numbers = {"meter": n["meter"], "seats_used": n["used"], "seats_bought": n["limit"],
                              "percent": n["percent"], "threshold": self.percent}  # fmt: skip
            result.sentence = f"{n['used']:,} seats in use of {n['limit']:,} bought ({n['percent']}%)"
        return result

    def _rows_join(self, q: SqlQuery) -> str:
        return _licence_join(q, outer=False)  # the seats bought (and a billing-period meter's period)

    _inner_columns = ", MAX(lic.seats) AS seats"  # one licence per account: its seats

    def _denominator_join(self, q: SqlQuery) -> str:
        return ""

    _denominator_column = "x.seats"


@register
class MeterValue(_MeterCondition):
    kind = "meter_value"
    label = "Meter total over a window"

    def __init__(self, *, meter: str, op: str, value: int, days: int) -> None:
        self.meter, self.op, self.value, self.days = meter, op, value, days

    def to_json(self) -> dict[str, Any]:
        return {"kind": self.kind, "meter": self.meter, "op": self.op, "value": self.value, "days": self.days}

    @classmethod
    def from_json(cls, data: dict[str, Any], catalog: RuleCatalog, path: str) -> Condition:
        f = Fields(data, path, {"meter", "op", "value", "days"})
        f.meter("meter", catalog)
        op = f.choice("op", ("at_least", "at_most"), default="at_least")
        value = f.integer("value", lo=0, hi=10**12, what="The value")
        days = f.integer("days", lo=1, hi=90, default=7, what="The number of days")
        f.done()
        return cls(meter=data["meter"], op=op, value=value, days=days)

    def describe(self, catalog: RuleCatalog) -> str:
        word = ">=" if self.op == "at_least" else "<="
        return f"{self.info(catalog).name} {word} {self.value:,} over the last {self.days} days"

    def rollup_first_day(self, ctx: EvalContext) -> datetime.date:
        return ctx.utc_today - DAY * (self.days - 1)

    def evaluate(self, data: AccountData, ctx: EvalContext) -> Result:
        meter = self.info(ctx.catalog)
        total = py_aggregate(meter, data, self.rollup_first_day(ctx), ctx.utc_today)
        matched = total >= self.value if self.op == "at_least" else total <= self.value
        return Result(matched, {"meter": meter.key, "value": total, "days": self.days},
                      f"{meter.name}: {total:,} over the last {self.days} days")  # fmt: skip

    def compile(self, q: SqlQuery) -> str:
        meter = self.info(q.ctx.catalog)
        first = self.rollup_first_day(q.ctx)
        if self.op == "at_least" and self.value <= 0:
            return "1 = 1"  # every account has at least 0, with or without rows
        # "at most V" also holds for accounts without any rows: compile it as "not above V".
        negate, cmp = ("", ">=") if self.op == "at_least" else ("NOT ", ">")
        return (
            f"{negate}a.id IN (SELECT r.account_id FROM {rollup_table(meter)} r WHERE {q.rows('r')} "
            f"AND r.meter_id = {q.p(meter.id)} AND r.day >= {q.day(first)} AND r.day <= {q.day(q.ctx.utc_today)} "
            f"GROUP BY r.account_id HAVING {sql_aggregate(q, meter, first, q.ctx.utc_today)} {cmp} {q.p(self.value)})"
        )


class _WindowCompare(_MeterCondition):
    """The last `days` days against the `days` before them."""

    def __init__(self, *, meter: str, percent: int, days: int) -> None:
        self.meter, self.percent, self.days = meter, percent, days

    def to_json(self) -> dict[str, Any]:
        return {"kind": self.kind, "meter": self.meter, "percent": self.percent, "days": self.days}

    def rollup_first_day(self, ctx: EvalContext) -> datetime.date:
        return ctx.utc_today - DAY * (2 * self.days - 1)

    def _windows(self, ctx: EvalContext) -> tuple[tuple[datetime.date, datetime.date], tuple[datetime.date, ...]]:
        today = ctx.utc_today
        cur = (today - DAY * (self.days - 1), today)
        prev = (today - DAY * (2 * self.days - 1), today - DAY * self.days)
        return cur, prev

    def _holds(self, cur: int, prev: int) -> bool:
        raise NotImplementedError

    def _sql_holds(self, q: SqlQuery, cur: str, prev: str) -> str:
        raise NotImplementedError

    def evaluate(self, data: AccountData, ctx: EvalContext) -> Result:
        meter = self.info(ctx.catalog)
        (c0, c1), (p0, p1) = self._windows(ctx)
        cur, prev = py_aggregate(meter, data, c0, c1), py_aggregate(meter, data, p0, p1)
        change = (cur - prev) * 100 // prev if prev else None
        numbers = {"meter": meter.key, "current": cur, "previous": prev, "change_percent": change, "days": self.days}
        sentence = f"{meter.name}: {cur:,} in the last {self.days} days vs {prev:,} in the {self.days} before"
        if change is not None:
            sentence += f" ({change:+d}%)"
        return Result(prev > 0 and self._holds(cur, prev), numbers, sentence)

    def compile(self, q: SqlQuery) -> str:
        meter = self.info(q.ctx.catalog)
        (c0, c1), (p0, p1) = self._windows(q.ctx)
        first = self.rollup_first_day(q.ctx)
        head = (
            f"a.id IN (SELECT r.account_id FROM {rollup_table(meter)} r WHERE {q.rows('r')} "
            f"AND r.meter_id = {q.p(meter.id)} AND r.day >= {q.day(first)} AND r.day <= {q.day(q.ctx.utc_today)} "
            "GROUP BY r.account_id HAVING "
        )
        prev = sql_aggregate(q, meter, p0, p1)
        cur = sql_aggregate(q, meter, c0, c1)
        prev2 = sql_aggregate(q, meter, p0, p1)
        return f"{head}{prev} > 0 AND {self._sql_holds(q, cur, prev2)})"


@register
class MeterGrowth(_WindowCompare):
    kind = "meter_growth"
    label = "Meter growth (week or month over the one before)"

    @classmethod
    def from_json(cls, data: dict[str, Any], catalog: RuleCatalog, path: str) -> Condition:
        f = Fields(data, path, {"meter", "percent", "days"})
        f.meter("meter", catalog)
        percent = f.integer("percent", lo=1, hi=1000, what="The growth (percent)")
        days = f.integer("days", lo=1, hi=45, default=7, what="The window (days)")
        f.done()
        return cls(meter=data["meter"], percent=percent, days=days)

    def describe(self, catalog: RuleCatalog) -> str:
        span = {7: "week over week", 30: "month over month"}.get(self.days, f"over the last {self.days} days vs the "
                                                                            f"{self.days} before")  # fmt: skip
        return f"{self.info(catalog).name} grew >= {self.percent}% {span}"

    def _holds(self, cur: int, prev: int) -> bool:
        return cur * 100 >= prev * (100 + self.percent)

    def _sql_holds(self, q: SqlQuery, cur: str, prev: str) -> str:
        return f"{cur} * 100 >= {prev} * {q.p(100 + self.percent)}"


@register
class UsageFall(_WindowCompare):
    kind = "usage_fall"
    label = "Usage fell (churn risk)"
    group = "Health"

    @classmethod
    def from_json(cls, data: dict[str, Any], catalog: RuleCatalog, path: str) -> Condition:
        f = Fields(data, path, {"meter", "percent", "days"})
        f.meter("meter", catalog)
        percent = f.integer("percent", lo=1, hi=100, what="The fall (percent)")
        days = f.integer("days", lo=1, hi=45, default=14, what="The window (days)")
        f.done()
        return cls(meter=data["meter"], percent=percent, days=days)

    def describe(self, catalog: RuleCatalog) -> str:
        return (f"{self.info(catalog).name} fell >= {self.percent}% in the last {self.days} days vs the "
                f"{self.days} before")  # fmt: skip

    def _holds(self, cur: int, prev: int) -> bool:
        return cur * 100 <= prev * (100 - self.percent)

    def _sql_holds(self, q: SqlQuery, cur: str, prev: str) -> str:
        return f"{cur} * 100 <= {prev} * {q.p(100 - self.percent)}"
