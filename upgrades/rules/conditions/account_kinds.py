# ruff: noqa: S608  -- compiled SQL: every value is a bound parameter; only model table names are inlined.
"""Conditions over the account and its licence: attributes, trial end, renewal or commitment end."""

from __future__ import annotations

import datetime
from typing import Any

from accounts.models import LifecycleStage, Segment, SizeBand
from upgrades.rules.conditions.base import (
    AccountData,
    Condition,
    EvalContext,
    Fields,
    Result,
    RuleCatalog,
    SqlQuery,
    register,
)
from upgrades.rules.conditions.tables import tables
from upgrades.rules.conditions.usage_kinds import ENTITLED

ATTRIBUTES = {
    "industry": "industry",
    "size_band": "size band",
    "segment": "segment",
    "territory": "territory",
    "lifecycle_stage": "lifecycle stage",
    "tier": "plan tier",
    "assigned_csm": "assigned CSM",
}
CHOICES: dict[str, tuple[str, ...]] = {
    "size_band": tuple(SizeBand.values),
    "segment": tuple(Segment.values),
    "lifecycle_stage": tuple(LifecycleStage.values),
}


@register
class AccountAttribute(Condition):
    kind = "account_attribute"
    label = "Account attribute (industry, size, segment, tier, CSM...)"
    group = "Account"

    def __init__(self, *, field: str, op: str, values: list[str]) -> None:
        self.field, self.op, self.values = field, op, values

    def to_json(self) -> dict[str, Any]:
        return {"kind": self.kind, "field": self.field, "op": self.op, "values": list(self.values)}

    @classmethod
    def from_json(cls, data: dict[str, Any], catalog: RuleCatalog, path: str) -> Condition:
        f = Fields(data, path, {"field", "op", "values"})
        field = f.choice("field", tuple(ATTRIBUTES))
        op = f.choice("op", ("is", "is_not"), default="is")
        raw = data.get("values")
        if isinstance(raw, str):
            raw = [v for v in raw.split(",")]
        values: list[str] = []
        if not isinstance(raw, list) or not raw or len(raw) > 50:
            f.fail("values", "Give between 1 and 50 values.")
        else:
            for v in raw:
                if not isinstance(v, str) or not v.strip() or len(v) > 200 or "\x00" in v:
                    f.fail("values", "Each value must be non-empty text (at most 200 characters).")
                    break
                values.append(v.strip())
        allowed = CHOICES.get(field)
        if field == "tier":
            allowed = tuple(sorted(catalog.tiers))
        elif field == "assigned_csm":
            allowed = tuple(sorted(catalog.csm_emails))
        if allowed is not None and values:
            bad = [v for v in values if v not in allowed]
            if bad:
                f.fail("values", f"Unknown {ATTRIBUTES[field]} {', '.join(bad)}; choose from {', '.join(allowed)}.")
        f.done()
        return cls(field=field, op=op, values=values)

    def describe(self, catalog: RuleCatalog) -> str:
        verb = "is" if self.op == "is" else "is not"
        return f"{ATTRIBUTES[self.field]} {verb} {' or '.join(self.values)}"

    def evaluate(self, data: AccountData, ctx: EvalContext) -> Result:
        value = data.attributes.get(self.field) or ""
        hit = value in self.values
        return Result(
            hit == (self.op == "is"), {self.field: value}, f"{ATTRIBUTES[self.field]} is {value or 'not set'}"
        )

    def _column(self, q: SqlQuery) -> str:
        t = tables()
        if self.field == "tier":
            return (f"(SELECT tt.key FROM {t.license} lt JOIN {t.tier} tt ON tt.id = lt.tier_id "
                    "WHERE lt.account_id = a.id)")  # fmt: skip
        if self.field == "assigned_csm":
            return f"(SELECT u.email FROM {t.user} u WHERE u.id = a.assigned_csm_id)"
        return f"a.{self.field}"

    def compile(self, q: SqlQuery) -> str:
        column = self._column(q)
        values = ", ".join(q.p(v) for v in self.values)
        return f"{'' if self.op == 'is' else 'NOT '}(COALESCE({column}, '') IN ({values}))"


@register
class TrialEnds(Condition):
    kind = "trial_ends"
    label = "Trial ends within N days"
    group = "Licence"

    def __init__(self, *, days: int) -> None:
        self.days = days

    def to_json(self) -> dict[str, Any]:
        return {"kind": self.kind, "days": self.days}

    @classmethod
    def from_json(cls, data: dict[str, Any], catalog: RuleCatalog, path: str) -> Condition:
        f = Fields(data, path, {"days"})
        days = f.integer("days", lo=0, hi=90, default=3, what="The number of days")
        f.done()
        return cls(days=days)

    def describe(self, catalog: RuleCatalog) -> str:
        return f"a trial ends within {self.days} days"

    def evaluate(self, data: AccountData, ctx: EvalContext) -> Result:
        until = ctx.now + datetime.timedelta(days=self.days)
        ends = sorted(e for e in data.trial_ends if ctx.now < e <= until)
        if not ends:
            return Result(False, {"trial_ends_at": None})
        left = (ends[0] - ctx.now).total_seconds() / 86400
        return Result(True, {"trial_ends_at": ends[0].isoformat(), "days_left": round(left, 1)},
                      f"trial ends in {left:.1f} days")  # fmt: skip

    def compile(self, q: SqlQuery) -> str:
        now, until = q.ctx.now, q.ctx.now + datetime.timedelta(days=self.days)
        return (
            f"a.id IN (SELECT g.account_id FROM {tables().grant} g WHERE {q.rows('g')} "
            f"AND g.kind = 'trial' AND g.starts_at <= {q.ts(now)} AND (g.ended_at IS NULL OR g.ended_at > {q.ts(now)}) "
            f"AND g.ends_at > {q.ts(now)} AND g.ends_at <= {q.ts(until)})"
        )


@register
class RenewalWithin(Condition):
    kind = "renewal_within"
    label = "Renewal or commitment end within N days"
    group = "Licence"

    def __init__(self, *, days: int, date: str = "renewal", interval: str = "any") -> None:
        self.days, self.date, self.interval = days, date, interval

    def to_json(self) -> dict[str, Any]:
        return {"kind": self.kind, "days": self.days, "date": self.date, "interval": self.interval}

    @classmethod
    def from_json(cls, data: dict[str, Any], catalog: RuleCatalog, path: str) -> Condition:
        f = Fields(data, path, {"days", "date", "interval"})
        days = f.integer("days", lo=1, hi=365, default=30, what="The number of days")
        date = f.choice("date", ("renewal", "commitment_end"), default="renewal")
        interval = f.choice("interval", ("any", "year", "month"), default="any")
        f.done()
        return cls(days=days, date=date, interval=interval)

    def describe(self, catalog: RuleCatalog) -> str:
        what = "the licence renews" if self.date == "renewal" else "the commitment ends"
        billed = {"year": "an annual ", "month": "a monthly "}.get(self.interval, "")
        if billed:
            what = what.replace("the licence", billed + "licence")
        return f"{what} within {self.days} days"

    def evaluate(self, data: AccountData, ctx: EvalContext) -> Result:
        at = data.period_end if self.date == "renewal" else data.commitment_end
        if self.interval != "any" and data.interval != self.interval:
            at = None
        until = ctx.now + datetime.timedelta(days=self.days)
        if at is None or not (ctx.now < at <= until):
            return Result(False, {"date": at.isoformat() if at else None})
        left = (at - ctx.now).days
        what = "renews" if self.date == "renewal" else "commitment ends"
        return Result(True, {"date": at.isoformat(), "days_left": left}, f"licence {what} in {left} days")

    def compile(self, q: SqlQuery) -> str:
        column = "current_period_end" if self.date == "renewal" else "commitment_ends_at"
        now, until = q.ctx.now, q.ctx.now + datetime.timedelta(days=self.days)
        # Parameters follow the text: tenant, then statuses, then the dates.
        return (
            f"a.id IN (SELECT lr.account_id FROM {tables().license} lr WHERE {q.rows('lr')} "
            f"AND lr.status IN ({', '.join(q.p(s) for s in ENTITLED)}) "
            f"AND lr.{column} > {q.ts(now)} AND lr.{column} <= {q.ts(until)}"
            + (f" AND lr.interval = {q.p(self.interval)})" if self.interval != "any" else ")")
        )
