"""Offer-engine figures (issue 14): offers for 10,000 accounts with open signals through real Celery
workers (2 worker processes), and queries per offer at 2 catalog sizes and 2 account counts.

Run by bench/run.py (`--offers-accounts N`, 0 skips; `--only-offers` runs these alone) on its bench
database, the app role under row-level security; bulk rows (accounts' 8 weeks of rollups) are
written as the owner with plain SQL, the rest through the ORM inside the tenant.

Figures (one JSON line each):
- offers_queries: queries per offer of `build_offers_for_signals` (recommendation, pricing, the
  arbitrated write, release, signal acted on, audit) for 50 signals, at a small and a large catalog
  (4 tiers vs 44 tiers, 21 add-ons, 11 bundles) and in tenants of 1,000 and 10,000 accounts; measured
  in a transaction that is rolled back, so the signals stay open for the throughput run;
- offers_throughput: the beat sweep enqueues every open signal in batches (tasks.BATCH_SIZE); 2 worker processes
  build them; wall time from the sweep to the last offer, offers/s (target: all in < 60 s).
"""

from __future__ import annotations

import datetime
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from accounts.models import Tenant

ROOT = Path(__file__).resolve().parent.parent
TARGET_S = 60.0
SAMPLE = 50
WEEKS = 8


def _emit(figure: str, **values) -> None:
    from bench.run import emit

    emit(figure, **values)


def _catalog(tenant, *, extra: int = 0):
    """Free < Team (50k calls) < Business (unlimited, SSO; the anchor) < Scale, an SSO add-on, a bundle;
    `extra` more tiers (and half as many add-ons, a quarter as many bundles) for the large catalog."""
    from django.utils import timezone

    from catalog.models import (
        AddOn,
        Bundle,
        Entitlement,
        Feature,
        FeatureKind,
        GovernanceState,
        Meter,
        Price,
        Product,
        Tier,
    )

    now, pub = timezone.now(), GovernanceState.PUBLISHED
    product = Product.objects.for_tenant(tenant).filter(key="app").first()
    if product is None:
        product = Product.objects.create(tenant=tenant, key="app", name="App")
        api = Feature.objects.create(tenant=tenant, product=product, key="api_calls", name="API calls",
                                     kind=FeatureKind.METERED, unit="API calls")  # fmt: skip
        seats = Feature.objects.create(tenant=tenant, product=product, key="seats", name="Seats",
                                       kind=FeatureKind.SEATS, unit="seats")  # fmt: skip
        sso = Feature.objects.create(tenant=tenant, product=product, key="sso", name="Single sign-on",
                                     kind=FeatureKind.BOOLEAN)  # fmt: skip
        Meter.objects.create(tenant=tenant, feature=api, key="api_calls", name="API calls", event_name="api.call")
        ladder = [("free", 10, 0, 1_000, False, False), ("team", 20, 2_900, 50_000, False, False),
                  ("business", 30, 7_900, None, True, True), ("scale", 40, 15_900, None, True, False)]  # fmt: skip
        tiers = {}
        for key, rank, monthly, calls, has_sso, anchor in ladder:
            tier = Tier.objects.create(tenant=tenant, product=product, key=key, name=key.title(), rank=rank,
                                       is_free=key == "free", is_anchor=anchor, state=pub,
                                       published_at=now)  # fmt: skip
            tiers[key] = tier
            for interval, amount in (("month", monthly), ("year", monthly * 10)):
                Price.objects.create(tenant=tenant, tier=tier, key=f"{key}-{interval}", interval=interval,
                                     amount=amount, state=pub, published_at=now)  # fmt: skip
            Entitlement.objects.create(tenant=tenant, tier=tier, feature=api, limit=calls)
            Entitlement.objects.create(tenant=tenant, tier=tier, feature=seats, limit=None if rank > 20 else 25)
            Entitlement.objects.create(tenant=tenant, tier=tier, feature=sso, enabled=has_sso)
        addon = AddOn.objects.create(tenant=tenant, product=product, key="sso-pack", name="SSO pack", state=pub,
                                     published_at=now)  # fmt: skip
        addon.compatible_tiers.set([tiers["team"]])
        Price.objects.create(tenant=tenant, addon=addon, key="sso-pack-month", interval="month", amount=1_000,
                             state=pub, published_at=now)  # fmt: skip
        Entitlement.objects.create(tenant=tenant, addon=addon, feature=sso, enabled=True)
        bundle = Bundle.objects.create(tenant=tenant, key="clinics", name="Clinics", tier=tiers["team"],
                                       audience_kind="industry", audience="healthcare", state=pub)  # fmt: skip
        bundle.addons.set([addon])
    api = Feature.objects.for_tenant(tenant).get(key="api_calls")
    for i in range(extra):
        tier = Tier.objects.create(tenant=tenant, product=product, key=f"x{i}", name=f"X{i}", rank=50 + i,
                                   state=pub, published_at=now)  # fmt: skip
        Price.objects.create(tenant=tenant, tier=tier, key=f"x{i}-month", interval="month", amount=20_000 + i,
                             state=pub, published_at=now)  # fmt: skip
        Entitlement.objects.create(tenant=tenant, tier=tier, feature=api, limit=None)
        if i % 2 == 0:
            addon = AddOn.objects.create(tenant=tenant, product=product, key=f"pack{i}", name=f"Pack {i}",
                                         state=pub, published_at=now)  # fmt: skip
            addon.compatible_tiers.set([tier])
            Price.objects.create(tenant=tenant, addon=addon, key=f"pack{i}-month", interval="month", amount=500,
                                 state=pub, published_at=now)  # fmt: skip
            Entitlement.objects.create(tenant=tenant, addon=addon, feature=api, limit=10_000)
        if i % 4 == 0:
            Bundle.objects.create(tenant=tenant, key=f"b{i}", name=f"B{i}", tier=tier, audience_kind="role",
                                  audience="ops", state=pub)  # fmt: skip


def seed(owner_url: str, *, slug: str, accounts: int, pk_offset: int) -> Tenant:
    import psycopg2
    from django.utils import timezone

    from accounts.models import CustomerAccount, Tenant
    from accounts.tenancy import tenant_context
    from billing.models import License
    from catalog.models import Meter, Price, Tier
    from upgrades.offers.models import OfferSettings, SettingsState
    from upgrades.rules.models import Signal, SignalKind, TriggerRule

    tenant = Tenant.objects.create(pk=(int(time.time()) % 10**9) + pk_offset, slug=slug, name=slug.title())
    now = timezone.now()
    with tenant_context(tenant):
        _catalog(tenant)
        OfferSettings.objects.create(tenant=tenant, version=1, state=SettingsState.LIVE, approved_at=now, live_at=now,
                                     signal_kinds=["upgrade_opportunity"])  # fmt: skip
        rule = TriggerRule.objects.create(tenant=tenant, key="near-limit", name="Near the limit", state="live",
                                          condition={"kind": "meter_utilisation", "meter": "api_calls", "percent": 80},
                                          signal_kind=SignalKind.UPGRADE_OPPORTUNITY)  # fmt: skip
        CustomerAccount.objects.bulk_create(
            [CustomerAccount(tenant=tenant, external_id=f"o{i:06d}", name=f"Account {i}",
                             industry="healthcare" if i % 5 == 0 else "software") for i in range(accounts)],
            batch_size=2000,
        )  # fmt: skip
        ids = list(CustomerAccount.objects.for_tenant(tenant).order_by("pk").values_list("pk", flat=True))
        team = Tier.objects.for_tenant(tenant).get(key="team")
        price = Price.objects.for_tenant(tenant).get(key="team-month")
        start = now - datetime.timedelta(days=10)
        License.objects.bulk_create(
            [License(tenant=tenant, account_id=a, tier=team, price=price, seats=3, interval="month",
                     current_period_start=start, current_period_end=start + datetime.timedelta(days=30),
                     currency="USD", mrr=8_700) for a in ids],
            batch_size=2000,
        )  # fmt: skip
        # Half grow past Team's 50k calls (add Business), the rest hit the SSO gate (the add-on / bundle).
        facts_sso = [{"kind": "gate_hits", "numbers": {"event": "feature_gate_hit", "count": 9, "days": 7},
                      "sentence": "hit the sso gate 9 times in the last 7 days"}]  # fmt: skip
        Signal.objects.bulk_create(
            [Signal(tenant=tenant, account_id=a, rule=rule, kind=SignalKind.UPGRADE_OPPORTUNITY,
                    evidence={"sentence": "Near the limit", "facts": [] if n % 2 == 0 else facts_sso},
                    dedup_key=f"{rule.pk}:{a}:bench", created_at=now, updated_at=now) for n, a in enumerate(ids)],
            batch_size=2000,
        )  # fmt: skip
        meter = Meter.objects.for_tenant(tenant).get(key="api_calls")
    today = now.astimezone(datetime.UTC).date()
    conn = psycopg2.connect(owner_url)
    conn.autocommit = True
    with conn.cursor() as cur:  # 8 weeks of daily API calls per account: growing for even ones, steady otherwise
        cur.execute(
            "INSERT INTO usage_usagerollup (tenant_id, account_id, meter_id, day, value, event_count, updated_at)"
            " SELECT %s, a.id, %s, d::date,"
            " CASE WHEN a.rn %% 2 = 0 THEN 900 + (d::date - %s::date) * 20 ELSE 300 + a.rn %% 50 END, 1, now()"
            " FROM (SELECT id, row_number() OVER (ORDER BY id) - 1 AS rn FROM accounts_customeraccount"
            "       WHERE tenant_id = %s) a,"
            " generate_series(%s::date, %s::date, interval '1 day') d",
            (tenant.pk, meter.pk, today - datetime.timedelta(days=WEEKS * 7), tenant.pk,
             today - datetime.timedelta(days=WEEKS * 7), today),
        )  # fmt: skip
        cur.execute("ANALYZE usage_usagerollup")
    conn.close()
    return tenant


class _Rollback(Exception):
    pass


def queries_per_offer(tenant, *, extra: int) -> tuple[float, int]:
    """Queries per offer for SAMPLE open signals, rolled back afterwards (catalog additions too)."""
    from django.db import connection, transaction
    from django.test.utils import CaptureQueriesContext

    from accounts.tenancy import tenant_context
    from upgrades.offers.services.building import build_offers_for_signals, pending_signal_ids

    result = (0.0, 0)
    with tenant_context(tenant):
        try:
            with transaction.atomic():
                if extra:
                    _catalog(tenant, extra=extra)
                ids = pending_signal_ids(tenant)[:SAMPLE]
                with CaptureQueriesContext(connection) as captured:
                    offers = build_offers_for_signals(tenant, signal_ids=ids)
                result = (len(captured) / max(1, len(offers)), len(offers))
                raise _Rollback
        except _Rollback:
            pass
    return result


def _workers(env: dict, n: int):
    """n real `celery worker` processes (solo pool each), ready."""
    log_dir = ROOT / "var"
    log_dir.mkdir(exist_ok=True)
    procs = []
    for i in range(n):
        log_path = log_dir / f"bench-offers-worker-{i}.log"
        log = log_path.open("w")
        proc = subprocess.Popen(
            [sys.executable, "-m", "celery", "-A", "config", "worker", "-P", "solo", "-c", "1", "-n",
             f"bench-offers-{i}@%h", "--without-gossip", "--without-mingle", "--without-heartbeat", "-l", "warning",
             "--prefetch-multiplier", "1"],
            cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT,
        )  # fmt: skip
        procs.append((proc, log_path))
    return procs


def _stop(procs) -> None:
    for proc, _ in procs:
        proc.terminate()
    for proc, _ in procs:
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()


def run(owner_url: str, *, accounts: int = 10_000, workers: int = 2) -> None:
    from accounts.tenancy import tenant_context
    from config.celery import app
    from upgrades.offers import tasks
    from upgrades.offers.models import Offer

    t0 = time.perf_counter()
    big = seed(owner_url, slug="bench-offers", accounts=accounts, pk_offset=11)
    small = seed(owner_url, slug="bench-offers-small", accounts=max(1, accounts // 10), pk_offset=13)
    _emit("offers_seed", accounts=accounts + max(1, accounts // 10), seconds=round(time.perf_counter() - t0, 1))
    rows = {}
    for tenant, n in ((small, max(1, accounts // 10)), (big, accounts)):
        for label, extra in (("small", 0), ("large", 40)):
            qpo, built = queries_per_offer(tenant, extra=extra)
            rows[(n, label)] = qpo
            _emit("offers_queries", accounts=n, catalog=label, catalog_tiers=4 + extra, offers=built,
                  queries_per_offer=round(qpo, 2))  # fmt: skip
    values = set(round(v, 2) for v in rows.values())
    _emit("offers_queries_constant", constant=len(values) == 1, values=sorted(values))

    env = {**os.environ, "CELERY_TASK_ALWAYS_EAGER": "0", "LOG_LEVEL": "WARNING"}
    app.conf.task_always_eager = False
    app.control.purge()
    procs = _workers(env, workers)
    try:
        deadline = time.monotonic() + 90
        while not all("ready" in p.read_text() or "celery@" in p.read_text() for _, p in procs):
            if time.monotonic() > deadline:
                break
            time.sleep(0.5)
        time.sleep(2.0)  # -l warning prints no "ready": give them a moment to connect
        start = time.perf_counter()
        tasks.sweep_offer_signals.delay()
        done = 0
        limit = time.monotonic() + 1500
        while time.monotonic() < limit:
            with tenant_context(big):
                done = Offer.objects.for_tenant(big).count()
            if done >= accounts:
                break
            time.sleep(0.5)
        seconds = time.perf_counter() - start
    finally:
        _stop(procs)
    met = done >= accounts and seconds < TARGET_S
    _emit("offers_throughput", accounts=accounts, offers=done, worker_processes=workers, seconds=round(seconds, 2),
          offers_per_s=round(done / seconds, 1), target_s=TARGET_S, met=met)  # fmt: skip
