"""Analytics figures (issue 18): revenue metrics over 100,000 accounts and 24 months of LicenseChange history,
and the dashboard page served from its cached snapshot.

Seeded with set-based INSERT ... SELECT (generate_series): each account starts paying in one of the last
24 months (a tenth in EUR, some after a trial), then changes every three months — seat expansions, downgrades,
a churn and a later reactivation for some — about 400,000 changes in all.

Figures:
- `analytics_revenue_s`: MRR movements (24 months) plus NRR/GRR by segment and by cohort, read from
  PostgreSQL as the app role under row-level security and computed with pandas (target < 10 s).
- `analytics_dashboard_ms`: GET /analytics/ through Django's test client (middleware, snapshot from the cache,
  template), warm, 20 times; p95 in ms (target < 300).
"""

from __future__ import annotations

import statistics
import time

REVENUE_TARGET_S = 10.0
PAGE_TARGET_MS = 300.0
REPEAT = 20


def _emit(figure: str, **values) -> None:
    from bench.run import emit

    emit(figure, **values)


def seed(accounts: int):
    from django.db import connection
    from django.utils import timezone

    from accounts.models import Membership, Role, Tenant, User
    from accounts.tenancy import tenant_context

    tenant = Tenant.objects.create(slug="bench-analytics", name="Bench Analytics")
    with tenant_context(tenant):
        analyst = User.objects.create_user("analyst@bench-analytics.test", "pw-bench-123456")
        Membership.objects.create(tenant=tenant, user=analyst, role=Role.ANALYST, accepted_at=timezone.now())
        with connection.cursor() as cur:
            cur.execute(
                """INSERT INTO accounts_customeraccount (tenant_id, external_id, name, industry, size_band, segment,
                   territory, lifecycle_stage, attributes, created_at, updated_at)
                   SELECT %s, 'b-' || g, 'Bench Account ' || g, 'software', '',
                   (ARRAY['smb','mid_market','enterprise'])[1 + g %% 3], '', 'active', '{}', now(), now()
                   FROM generate_series(1, %s) g""",
                [tenant.pk, accounts],
            )
            cur.execute(
                """INSERT INTO billing_licensechange (tenant_id, account_id, kind, from_state, to_state, reason,
                   actor_label, reference, mrr_before, mrr_after, currency, stripe_invoice_id, effective_at, created_at)
                   SELECT tenant_id, id, kind, '{}', jsonb_build_object('tier', tier, 'status', status), '',
                   'bench', '', 0, mrr, currency, '', at, now()
                   FROM (
                     SELECT a.tenant_id, a.id, (k - s) / 3 AS j,
                       CASE WHEN g %% 10 = 0 THEN 'EUR' ELSE 'USD' END AS currency,
                       CASE WHEN g %% 3 = 0 THEN 'business' ELSE 'team' END AS tier,
                       CASE WHEN k = s THEN 'new' ELSE 'seats' END AS kind,
                       CASE WHEN k = s AND g %% 13 = 0 THEN 'trialing'
                            WHEN g %% 11 = 0 AND (k - s) / 3 = 2 THEN 'canceled' ELSE 'active' END AS status,
                       CASE WHEN g %% 11 = 0 AND (k - s) / 3 = 2 THEN 0
                            WHEN g %% 5 = 1 AND k > s THEN (1000 * (1 + g %% 7)) / 2
                            ELSE 1000 * (1 + g %% 7) + ((k - s) / 3) * 100 * (g %% 3) END AS mrr,
                       date_trunc('month', now()) - interval '23 months' + make_interval(months => k, days => g %% 28)
                         + make_interval(secs => g %% 86400) AS at
                     FROM (SELECT tenant_id, id, substr(external_id, 3)::int AS g FROM accounts_customeraccount
                           WHERE tenant_id = %s) a
                     CROSS JOIN LATERAL (SELECT (a.g * 7) %% 24 AS s) start
                     CROSS JOIN generate_series(0, 23) k
                     WHERE k >= s AND (k - s) %% 3 = 0
                   ) steps WHERE at <= now()""",
                [tenant.pk],
            )
            cur.execute("SELECT count(*) FROM billing_licensechange WHERE tenant_id = %s", [tenant.pk])
            changes = cur.fetchone()[0]
            cur.execute("ANALYZE")
    return tenant, analyst, changes


def run(owner_url: str, *, accounts: int = 100_000) -> dict[str, float]:
    import pandas as pd
    from django.conf import settings as django_settings
    from django.core.cache import cache
    from django.test import Client, override_settings
    from django.utils import timezone

    from accounts.tenancy import tenant_context
    from upgrades.analytics.services import revenue_report
    from upgrades.analytics.snapshot import cache_key, refresh_snapshot

    tenant, analyst, changes = seed(accounts)
    end = pd.Period(timezone.now().strftime("%Y-%m"), freq="M")
    start = end - 23
    with tenant_context(tenant):
        t0 = time.perf_counter()
        report = revenue_report(tenant, start=start, end=end, group_bys=(None, "segment", "cohort"))
        movements, by_segment, by_cohort = report[None], report["segment"], report["cohort"]
        seconds = time.perf_counter() - t0
    _emit(
        "analytics_revenue_s",
        accounts=accounts,
        license_changes=changes,
        months=24,
        rows={"movements": len(movements), "by_segment": len(by_segment), "by_cohort": len(by_cohort)},
        seconds=round(seconds, 2),
        target_s=REVENUE_TARGET_S,
        met=seconds < REVENUE_TARGET_S,
    )
    cache.delete(cache_key(tenant.pk))
    with tenant_context(tenant):
        t0 = time.perf_counter()
        refresh_snapshot(tenant)
        snapshot_s = time.perf_counter() - t0
    client = Client()
    client.force_login(analyst)
    # No collectstatic in the bench: plain static storage (the page's work is the same).
    storages = {
        **django_settings.STORAGES,
        "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
    }
    times = []
    with override_settings(STORAGES=storages):
        client.get("/analytics/", secure=True)  # warm
        for _ in range(REPEAT):
            t0 = time.perf_counter()
            response = client.get("/analytics/", secure=True)
            times.append((time.perf_counter() - t0) * 1000)
            assert response.status_code == 200, response.status_code
    p95 = statistics.quantiles(times, n=20)[-1]
    _emit(
        "analytics_dashboard_ms",
        accounts=accounts,
        snapshot_build_s=round(snapshot_s, 2),
        p50_ms=round(statistics.median(times), 1),
        p95_ms=round(p95, 1),
        target_ms=PAGE_TARGET_MS,
        met=p95 < PAGE_TARGET_MS,
    )
    cache.delete(cache_key(tenant.pk))
    return {"revenue_s": seconds, "dashboard_p95_ms": p95}
