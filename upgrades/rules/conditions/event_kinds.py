# ruff: noqa: S608  -- compiled SQL: every value is a bound parameter; only model table names are inlined.
"""Conditions over raw events, with the tenant's day edges: gate hits, seen / not seen, tickets, surveys."""

from __future__ import annotations

from typing import Any

from upgrades.rules.conditions.base import (
    AccountData,
    Condition,
    EvalContext,
    Fields,
    Result,
    RuleCatalog,
    SqlQuery,
    days_phrase,
    plural,
    register,
)
from upgrades.rules.conditions.tables import tables
from usage.models import FEATURE_GATE_HIT_EVENT

SUPPORT_TICKET_EVENT = "support.ticket"
SURVEY_EVENT = "survey.answered"


def _number(value: Any) -> float | int | None:
    return value if isinstance(value, int | float) and not isinstance(value, bool) else None


class _EventCount(Condition):
    """At least `min_count` events named `event` (optionally with property == value) in the last `days` days."""

    group = "Events"
    event: str
    days: int
    min_count: int = 1
    prop: str = ""
    prop_value: str = ""

    def event_names(self) -> set[str]:
        return {self.event}

    def event_days(self) -> int:
        return self.days

    def _count(self, data: AccountData, ctx: EvalContext) -> int:
        since = ctx.local_since(self.days)
        n = 0
        for name, at, props in data.events:
            if name != self.event or not (since <= at <= ctx.now):
                continue
            if self.prop and props.get(self.prop) != self.prop_value:
                continue
            n += 1
        return n

    def _subquery(self, q: SqlQuery, having: int) -> str:
        sql = (
            f"SELECT e.account_id FROM {tables().event} e WHERE {q.rows('e')} "
            f"AND e.event = {q.p(self.event)} AND e.occurred_at >= {q.ts(q.ctx.local_since(self.days))} "
            f"AND e.occurred_at <= {q.ts(q.ctx.now)}"
        )
        if self.prop:
            sql += f" AND {q.json_text('e.properties', self.prop)} = {q.p(self.prop_value)}"
        return f"{sql} GROUP BY e.account_id HAVING COUNT(*) >= {q.p(having)}"

    def compile(self, q: SqlQuery) -> str:
        return f"a.id IN ({self._subquery(q, self.min_count)})"

    def evaluate(self, data: AccountData, ctx: EvalContext) -> Result:
        n = self._count(data, ctx)
        return Result(n >= self.min_count, {"event": self.event, "count": n, "days": self.days}, self._sentence(n))

    def _sentence(self, n: int) -> str:
        return f"{plural(n, self.event + ' event')} {days_phrase(self.days)}"


@register
class GateHits(_EventCount):
    kind = "gate_hits"
    label = "Feature-gate hits on a feature"
    group = "Usage"

    def __init__(self, *, feature: str, min_count: int, days: int) -> None:
        self.feature, self.min_count, self.days = feature, min_count, days
        self.event, self.prop, self.prop_value = FEATURE_GATE_HIT_EVENT, "feature", feature
        self._name = feature

    def to_json(self) -> dict[str, Any]:
        return {"kind": self.kind, "feature": self.feature, "min_count": self.min_count, "days": self.days}

    @classmethod
    def from_json(cls, data: dict[str, Any], catalog: RuleCatalog, path: str) -> Condition:
        f = Fields(data, path, {"feature", "min_count", "days"})
        feature = data.get("feature")
        if not isinstance(feature, str) or feature not in catalog.features:
            f.fail("feature", f"Unknown feature {feature!r}.")
        min_count = f.integer("min_count", lo=1, hi=10_000, default=1, what="The number of hits")
        days = f.integer("days", lo=1, hi=365, default=7, what="The number of days")
        f.done()
        return cls(feature=feature, min_count=min_count, days=days)  # type: ignore[arg-type]

    def describe(self, catalog: RuleCatalog) -> str:
        name = catalog.features.get(self.feature, self.feature)
        return f"hit the {name} gate >= {plural(self.min_count, 'time')} {days_phrase(self.days)}"

    def _sentence(self, n: int) -> str:
        return f"hit the {self._name} gate {plural(n, 'time')} {days_phrase(self.days)}"


@register
class EventSeen(_EventCount):
    kind = "event_seen"
    label = "Event seen / not seen"

    def __init__(self, *, event: str, days: int, seen: bool = True, prop: str = "", prop_value: str = "") -> None:
        self.event, self.days, self.seen, self.prop, self.prop_value = event, days, seen, prop, prop_value

    def to_json(self) -> dict[str, Any]:
        data: dict[str, Any] = {"kind": self.kind, "event": self.event, "days": self.days, "seen": self.seen}
        if self.prop:
            data |= {"property": self.prop, "equals": self.prop_value}
        return data

    @classmethod
    def from_json(cls, data: dict[str, Any], catalog: RuleCatalog, path: str) -> Condition:
        f = Fields(data, path, {"event", "days", "seen", "property", "equals"})
        event = f.text("event")
        days = f.integer("days", lo=1, hi=365, default=14, what="The number of days")
        seen = data.get("seen", True)
        if not isinstance(seen, bool):
            f.fail("seen", "Seen must be true or false.")
        prop = f.text("property", required=False) if data.get("property") else ""
        value = f.text("equals", max_length=200) if prop else ""
        f.done()
        return cls(event=event, days=days, seen=seen, prop=prop, prop_value=value)

    def _what(self) -> str:
        return f"{self.event}" + (f" with {self.prop} = {self.prop_value}" if self.prop else "")

    def describe(self, catalog: RuleCatalog) -> str:
        return f"{self._what()} {'seen' if self.seen else 'not seen'} {days_phrase(self.days)}"

    def compile(self, q: SqlQuery) -> str:
        return f"{'' if self.seen else 'NOT '}a.id IN ({self._subquery(q, 1)})"

    def evaluate(self, data: AccountData, ctx: EvalContext) -> Result:
        n = self._count(data, ctx)
        sentence = (f"{self._what()} seen {plural(n, 'time')} {days_phrase(self.days)}" if n
                    else f"no {self._what()} {days_phrase(self.days)}")  # fmt: skip
        return Result((n > 0) == self.seen, {"event": self.event, "count": n, "days": self.days}, sentence)


@register
class SupportTickets(_EventCount):
    kind = "support_tickets"
    label = "Support tickets"
    group = "Health"

    def __init__(self, *, min_count: int, days: int) -> None:
        self.event, self.min_count, self.days = SUPPORT_TICKET_EVENT, min_count, days

    def to_json(self) -> dict[str, Any]:
        return {"kind": self.kind, "min_count": self.min_count, "days": self.days}

    @classmethod
    def from_json(cls, data: dict[str, Any], catalog: RuleCatalog, path: str) -> Condition:
        f = Fields(data, path, {"min_count", "days"})
        min_count = f.integer("min_count", lo=1, hi=10_000, default=3, what="The number of tickets")
        days = f.integer("days", lo=1, hi=365, default=30, what="The number of days")
        f.done()
        return cls(min_count=min_count, days=days)

    def describe(self, catalog: RuleCatalog) -> str:
        return f">= {plural(self.min_count, 'support ticket')} {days_phrase(self.days)}"

    def _sentence(self, n: int) -> str:
        return f"{plural(n, 'support ticket')} {days_phrase(self.days)}"


@register
class SurveyAnswer(_EventCount):
    """Any answer to the survey in the window with a score at most / at least the value (e.g. NPS <= 6)."""

    kind = "survey_answer"
    label = "Survey answer (e.g. NPS)"
    group = "Health"

    def __init__(self, *, survey: str, op: str, score: int, days: int) -> None:
        self.event, self.survey, self.op, self.score, self.days = SURVEY_EVENT, survey, op, score, days
        self.prop, self.prop_value = "survey", survey

    def to_json(self) -> dict[str, Any]:
        return {"kind": self.kind, "survey": self.survey, "op": self.op, "score": self.score, "days": self.days}

    @classmethod
    def from_json(cls, data: dict[str, Any], catalog: RuleCatalog, path: str) -> Condition:
        f = Fields(data, path, {"survey", "op", "score", "days"})
        survey = f.text("survey", max_length=60) if "survey" in data else "nps"
        op = f.choice("op", ("at_most", "at_least"), default="at_most")
        score = f.integer("score", lo=0, hi=100, what="The score")
        days = f.integer("days", lo=1, hi=365, default=90, what="The number of days")
        f.done()
        return cls(survey=survey, op=op, score=score, days=days)

    def describe(self, catalog: RuleCatalog) -> str:
        word = "<=" if self.op == "at_most" else ">="
        return f"answered {self.survey.upper()} {word} {self.score} {days_phrase(self.days)}"

    def _hits(self, data: AccountData, ctx: EvalContext) -> list[float | int]:
        since = ctx.local_since(self.days)
        scores = []
        for name, at, props in data.events:
            if name == SURVEY_EVENT and since <= at <= ctx.now and props.get("survey") == self.survey:
                score = _number(props.get("score"))
                if score is not None and (score <= self.score if self.op == "at_most" else score >= self.score):
                    scores.append(score)
        return scores

    def evaluate(self, data: AccountData, ctx: EvalContext) -> Result:
        hits = self._hits(data, ctx)
        numbers = {"survey": self.survey, "scores": hits, "days": self.days}
        sentence = f"answered {self.survey.upper()} {hits[-1]} {days_phrase(self.days)}" if hits else ""
        return Result(bool(hits), numbers, sentence)

    def compile(self, q: SqlQuery) -> str:
        sql = (
            f"SELECT e.account_id FROM {tables().event} e WHERE {q.rows('e')} "
            f"AND e.event = {q.p(self.event)} AND e.occurred_at >= {q.ts(q.ctx.local_since(self.days))} "
            f"AND e.occurred_at <= {q.ts(q.ctx.now)} AND {q.json_text('e.properties', 'survey')} = {q.p(self.survey)} "
            f"AND {q.json_number('e.properties', 'score')} {'<=' if self.op == 'at_most' else '>='} {q.p(self.score)}"
        )
        return f"a.id IN ({sql})"
