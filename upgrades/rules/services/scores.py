"""Upgrade readiness and health (0-100) per account, with factors, churn flags and last week's values.

Each factor is a share (0..1) times its weight (per tenant, defaults in DEFAULT_WEIGHTS), so a
score is the sum of its factors' contributions and each contribution is stored beside it.
Computed set-based: a fixed number of grouped queries per chunk of accounts.
"""

from __future__ import annotations

import datetime
from collections.abc import Sequence
from typing import Any

from django.db.models import Count, Max, Sum

from accounts.models import Tenant
from catalog.models import Aggregation
from upgrades.rules.conditions.usage_kinds import window_start
from upgrades.rules.data import load_rule_catalog
from upgrades.rules.models import (
    DEFAULT_WEIGHTS,
    AccountLimit,
    AccountScore,
    ScoreWeights,
    Signal,
    SignalKind,
    SignalState,
)
from usage.models import FEATURE_GATE_HIT_EVENT, Event, UsageDistinctValue, UsageRollup

CHUNK = 5000
WEEK = datetime.timedelta(days=7)


def tenant_weights(tenant: Tenant) -> dict[str, dict[str, int]]:
    row = ScoreWeights.objects.for_tenant(tenant).first()
    custom = row.weights if row else {}
    return {
        score: {name: int((custom.get(score) or {}).get(name, default)) for name, default in factors.items()}
        for score, factors in DEFAULT_WEIGHTS.items()
    }


def _activity(tenant: Tenant, ids: list[int], first: datetime.date, last: datetime.date) -> dict[int, int]:
    rows = (
        UsageRollup.objects.for_tenant(tenant)
        .filter(account_id__in=ids, day__gte=first, day__lte=last)
        .values("account_id")
        .annotate(n=Sum("event_count"))
    )
    return {r["account_id"]: int(r["n"] or 0) for r in rows}


def _utilisation(tenant: Tenant, ids: list[int], today: datetime.date) -> dict[int, int]:
    """Highest percent of a limit used now, over the meters with an effective limit row."""
    catalog = load_rule_catalog(tenant)
    by_id = {m.id: m for m in catalog.meters.values()}
    limits: dict[int, dict[int, int]] = {}
    for row in AccountLimit.objects.for_tenant(tenant).filter(account_id__in=ids):
        limits.setdefault(row.meter_id, {})[row.account_id] = row.limit_value
    best: dict[int, int] = {}
    for meter_id, per_account in limits.items():
        meter = by_id.get(meter_id)
        if meter is None:
            continue
        first = window_start(meter, today)
        if meter.aggregation == Aggregation.UNIQUE_COUNT:
            qs = (
                UsageDistinctValue.objects.for_tenant(tenant)
                .filter(account_id__in=list(per_account), meter_id=meter_id, day__gte=first, day__lte=today)
                .values("account_id")
                .annotate(v=Count("value", distinct=True))
            )
        else:
            agg = Max("value") if meter.aggregation == Aggregation.MAX else Sum("value")
            qs = (
                UsageRollup.objects.for_tenant(tenant)
                .filter(account_id__in=list(per_account), meter_id=meter_id, day__gte=first, day__lte=today)
                .values("account_id")
                .annotate(v=agg)
            )
        for row in qs:
            pct = int(row["v"] or 0) * 100 // per_account[row["account_id"]]
            best[row["account_id"]] = max(best.get(row["account_id"], 0), pct)
    return best


def _event_counts(tenant: Tenant, ids: list[int], name: str, since: datetime.datetime, now) -> dict[int, int]:
    rows = (
        Event.objects.for_tenant(tenant)
        .filter(account_id__in=ids, event=name, occurred_at__gte=since, occurred_at__lte=now)
        .values("account_id")
        .annotate(n=Count("id"))
    )
    return {r["account_id"]: r["n"] for r in rows}


def _latest_nps(tenant: Tenant, ids: list[int], since, now) -> dict[int, float]:
    out: dict[int, float] = {}
    for account_id, props in (
        Event.objects.for_tenant(tenant)
        .filter(account_id__in=ids, event="survey.answered", occurred_at__gte=since, occurred_at__lte=now)
        .order_by("occurred_at", "id")
        .values_list("account_id", "properties")
    ):
        score = props.get("score") if isinstance(props, dict) else None
        if isinstance(score, int | float) and not isinstance(score, bool):
            out[account_id] = score
    return out


def _factor(name: str, share: float, weight: int, why: str) -> dict[str, Any]:
    share = min(max(share, 0.0), 1.0)
    return {"factor": name, "share": round(share, 3), "weight": weight, "contribution": round(share * weight, 1),
            "why": why}  # fmt: skip


def _total(factors: list[dict[str, Any]]) -> int:
    weight = sum(f["weight"] for f in factors) or 1
    return round(100 * sum(f["share"] * f["weight"] for f in factors) / weight)


def recompute_scores(tenant: Tenant, *, account_ids: Sequence[int], now: datetime.datetime) -> int:
    weights = tenant_weights(tenant)
    today = now.astimezone(datetime.UTC).date()
    day = datetime.timedelta(days=1)
    written = 0
    ids_all = list(account_ids)
    for i in range(0, len(ids_all), CHUNK):
        ids = ids_all[i : i + CHUNK]
        util = _utilisation(tenant, ids, today)
        cur30, prev30 = (
            _activity(tenant, ids, today - 29 * day, today),
            _activity(tenant, ids, today - 59 * day, today - 30 * day),
        )
        cur14, prev14 = (
            _activity(tenant, ids, today - 13 * day, today),
            _activity(tenant, ids, today - 27 * day, today - 14 * day),
        )
        gates = _event_counts(tenant, ids, FEATURE_GATE_HIT_EVENT, now - 30 * day, now)
        tickets = _event_counts(tenant, ids, "support.ticket", now - 30 * day, now)
        nps = _latest_nps(tenant, ids, now - 90 * day, now)
        open_kinds: dict[int, set[str]] = {}
        for account_id, kind in (
            Signal.objects.for_tenant(tenant)
            .filter(account_id__in=ids, state=SignalState.OPEN)
            .values_list("account_id", "kind")
        ):
            open_kinds.setdefault(account_id, set()).add(kind)
        existing = {s.account_id: s for s in AccountScore.objects.for_tenant(tenant).filter(account_id__in=ids)}
        rows = []
        for account_id in ids:
            w_r, w_h = weights["readiness"], weights["health"]
            u = util.get(account_id, 0)
            c30, p30 = cur30.get(account_id, 0), prev30.get(account_id, 0)
            growth = (c30 - p30) / p30 if p30 else (1.0 if c30 else 0.0)
            g = gates.get(account_id, 0)
            kinds = open_kinds.get(account_id, set())
            readiness_f = [
                _factor("utilisation", u / 100, w_r["utilisation"], f"highest limit used: {u}%"),
                _factor("growth", growth, w_r["growth"], f"usage {c30:,} in 30 days vs {p30:,} before"),
                _factor("gate_hits", g / 5, w_r["gate_hits"], f"{g} feature-gate hits in 30 days"),
                _factor("open_upgrade_signals",
                        1.0 if kinds & {SignalKind.UPGRADE_OPPORTUNITY, SignalKind.TRIAL_CANDIDATE} else 0.0,
                        w_r["open_upgrade_signals"], "an open upgrade or trial signal" if kinds else "no open signal"),
            ]  # fmt: skip
            c14, p14 = cur14.get(account_id, 0), prev14.get(account_id, 0)
            activity = min(c14 / p14, 1.0) if p14 else (1.0 if c14 else 0.0)
            t = tickets.get(account_id, 0)
            score = nps.get(account_id)
            churn_open = SignalKind.CHURN_RISK in kinds
            health_f = [
                _factor("activity", activity, w_h["activity"], f"usage {c14:,} in 14 days vs {p14:,} before"),
                _factor("tickets", 1 - t / 5, w_h["tickets"], f"{t} support tickets in 30 days"),
                _factor("nps", 0.5 if score is None else score / 10, w_h["nps"],
                        "no survey answer in 90 days" if score is None else f"latest NPS {score}"),
                _factor("churn_signals", 0.0 if churn_open else 1.0, w_h["churn_signals"],
                        "an open churn-risk signal" if churn_open else "no churn-risk signal"),
            ]  # fmt: skip
            flags = []
            if p14 and activity < 0.5:
                flags.append(f"usage fell {round((1 - activity) * 100)}% vs the previous 14 days")
            if score is not None and score <= 6:
                flags.append(f"NPS {score}")
            if t >= 3:
                flags.append(f"{t} support tickets in 30 days")
            if churn_open:
                flags.append("open churn-risk signal")
            readiness, health = _total(readiness_f), _total(health_f)
            old = existing.get(account_id)
            row = AccountScore(
                tenant=tenant, account_id=account_id, readiness=readiness, health=health, churn_flags=flags,
                factors={"readiness": readiness_f, "health": health_f}, computed_at=now, week_started_at=now,
            )  # fmt: skip
            if old is not None:
                if now - old.week_started_at >= WEEK:  # a new week: today's old values become "last week"
                    row.previous_readiness, row.previous_health, row.previous_at = (
                        old.readiness,
                        old.health,
                        old.computed_at,
                    )
                    row.factors["previous"] = {k: old.factors.get(k) for k in ("readiness", "health")}
                else:
                    row.week_started_at = old.week_started_at
                    row.previous_readiness, row.previous_health, row.previous_at = (
                        old.previous_readiness, old.previous_health, old.previous_at)  # fmt: skip
                    if "previous" in old.factors:
                        row.factors["previous"] = old.factors["previous"]
            rows.append(row)
        AccountScore.objects.bulk_create(
            rows, batch_size=2000, update_conflicts=True, unique_fields=["tenant", "account"],
            update_fields=["readiness", "health", "churn_flags", "factors", "previous_readiness", "previous_health",
                           "previous_at", "week_started_at", "computed_at"],
        )  # fmt: skip
        written += len(rows)
    return written
