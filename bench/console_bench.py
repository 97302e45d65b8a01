"""Console figure (issue 17): the worklist page's server time at 100,000 accounts.

One tenant, 100,000 accounts over 20 CSMs (5,000 each), every account scored and licensed, 5,000 open
signals and 3,000 open tasks. Each page is requested through Django's test client (the whole view:
middleware, the worklist's two SQL statements, the template) as the app role under row-level security,
warm, 20 times; the figure is the p95 server time per page in ms (target < 300).

Pages: a CSM's "mine" (5,000 accounts), a PM's everyone's (100,000), a filtered view (segment + stage),
and page 40 of everyone's (offset pagination).
"""

from __future__ import annotations

import os
import statistics
import sys
import time

TARGET_MS = 300.0
CSMS = 20
REPEAT = 20


def _emit(figure: str, **values) -> None:
    from bench.run import emit

    emit(figure, **values)


def seed(accounts: int):
    from django.db import connection
    from django.utils import timezone

    from accounts.models import Membership, Role, Tenant, User
    from accounts.tenancy import tenant_context
    from catalog.models import GovernanceState, Product, Tier

    tenant = Tenant.objects.create(slug="bench-console", name="Bench Console")
    with tenant_context(tenant):
        users = []
        for i in range(CSMS):
            user = User.objects.create_user(f"csm{i}@bench-console.test", "pw-bench-123456")
            Membership.objects.create(tenant=tenant, user=user, role=Role.CSM, accepted_at=timezone.now())
            users.append(user)
        pm = User.objects.create_user("pm@bench-console.test", "pw-bench-123456")
        Membership.objects.create(tenant=tenant, user=pm, role=Role.PRODUCT_MANAGER, accepted_at=timezone.now())
        product = Product.objects.create(tenant=tenant, key="app", name="App")
        tiers = [
            Tier.objects.create(
                tenant=tenant,
                product=product,
                key=k,
                name=k.title(),
                rank=r,
                state=GovernanceState.PUBLISHED,
                published_at=timezone.now(),
            )
            for k, r in (("team", 20), ("business", 30))
        ]
        from upgrades.rules.models import TriggerRule

        rule = TriggerRule.objects.create(
            tenant=tenant,
            key="bench-near-limit",
            name="Near limit",
            condition={"all": []},
            signal_kind="upgrade_opportunity",
        )
        ids = [u.pk for u in users]
        with connection.cursor() as cur:
            cur.execute(
                """INSERT INTO accounts_customeraccount (tenant_id, external_id, name, industry, size_band, segment,
                   territory, lifecycle_stage, assigned_csm_id, attributes, created_at, updated_at)
                   SELECT %s, 'b-' || g, 'Bench Account ' || g, 'software', '',
                   (ARRAY['smb','mid_market','enterprise'])[1 + g %% 3],
                   (ARRAY['emea','amer','apac'])[1 + g %% 3],
                   (ARRAY['active','expansion','renewal','at_risk'])[1 + g %% 4],
                   (%s::int[])[1 + g %% %s], '{}', now(), now() FROM generate_series(1, %s) g""",
                [tenant.pk, ids, CSMS, accounts],
            )
            cur.execute(
                """INSERT INTO upgrades_accountscore (tenant_id, account_id, readiness, health, churn_flags, factors,
                   previous_readiness, week_started_at, computed_at)
                   SELECT tenant_id, id, (id * 37) %% 101, (id * 53) %% 101,
                   CASE WHEN id %% 17 = 0 THEN '["usage_drop"]'::jsonb ELSE '[]'::jsonb END, '{}',
                   (id * 31) %% 101, now(), now()
                   FROM accounts_customeraccount WHERE tenant_id = %s""",
                [tenant.pk],
            )
            cur.execute(
                """INSERT INTO billing_license (tenant_id, account_id, tier_id, seats, interval, term_years,
                   current_period_start, current_period_end, cancel_at_period_end, status, status_reason, currency, mrr,
                   stripe_customer_id, stripe_subscription_id, stripe_subscription_item_id, held_from_status,
                   renewal_discount_percent, created_at, updated_at)
                   SELECT tenant_id, id, CASE WHEN id %% 3 = 0 THEN %s ELSE %s END, 1 + id %% 40, 'year', 1,
                   now() - interval '200 days', now() + ((id %% 365) || ' days')::interval, false, 'active', '', 'USD',
                   1000, '', '', '', '', 0, now(), now() FROM accounts_customeraccount WHERE tenant_id = %s""",
                [tiers[1].pk, tiers[0].pk, tenant.pk],
            )
            cur.execute(
                """INSERT INTO upgrades_consoletask (tenant_id, account_id, kind, title, notes, state, due_at,
                   assigned_to_id, created_at)
                   SELECT tenant_id, id, CASE WHEN id %% 2 = 0 THEN 'talk_request' ELSE 'follow_up' END,
                   'Call', '', 'open',
                   now() + ((id %% 10 - 3) || ' days')::interval, assigned_csm_id, now()
                   FROM accounts_customeraccount WHERE tenant_id = %s AND id %% 33 = 0""",
                [tenant.pk],
            )
            cur.execute(
                """INSERT INTO upgrades_signal (tenant_id, account_id, rule_id, kind, evidence, state, priority,
                   target_kind, target_key, requires_csm_review, dedup_key, closed_by, closed_reason, reference,
                   created_at, updated_at)
                   SELECT tenant_id, id, %s, 'upgrade_opportunity', '{"sentence": "Near the limit"}', 'open', 50,
                   'lowest_fit', '', false, 'bench:' || id, '', '', '', now(), now()
                   FROM accounts_customeraccount WHERE tenant_id = %s AND id %% 20 = 0""",
                [rule.pk, tenant.pk],
            )
    return tenant, users[0], pm


def analyze(owner_url: str) -> None:
    from bench.run import analyze as analyze_tables

    analyze_tables(owner_url, "accounts_customeraccount", "upgrades_accountscore", "billing_license",
                   "upgrades_consoletask", "upgrades_signal", "catalog_tier")  # fmt: skip


def run(owner_url: str, *, accounts: int = 100_000) -> dict[str, float]:
    from django.conf import settings as django_settings
    from django.test import override_settings

    tenant, csm, pm = seed(accounts)
    analyze(owner_url)
    # No collectstatic in the bench: plain static storage (the page's work is the same).
    storages = {
        **django_settings.STORAGES,
        "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
    }
    with override_settings(STORAGES=storages):
        out = _measure(csm, pm, accounts)
    if os.environ.get("CONSOLE_EXPLAIN"):
        explain(tenant)
    return out


def explain(tenant) -> None:
    """EXPLAIN ANALYZE of everyone's worklist page (CONSOLE_EXPLAIN=1), as the app role, to stderr."""
    from datetime import timedelta

    from django.db import connection
    from django.utils import timezone

    from accounts.tenancy import tenant_context
    from upgrades.console import worklist as wl

    now = timezone.now()
    where, params = wl._where(wl.WorklistFilters(csm="all"), user_id=None)
    params.update(control="control", running="running", tenant=tenant.pk, now=now)
    params.update(soon=now + timedelta(days=45), later=now + timedelta(days=90), limit=wl.PAGE_SIZE, offset=0)
    sql = wl.SQL.format(where=where, **wl.DIALECT[True])
    sql += " ORDER BY attention DESC, a.id LIMIT %(limit)s OFFSET %(offset)s"
    with tenant_context(tenant), connection.cursor() as cur:
        cur.execute("EXPLAIN (ANALYZE, BUFFERS) " + sql, params)
        print("\n".join(r[0] for r in cur.fetchall()), file=sys.stderr)


def _measure(csm, pm, accounts: int) -> dict[str, float]:
    from django.test import Client

    pages = {
        "csm_mine": (csm, "/console/"),
        "pm_all": (pm, "/console/?csm=all"),
        "pm_filtered": (pm, "/console/?csm=all&segment=enterprise&stage=at_risk"),
        "pm_all_page_40": (pm, "/console/?csm=all&page=40"),
    }
    out = {}
    for name, (user, path) in pages.items():
        client = Client()
        client.force_login(user)
        client.get(path, secure=True)  # warm
        times = []
        for _ in range(REPEAT):
            t0 = time.perf_counter()
            response = client.get(path, secure=True)
            times.append((time.perf_counter() - t0) * 1000)
            assert response.status_code == 200, (path, response.status_code)
        p95 = statistics.quantiles(times, n=20)[-1]
        out[name] = p95
        _emit(
            "console_worklist_ms",
            page=name,
            accounts=accounts,
            p50_ms=round(statistics.median(times), 1),
            p95_ms=round(p95, 1),
            target_ms=TARGET_MS,
            met=p95 < TARGET_MS,
        )
    return out
