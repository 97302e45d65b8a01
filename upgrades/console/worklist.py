"""The worklist: a CSM's accounts sorted by what needs attention, filtered, one page at a time.

One SQL statement for the page (accounts joined to their score, licence and tier, and to the open signals
and open tasks counted per account in derived tables, so PostgreSQL hash-joins instead of running a
subquery per row), then one for the total. No N+1: everything a row shows is in its columns.

Attention (higher first), a plain sum so a CSM can read why an account is on top:
  readiness (0-100) + (100 - health) / 2 + 30 if any churn flag + 20 per open signal (at most 3)
  + 40 per open "talk to a person" request + 10 per other open task (at most 3) + 25 if the licence
  renews within 45 days (10 within 90) + 15 per overdue task (at most 2).
An account in the control group of a running experiment gets no upgrade outreach: its row says so
(`held_out`) and readiness drops out of its attention (health, churn, tasks and renewal still count).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from django.db import connection
from django.utils import timezone
from django.utils.dateparse import parse_datetime

from accounts.models import LifecycleStage, Segment, Tenant
from upgrades.experiments.models import CONTROL, ExperimentState

PAGE_SIZE = 50
FILTER_KEYS = ("csm", "segment", "territory", "tier", "stage", "q")


@dataclass(frozen=True)
class WorklistFilters:
    csm: str = "mine"  # "mine" | "all" | "none" | a user id
    segment: str = ""
    territory: str = ""
    tier: str = ""
    stage: str = ""
    q: str = ""

    @classmethod
    def from_params(cls, params: Any) -> WorklistFilters:
        csm = str(params.get("csm") or "mine")
        if csm not in ("mine", "all", "none") and not csm.isdigit():
            csm = "mine"
        segment = str(params.get("segment") or "")
        stage = str(params.get("stage") or "")
        return cls(
            csm=csm,
            segment=segment if segment in Segment.values else "",
            territory=str(params.get("territory") or "")[:64],
            tier=str(params.get("tier") or "")[:64],
            stage=stage if stage in LifecycleStage.values else "",
            q=str(params.get("q") or "")[:100],
        )

    def as_dict(self) -> dict[str, str]:
        return {k: getattr(self, k) for k in FILTER_KEYS if getattr(self, k)}


@dataclass
class WorklistPage:
    rows: list[dict[str, Any]] = field(default_factory=list)
    total: int = 0
    page: int = 1
    pages: int = 1


# PostgreSQL's names and SQLite's (the embedded default) for the few functions that differ.
DIALECT = {
    True: {"json_len": "jsonb_array_length", "least": "LEAST", "like": "ILIKE"},
    False: {"json_len": "json_array_length", "least": "MIN", "like": "LIKE"},
}

SQL = """
SELECT a.id, a.name, a.external_id, a.segment, a.territory, a.lifecycle_stage, a.assigned_csm_id,
       s.readiness, s.health, COALESCE({json_len}(s.churn_flags), 0) AS churn_count,
       s.previous_readiness, l.current_period_end AS renews_at, l.status AS license_status, t.name AS tier_name,
       t.key AS tier_key, COALESCE(sig.n, 0) AS open_signals, COALESCE(tk.talk, 0) AS talk_requests,
       COALESCE(tk.other, 0) AS open_tasks, COALESCE(tk.overdue, 0) AS overdue_tasks, tk.next_due,
       (ho.account_id IS NOT NULL) AS held_out,
       (CASE WHEN ho.account_id IS NULL THEN COALESCE(s.readiness, 0) ELSE 0 END + (100 - COALESCE(s.health, 100)) / 2
        + CASE WHEN COALESCE({json_len}(s.churn_flags), 0) > 0 THEN 30 ELSE 0 END
        + 20 * {least}(COALESCE(sig.n, 0), 3) + 40 * COALESCE(tk.talk, 0) + 10 * {least}(COALESCE(tk.other, 0), 3)
        + 15 * {least}(COALESCE(tk.overdue, 0), 2)
        + CASE WHEN l.current_period_end < %(soon)s THEN 25 WHEN l.current_period_end < %(later)s THEN 10 ELSE 0 END
       ) AS attention
FROM accounts_customeraccount a
LEFT JOIN upgrades_accountscore s ON s.account_id = a.id AND s.tenant_id = a.tenant_id
LEFT JOIN billing_license l ON l.account_id = a.id AND l.tenant_id = a.tenant_id
LEFT JOIN catalog_tier t ON t.id = l.tier_id
LEFT JOIN (SELECT account_id, count(*) AS n FROM upgrades_signal
           WHERE tenant_id = %(tenant)s AND state = 'open' GROUP BY account_id) sig ON sig.account_id = a.id
LEFT JOIN (SELECT account_id, count(*) FILTER (WHERE kind = 'talk_request') AS talk,
                  count(*) FILTER (WHERE kind <> 'talk_request') AS other,
                  count(*) FILTER (WHERE due_at < %(now)s) AS overdue, min(due_at) AS next_due
           FROM upgrades_consoletask WHERE tenant_id = %(tenant)s AND state = 'open' GROUP BY account_id) tk
       ON tk.account_id = a.id
LEFT JOIN (SELECT DISTINCT ea.account_id FROM upgrades_experimentassignment ea
           JOIN upgrades_experiment e ON e.id = ea.experiment_id AND e.tenant_id = ea.tenant_id
           WHERE ea.tenant_id = %(tenant)s AND ea.arm = %(control)s AND e.state = %(running)s) ho
       ON ho.account_id = a.id
WHERE a.tenant_id = %(tenant)s {where}
"""


COUNT_SQL = """
SELECT count(*) FROM accounts_customeraccount a {joins}
WHERE a.tenant_id = %(tenant)s {where}
"""
TIER_JOINS = """LEFT JOIN billing_license l ON l.account_id = a.id AND l.tenant_id = a.tenant_id
LEFT JOIN catalog_tier t ON t.id = l.tier_id"""


def _where(filters: WorklistFilters, *, user_id: int | None) -> tuple[str, dict[str, Any]]:
    parts: list[str] = []
    params: dict[str, Any] = {}
    if filters.csm == "mine":
        parts.append("a.assigned_csm_id = %(csm)s")
        params["csm"] = user_id or 0
    elif filters.csm == "none":
        parts.append("a.assigned_csm_id IS NULL")
    elif filters.csm.isdigit():
        parts.append("a.assigned_csm_id = %(csm)s")
        params["csm"] = int(filters.csm)
    if filters.segment:
        parts.append("a.segment = %(segment)s")
        params["segment"] = filters.segment
    if filters.territory:
        parts.append("a.territory = %(territory)s")
        params["territory"] = filters.territory
    if filters.stage:
        parts.append("a.lifecycle_stage = %(stage)s")
        params["stage"] = filters.stage
    if filters.tier:
        parts.append("t.key = %(tier)s")
        params["tier"] = filters.tier
    if filters.q:
        like = DIALECT[connection.vendor == "postgresql"]["like"]  # SQLite's LIKE ignores ASCII case already
        parts.append(f"(a.name {like} %(q)s OR a.external_id {like} %(q)s)")
        params["q"] = f"%{filters.q.replace('%', '').replace('_', '')}%"
    return "".join(f" AND {p}" for p in parts), params


def worklist(
    tenant: Tenant, *, filters: WorklistFilters, user_id: int | None, page: int = 1, now: datetime | None = None
) -> WorklistPage:
    now = now or timezone.now()
    where, params = _where(filters, user_id=user_id)
    params.update(control=CONTROL, running=str(ExperimentState.RUNNING))
    at = connection.ops.adapt_datetimefield_value  # as the backend stores them (SQLite: naive UTC text)
    params.update(tenant=tenant.pk, now=at(now), soon=at(now + timedelta(days=45)), later=at(now + timedelta(days=90)))
    page = max(1, page)
    body = SQL.format(where=where, **DIALECT[connection.vendor == "postgresql"])
    with connection.cursor() as cur:
        cur.execute(COUNT_SQL.format(joins=TIER_JOINS if filters.tier else "", where=where), params)
        total = cur.fetchone()[0]
        pages = max(1, -(-total // PAGE_SIZE))
        page = min(page, pages)
        cur.execute(
            body + " ORDER BY attention DESC, a.id LIMIT %(limit)s OFFSET %(offset)s",
            {**params, "limit": PAGE_SIZE, "offset": (page - 1) * PAGE_SIZE},
        )
        cols = [c[0] for c in cur.description]
        rows = [dict(zip(cols, r, strict=True)) for r in cur.fetchall()]
    for row in rows:
        for key in ("renews_at", "next_due"):  # SQLite hands raw timestamps back naive UTC (min(): as text)
            value = parse_datetime(row[key]) if isinstance(row[key], str) else row[key]
            row[key] = timezone.make_aware(value, UTC) if value and timezone.is_naive(value) else value
        row["overdue"] = bool(row["overdue_tasks"])
        row["renews_soon"] = bool(row["renews_at"] and row["renews_at"] < now + timedelta(days=45))
        prev = row["previous_readiness"]
        row["readiness_change"] = (
            (row["readiness"] - prev) if (row["readiness"] is not None and prev is not None) else None
        )
    return WorklistPage(rows=rows, total=total, page=page, pages=pages)
