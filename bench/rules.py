"""Trigger-rule figures (issue 13): 100,000 accounts, 10 live rules, 90 days of rollups.

Run by bench/run.py after its own figures (same bench database, app role under row-level security;
bulk data written as the owner with plain SQL), or alone:
`DATABASE_URL=postgres://postgres@127.0.0.1:5432/tw_bench .venv/bin/python bench/run.py --only-rules`.

Figures (one JSON line each):
- rules_full_sweep: `evaluate_rules` over every account (limits refreshed from the effective plans,
  10 compiled queries, evidence for new matches, signals, scores), with its parts;
- rules_vs_handwritten: the compiled queries of three representative rules vs hand-written SQL
  computing the same matches (window functions), and that both found the same accounts;
- rules_incremental: 1,000 dirty accounts evaluated;
- rules_preview: one preview at 100,000 accounts (limits already fresh from the sweep), median of three;
- rules_mark_dirty_share: what the `events_ingested` receiver (dirty marks) costs in-process ingest:
  batches of 1,000 events through `usage.services.ingest_events`, alternately with the receiver
  connected and disconnected.
"""

from __future__ import annotations

import datetime
import time

ACCOUNTS = 100_000
DAYS = 90
TARGET_SWEEP_S = 60.0
TARGET_PREVIEW_S = 2.0


def _emit(figure: str, **values) -> None:
    from bench.run import emit

    emit(figure, **values)


def seed(owner_url: str, accounts: int, days: int) -> dict:
    """Tenant, catalog and rules through the ORM; accounts, rollups and events in bulk SQL as the owner."""
    import psycopg2
    from django.utils import timezone

    from accounts.models import Tenant
    from accounts.tenancy import tenant_context
    from catalog.models import Aggregation, Entitlement, Feature, FeatureKind, GovernanceState, Meter, Product, Tier

    tenant = Tenant.objects.create(pk=(int(time.time()) % 10**9) + 7, slug="bench-rules", name="Bench rules")
    with tenant_context(tenant):
        product = Product.objects.create(tenant=tenant, key="app", name="App")
        free = Tier.objects.create(tenant=tenant, product=product, key="free", name="Free", rank=0, is_free=True,
                                   state=GovernanceState.PUBLISHED, published_at=timezone.now())  # fmt: skip
        meters = {}
        for key, aggregation, prop, limit in (("api_calls", Aggregation.COUNT, "", 10_000),
                                              ("storage", Aggregation.MAX, "gb", 100)):  # fmt: skip
            feature = Feature.objects.create(
                tenant=tenant, product=product, key=key, name=key, kind=FeatureKind.METERED
            )
            Entitlement.objects.create(tenant=tenant, tier=free, feature=feature, limit=limit)
            meters[key] = Meter.objects.create(tenant=tenant, feature=feature, key=key, name=key.replace("_", " "),
                                               event_name=key, aggregation=aggregation, property=prop)  # fmt: skip
        sso = Feature.objects.create(tenant=tenant, product=product, key="sso", name="SSO", kind=FeatureKind.BOOLEAN)
        Entitlement.objects.create(tenant=tenant, tier=free, feature=sso, enabled=False)
    today = datetime.datetime.now(datetime.UTC).date()
    first = today - datetime.timedelta(days=days - 1)
    t0 = time.perf_counter()
    conn = psycopg2.connect(owner_url)
    conn.autocommit = True
    with conn.cursor() as cur:
        tid = tenant.pk
        cur.execute(
            "INSERT INTO accounts_customeraccount (tenant_id, external_id, name, industry, size_band, segment,"
            " territory, lifecycle_stage, attributes, created_at, updated_at)"
            " SELECT %s, 'b' || lpad(g::text, 6, '0'), 'Account ' || g,"
            " (ARRAY['software','health','retail'])[1 + g %% 3],"
            " '', (ARRAY['smb','mid_market','enterprise'])[1 + g %% 3], '', 'active', '{}', now(), now()"
            " FROM generate_series(1, %s) g",
            (tid, accounts),
        )
        cur.execute("SELECT min(id), max(id) FROM accounts_customeraccount WHERE tenant_id = %s", (tid,))
        lo, hi = cur.fetchone()
        # API calls every day for every account: mostly steady, 10% growing toward the 10,000 limit.
        cur.execute(
            "INSERT INTO usage_usagerollup (tenant_id, account_id, meter_id, day, value, event_count, updated_at)"
            " SELECT %s, a, %s, d::date,"
            " CASE WHEN a %% 10 = 0 THEN 150 + (d::date - %s::date) * 4 ELSE 60 + (a %% 50) END, 1, now()"
            " FROM generate_series(%s::bigint, %s::bigint) a, generate_series(%s::date, %s::date, '1 day') d",
            (tid, meters["api_calls"].pk, first, lo, hi, first, today),
        )
        # Storage for a fifth of the accounts.
        cur.execute(
            "INSERT INTO usage_usagerollup (tenant_id, account_id, meter_id, day, value, event_count, updated_at)"
            " SELECT %s, a, %s, d::date, 20 + (a %% 90), 1, now()"
            " FROM generate_series(%s::bigint, %s::bigint) a, generate_series(%s::date, %s::date, '1 day') d"
            " WHERE a %% 5 = 0",
            (tid, meters["storage"].pk, lo, hi, first, today),
        )
        events_ok = True
        try:
            # Gate hits and tickets over the last 10 days (inside the months the event partitions cover).
            cur.execute(
                "INSERT INTO usage_event (tenant_id, account_id, event, occurred_at, received_at, idempotency_key,"
                " properties) SELECT %s, a, e, now() - make_interval(hours => (a %% 240)::int), now(),"
                " 'b:' || a || ':' || e, CASE WHEN e = 'feature_gate_hit' THEN '{\"feature\": \"sso\"}'::jsonb"
                " ELSE '{}'::jsonb END FROM generate_series(%s::bigint, %s::bigint) a,"
                " unnest(ARRAY['feature_gate_hit', 'support.ticket']) e WHERE a %% 7 = 0",
                (tid, lo, hi),
            )
        except psycopg2.Error as exc:
            events_ok = False
            _emit("rules_seed_events_skipped", reason=str(exc).splitlines()[0])
        cur.execute("ANALYZE usage_usagerollup")
        cur.execute("ANALYZE accounts_customeraccount")
        cur.execute("SELECT count(*) FROM usage_usagerollup WHERE tenant_id = %s", (tid,))
        rows = cur.fetchone()[0]
    conn.close()
    _emit("rules_seed", accounts=accounts, days=days, rollup_rows=rows, seconds=round(time.perf_counter() - t0, 1),
          events=events_ok)  # fmt: skip
    return {"tenant": tenant, "meters": meters, "events": events_ok}


RULES = [
    ("util-now", "upgrade_opportunity", {"kind": "meter_utilisation", "meter": "api_calls", "percent": 90}),
    ("util-5of7", "upgrade_opportunity",
     {"kind": "meter_utilisation", "meter": "api_calls", "percent": 80, "days": 7, "min_days": 5}),
    ("storage-high", "upgrade_opportunity", {"kind": "meter_utilisation", "meter": "storage", "percent": 95}),
    ("growth-wow", "upgrade_opportunity", {"kind": "meter_growth", "meter": "api_calls", "percent": 10, "days": 7}),
    ("growth-mom", "upgrade_opportunity", {"kind": "meter_growth", "meter": "api_calls", "percent": 20, "days": 30}),
    ("fall", "churn_risk", {"kind": "usage_fall", "meter": "api_calls", "percent": 30, "days": 14}),
    ("quiet", "churn_risk", {"kind": "meter_value", "meter": "api_calls", "op": "at_most", "value": 100, "days": 7}),
    ("sso-gate", "trial_candidate", {"kind": "gate_hits", "feature": "sso", "min_count": 1, "days": 14}),
    ("tickets", "churn_risk", {"all": [{"kind": "support_tickets", "min_count": 1, "days": 14},
                                       {"kind": "account_attribute", "field": "segment", "op": "is",
                                        "values": ["enterprise"]}]}),
    ("health-growing", "upgrade_opportunity", {"all": [
        {"kind": "account_attribute", "field": "industry", "op": "is", "values": ["health"]},
        {"kind": "meter_utilisation", "meter": "api_calls", "percent": 50, "days": 7, "min_days": 3}]}),
]  # fmt: skip

HANDWRITTEN = {
    # utilisation now: this month's calls >= 90% of the limit
    "util-now": """
        SELECT r.account_id FROM usage_usagerollup r JOIN upgrades_accountlimit l
          ON l.tenant_id = r.tenant_id AND l.account_id = r.account_id AND l.meter_id = r.meter_id
        WHERE r.tenant_id = %(t)s AND r.meter_id = %(m)s AND r.day >= %(month)s AND r.day <= %(today)s
        GROUP BY r.account_id, l.limit_value HAVING SUM(r.value) * 100 >= 90 * l.limit_value""",
    # 5 of the last 7 days at >= 80%: running month-to-date sums with a window function
    "util-5of7": """
        WITH daily AS (
          SELECT r.account_id, r.day, SUM(r.value) OVER (PARTITION BY r.account_id, date_trunc('month', r.day)
                 ORDER BY r.day) AS mtd, l.limit_value
          FROM usage_usagerollup r JOIN upgrades_accountlimit l
            ON l.tenant_id = r.tenant_id AND l.account_id = r.account_id AND l.meter_id = r.meter_id
          WHERE r.tenant_id = %(t)s AND r.meter_id = %(m)s AND r.day >= %(from7)s AND r.day <= %(today)s)
        SELECT account_id FROM daily WHERE day >= %(week)s
        GROUP BY account_id HAVING COUNT(*) FILTER (WHERE mtd * 100 >= 80 * limit_value) >= 5""",
    # week over week growth >= 10%
    "growth-wow": """
        SELECT account_id FROM usage_usagerollup
        WHERE tenant_id = %(t)s AND meter_id = %(m)s AND day > %(today)s::date - 14 AND day <= %(today)s
        GROUP BY account_id
        HAVING SUM(value) FILTER (WHERE day <= %(today)s::date - 7) > 0
           AND SUM(value) FILTER (WHERE day > %(today)s::date - 7) * 100
               >= SUM(value) FILTER (WHERE day <= %(today)s::date - 7) * 110""",
}


def run(owner_url: str, accounts: int = ACCOUNTS, days: int = DAYS) -> None:
    from django.db import connection
    from django.utils import timezone

    from accounts.tenancy import tenant_context
    from upgrades.rules import insights, services
    from upgrades.rules.data import load_rule_catalog, refresh_limits
    from upgrades.rules.engine import matching_account_ids
    from upgrades.rules.models import RuleState, TriggerRule
    from upgrades.rules.services.evaluation import eval_context, parsed_rules

    world = seed(owner_url, accounts, days)
    tenant = world["tenant"]
    with tenant_context(tenant):
        for key, kind, condition in RULES:
            if not world["events"] and ("gate" in key or key == "tickets"):
                continue
            services.validate_condition(tenant, condition)
            TriggerRule.objects.create(tenant=tenant, key=key, name=key, condition=condition, signal_kind=kind,
                                       state=RuleState.LIVE, live_at=timezone.now())  # fmt: skip
        now = timezone.now()
        ctx = eval_context(tenant, now)
        rules = list(TriggerRule.objects.for_tenant(tenant))
        ids = list(tenant_accounts(tenant))
        t0 = time.perf_counter()
        refresh_limits(tenant, account_ids=ids, meter_ids={m.id for m in load_rule_catalog(tenant).meters.values()},
                       now=now)  # fmt: skip
        t_limits = time.perf_counter() - t0
        t0 = time.perf_counter()
        report = services.evaluate_rules(tenant, now=now)
        t_sweep = time.perf_counter() - t0
        _emit("rules_full_sweep", accounts=len(ids), rules=len(rules), seconds=round(t_sweep, 2),
              limits_refresh_seconds=round(t_limits, 2), signals=len(report.fired),
              matched=report.matched, target_s=TARGET_SWEEP_S, met=t_sweep < TARGET_SWEEP_S)  # fmt: skip
        # The sweep wrote 100,000 limit rows: autovacuum's analyze would see them within a minute in production.
        # Without fresh statistics the planner takes the table for empty and the preview's grouping spills to disk.
        from bench.run import analyze

        analyze(owner_url, "upgrades_accountlimit")

        # Compiled vs hand-written SQL for three representative rules.
        pairs = {r.key: t for r, t in parsed_rules(rules, ctx)}
        today = now.date()
        params = {"t": tenant.pk, "m": world["meters"]["api_calls"].pk, "today": today, "month": today.replace(day=1),
                  "week": today - datetime.timedelta(days=6),
                  "from7": (today - datetime.timedelta(days=6)).replace(day=1)}  # fmt: skip
        compiled_s = hand_s = 0.0
        same = True
        for key, sql in HANDWRITTEN.items():
            t0 = time.perf_counter()
            got = set(matching_account_ids(pairs[key], ctx))
            compiled_s += time.perf_counter() - t0
            t0 = time.perf_counter()
            with connection.cursor() as cursor:
                cursor.execute(sql, params)
                want = {row[0] for row in cursor.fetchall()}
            hand_s += time.perf_counter() - t0
            same = same and got == want
            _emit("rules_vs_handwritten_rule", rule=key, matches=len(got), same_matches=got == want)
        _emit("rules_vs_handwritten", compiled_s=round(compiled_s, 3), handwritten_s=round(hand_s, 3),
              ratio=round(compiled_s / hand_s, 2) if hand_s else None, target_ratio=2.0, same_matches=same)  # fmt: skip

        dirty = ids[:1000]
        services.mark_accounts_dirty(tenant.pk, dirty)
        t0 = time.perf_counter()
        inc = services.evaluate_dirty_accounts(tenant, now=timezone.now())
        _emit("rules_incremental", accounts=inc.evaluated_accounts, seconds=round(time.perf_counter() - t0, 2))

        runs = []
        for _ in range(3):  # the median of three: one run is at the mercy of the other core's load
            t0 = time.perf_counter()
            preview = insights.preview_rule(tenant, condition=RULES[1][2])
            runs.append(time.perf_counter() - t0)
        t_preview = sorted(runs)[1]
        _emit("rules_preview", accounts=preview.total_accounts, matches=preview.count, seconds=round(t_preview, 2),
              runs_s=[round(r, 2) for r in runs], target_s=TARGET_PREVIEW_S,
              met=t_preview < TARGET_PREVIEW_S)  # fmt: skip
        t0 = time.perf_counter()
        backtest = insights.backtest_rule(tenant, condition=RULES[1][2], days=7)
        _emit("rules_backtest", accounts=backtest.total_accounts, days=7, fired=len(backtest.fired),
              seconds=round(time.perf_counter() - t0, 2))  # fmt: skip
        mark_dirty_share(tenant)


def mark_dirty_share(tenant, *, batches: int = 10, per_batch: int = 1000, accounts: int = 200) -> None:
    """In-process ingest with and without the dirty-mark receiver, interleaved so load hits both alike."""
    from upgrades.rules.receivers import on_events_ingested
    from usage.services.ingest import ingest_events
    from usage.signals import events_ingested

    externals = list(tenant_accounts(tenant).values_list("external_id", flat=True)[:accounts])
    now = datetime.datetime.now(datetime.UTC)
    seconds = {"with": 0.0, "without": 0.0}
    marks = 0.0
    n = 0
    for i in range(batches * 2):
        mode = "with" if i % 2 == 0 else "without"
        if mode == "without":
            events_ingested.disconnect(dispatch_uid="upgrades.rules.mark_dirty")
        events = [
            {"event": "api_calls", "account": externals[(n + j) % len(externals)],
             "timestamp": (now - datetime.timedelta(seconds=n + j)).isoformat(), "idempotency_key": f"mark-{n + j}",
             "properties": {}}
            for j in range(per_batch)
        ]  # fmt: skip
        n += per_batch
        t0 = time.perf_counter()
        ingest_events(tenant, events=events, actor="bench")
        seconds[mode] += time.perf_counter() - t0
        if mode == "without":
            events_ingested.connect(on_events_ingested, dispatch_uid="upgrades.rules.mark_dirty")
        else:  # the receiver alone, on the same accounts, timed apart (it runs on commit, after ingest)
            from upgrades.rules.services import mark_accounts_dirty

            ids = list(tenant_accounts(tenant).filter(external_id__in=externals).values_list("pk", flat=True))
            t0 = time.perf_counter()
            mark_accounts_dirty(tenant.pk, ids)
            marks += time.perf_counter() - t0
    share = (seconds["with"] - seconds["without"]) / seconds["with"] if seconds["with"] else None
    _emit("rules_mark_dirty_share", batches_each=batches, events_per_batch=per_batch, accounts_per_batch=accounts,
          ingest_with_s=round(seconds["with"], 3), ingest_without_s=round(seconds["without"], 3),
          share_of_ingest=round(share, 3) if share is not None else None,
          mark_alone_ms_per_batch=round(marks / batches * 1000, 2))  # fmt: skip


def tenant_accounts(tenant):
    from accounts.models import CustomerAccount

    return CustomerAccount.objects.for_tenant(tenant).order_by("pk").values_list("pk", flat=True)
