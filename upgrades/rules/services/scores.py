"""Upgrade readiness and health (0-100) per account, with factors, churn flags and last week's values.

Each factor is a share (0..1) times its weight (per tenant, defaults in DEFAULT_WEIGHTS), so a
score is the sum of its factors' contributions and each contribution is stored beside it.
Computed set-based: a fixed number of grouped queries for the whole tenant (a sweep) or per chunk of
accounts (dirty accounts), and one upsert per batch of rows (upgrades.rules.bulk).
"""

from __future__ import annotations

import datetime
from collections.abc import Sequence
from typing import Any

from django.db import connection
from django.db.models import Count, Q, QuerySet, Sum
from django.db.models.fields.json import KeyTransform

from accounts.models import CustomerAccount, Tenant
from upgrades.rules.bulk import write_rows
from upgrades.rules.conditions import SqlQuery
from upgrades.rules.conditions.usage_kinds import used_now_sql
from upgrades.rules.models import (
    DEFAULT_WEIGHTS,
    AccountLimit,
    AccountScore,
    ScoreWeights,
    Signal,
    SignalKind,
    SignalState,
)
from upgrades.rules.services.evaluation import eval_context
from usage.models import FEATURE_GATE_HIT_EVENT, Event, UsageRollup

TICKET_EVENT = "support.ticket"

CHUNK = 5000
WEEK = datetime.timedelta(days=7)
DAY = datetime.timedelta(days=1)
SCORE_FIELDS = ("readiness", "health", "churn_flags", "factors", "previous_readiness", "previous_health",
                "previous_at", "week_started_at", "computed_at")  # fmt: skip


def tenant_weights(tenant: Tenant) -> dict[str, dict[str, int]]:
    row = ScoreWeights.objects.for_tenant(tenant).first()
    custom = row.weights if row else {}
    return {
        score: {name: int((custom.get(score) or {}).get(name, default)) for name, default in factors.items()}
        for score, factors in DEFAULT_WEIGHTS.items()
    }


def _scoped(qs: QuerySet, ids: list[int] | None) -> QuerySet:
    """Every account of the tenant (ids None: one tenant-wide, set-based query) or just these."""
    return qs if ids is None else qs.filter(account_id__in=ids)


def _activity(tenant: Tenant, ids: list[int] | None, today: datetime.date) -> dict[int, tuple[int, int, int, int]]:
    """(last 30 days, the 30 before, last 14 days, the 14 before) of usage, in one pass over the rollups."""
    rows = (
        _scoped(UsageRollup.objects.for_tenant(tenant), ids)
        .filter(day__gte=today - 59 * DAY, day__lte=today)
        .values("account_id")
        .annotate(
            cur30=Sum("event_count", filter=Q(day__gte=today - 29 * DAY)),
            prev30=Sum("event_count", filter=Q(day__lte=today - 30 * DAY)),
            cur14=Sum("event_count", filter=Q(day__gte=today - 13 * DAY)),
            prev14=Sum("event_count", filter=Q(day__gte=today - 27 * DAY, day__lte=today - 14 * DAY)),
        )
    )
    return {
        r["account_id"]: (int(r["cur30"] or 0), int(r["prev30"] or 0), int(r["cur14"] or 0), int(r["prev14"] or 0))
        for r in rows
    }


def _utilisation(tenant: Tenant, ids: list[int] | None, now: datetime.datetime) -> dict[int, int]:
    """Highest percent of a limit used now, over the meters with an effective limit row: each meter counted
    over its window as the rules count it (a billing-period meter from the licence's period start)."""
    ctx = eval_context(tenant, now)
    by_id = {m.id: m for m in ctx.catalog.meters.values()}
    limits: dict[int, dict[int, int]] = {}
    for account_id, meter_id, value in _scoped(AccountLimit.objects.for_tenant(tenant), ids).values_list(
        "account_id", "meter_id", "limit_value"
    ):
        limits.setdefault(meter_id, {})[account_id] = value
    best: dict[int, int] = {}
    with connection.cursor() as cursor:
        for meter_id, per_account in limits.items():
            meter = by_id.get(meter_id)
            if meter is None:
                continue
            # Tenant-wide when scoring every account: accounts without a limit row are skipped below.
            q = SqlQuery(ctx, vendor=connection.vendor, ops=connection.ops,
                         account_ids=None if ids is None else list(per_account))  # fmt: skip
            cursor.execute(used_now_sql(q, meter), q.params)
            for account_id, v in cursor.fetchall():
                limit = per_account.get(account_id)
                if limit:
                    best[account_id] = max(best.get(account_id, 0), int(v or 0) * 100 // limit)
    return best


def _event_counts(tenant: Tenant, ids: list[int] | None, since: datetime.datetime, now) -> dict[int, tuple[int, int]]:
    """(feature-gate hits, support tickets) since `since`, in one pass over the events."""
    rows = (
        _scoped(Event.objects.for_tenant(tenant), ids)
        .filter(event__in=[FEATURE_GATE_HIT_EVENT, TICKET_EVENT], occurred_at__gte=since, occurred_at__lte=now)
        .values("account_id")
        .annotate(
            gates=Count("id", filter=Q(event=FEATURE_GATE_HIT_EVENT)), tickets=Count("id", filter=Q(event=TICKET_EVENT))
        )
    )
    return {r["account_id"]: (r["gates"], r["tickets"]) for r in rows}


def _latest_nps(tenant: Tenant, ids: list[int] | None, since, now) -> dict[int, float]:
    out: dict[int, float] = {}
    for account_id, props in (
        _scoped(Event.objects.for_tenant(tenant), ids)
        .filter(event="survey.answered", occurred_at__gte=since, occurred_at__lte=now)
        .order_by("occurred_at", "id")
        .values_list("account_id", "properties")
    ):
        score = props.get("score") if isinstance(props, dict) else None
        if isinstance(score, int | float) and not isinstance(score, bool):
            out[account_id] = score
    return out


def _open_kinds(tenant: Tenant, ids: list[int] | None) -> dict[int, set[str]]:
    out: dict[int, set[str]] = {}
    for account_id, kind in (
        _scoped(Signal.objects.for_tenant(tenant), ids)
        .filter(state=SignalState.OPEN)
        .values_list("account_id", "kind")
        .distinct()
    ):
        out.setdefault(account_id, set()).add(kind)
    return out


def _existing(tenant: Tenant, ids: list[int] | None, now: datetime.datetime) -> dict[int, dict[str, Any]]:
    """Each account's stored score without its (large) factors: only last week's part of them, and
    today's factors only where a new week starts (they become "last week")."""
    qs = _scoped(AccountScore.objects.for_tenant(tenant), ids)
    out = {
        row["account_id"]: row
        for row in qs.annotate(last_week=KeyTransform("previous", "factors")).values(
            "account_id", "readiness", "health", "previous_readiness", "previous_health", "previous_at",
            "week_started_at", "computed_at", "last_week",
        )
    }  # fmt: skip
    rolled = qs.filter(week_started_at__lte=now - WEEK).annotate(
        r=KeyTransform("readiness", "factors"), h=KeyTransform("health", "factors")
    )
    for account_id, r, h in rolled.values_list("account_id", "r", "h"):
        if account_id in out:
            out[account_id]["rolled"] = {"readiness": r, "health": h}
    return out


def _factor(name: str, share: float, weight: int, why: str) -> dict[str, Any]:
    share = min(max(share, 0.0), 1.0)
    return {"factor": name, "share": round(share, 3), "weight": weight, "contribution": round(share * weight, 1),
            "why": why}  # fmt: skip


def _total(factors: list[dict[str, Any]]) -> int:
    weight = sum(f["weight"] for f in factors) or 1
    return round(100 * sum(f["share"] * f["weight"] for f in factors) / weight)


def recompute_scores(tenant: Tenant, *, account_ids: Sequence[int] | None = None, now: datetime.datetime) -> int:
    """Readiness and health of `account_ids` (None: every account of the tenant, read tenant-wide in a
    fixed number of grouped queries; otherwise chunks of CHUNK ids). Written with one upsert per batch."""
    if account_ids is None:
        chunks: list[list[int] | None] = [None]
        scope = list(CustomerAccount.objects.for_tenant(tenant).values_list("pk", flat=True))
    else:
        scope = list(account_ids)
        chunks = [scope[i : i + CHUNK] for i in range(0, len(scope), CHUNK)]
    weights = tenant_weights(tenant)
    today = now.astimezone(datetime.UTC).date()
    written = 0
    for ids in chunks:
        rows = _score_rows(tenant, ids if ids is not None else scope, ids, weights=weights, today=today, now=now)
        write_rows(AccountScore, rows, conflict=("tenant_id", "account_id"), update=SCORE_FIELDS)
        written += len(rows)
    return written


def _score_rows(
    tenant: Tenant, accounts: list[int], ids: list[int] | None, *, weights: dict, today: datetime.date, now
) -> list[dict[str, Any]]:
    util = _utilisation(tenant, ids, now)
    activity = _activity(tenant, ids, today)
    events = _event_counts(tenant, ids, now - 30 * DAY, now)
    nps = _latest_nps(tenant, ids, now - 90 * DAY, now)
    open_kinds = _open_kinds(tenant, ids)
    existing = _existing(tenant, ids, now)
    w_r, w_h = weights["readiness"], weights["health"]
    rows = []
    for account_id in accounts:
        u = util.get(account_id, 0)
        c30, p30, c14, p14 = activity.get(account_id, (0, 0, 0, 0))
        growth = (c30 - p30) / p30 if p30 else (1.0 if c30 else 0.0)
        g, t = events.get(account_id, (0, 0))
        kinds = open_kinds.get(account_id, set())
        readiness_f = [
            _factor("utilisation", u / 100, w_r["utilisation"], f"highest limit used: {u}%"),
            _factor("growth", growth, w_r["growth"], f"usage {c30:,} in 30 days vs {p30:,} before"),
            _factor("gate_hits", g / 5, w_r["gate_hits"], f"{g} feature-gate hits in 30 days"),
            _factor("open_upgrade_signals",
                    1.0 if kinds & {SignalKind.UPGRADE_OPPORTUNITY, SignalKind.TRIAL_CANDIDATE} else 0.0,
                    w_r["open_upgrade_signals"], "an open upgrade or trial signal" if kinds else "no open signal"),
        ]  # fmt: skip
        activity_share = min(c14 / p14, 1.0) if p14 else (1.0 if c14 else 0.0)
        score = nps.get(account_id)
        churn_open = SignalKind.CHURN_RISK in kinds
        health_f = [
            _factor("activity", activity_share, w_h["activity"], f"usage {c14:,} in 14 days vs {p14:,} before"),
            _factor("tickets", 1 - t / 5, w_h["tickets"], f"{t} support tickets in 30 days"),
            _factor("nps", 0.5 if score is None else score / 10, w_h["nps"],
                    "no survey answer in 90 days" if score is None else f"latest NPS {score}"),
            _factor("churn_signals", 0.0 if churn_open else 1.0, w_h["churn_signals"],
                    "an open churn-risk signal" if churn_open else "no churn-risk signal"),
        ]  # fmt: skip
        flags = []
        if p14 and activity_share < 0.5:
            flags.append(f"usage fell {round((1 - activity_share) * 100)}% vs the previous 14 days")
        if score is not None and score <= 6:
            flags.append(f"NPS {score}")
        if t >= 3:
            flags.append(f"{t} support tickets in 30 days")
        if churn_open:
            flags.append("open churn-risk signal")
        factors: dict[str, Any] = {"readiness": readiness_f, "health": health_f}
        row = {"tenant_id": tenant.pk, "account_id": account_id, "readiness": _total(readiness_f),
               "health": _total(health_f), "churn_flags": flags, "factors": factors, "previous_readiness": None,
               "previous_health": None, "previous_at": None, "week_started_at": now, "computed_at": now}  # fmt: skip
        old = existing.get(account_id)
        if old is not None:
            if now - old["week_started_at"] >= WEEK:  # a new week: today's old values become "last week"
                row["previous_readiness"], row["previous_health"] = old["readiness"], old["health"]
                row["previous_at"] = old["computed_at"]
                factors["previous"] = old.get("rolled") or {"readiness": None, "health": None}
            else:
                row["week_started_at"] = old["week_started_at"]
                row["previous_readiness"], row["previous_health"] = old["previous_readiness"], old["previous_health"]
                row["previous_at"] = old["previous_at"]
                if old["last_week"] is not None:
                    factors["previous"] = old["last_week"]
        rows.append(row)
    return rows
