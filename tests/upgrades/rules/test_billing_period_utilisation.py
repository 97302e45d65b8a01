"""Utilisation of a billing-period meter: usage since the licence's own period start, as usage counts it.

The API-calls meter is switched to the billing-period window; the Team licence renewed on
10 November 15:00 UTC (period 10 Nov - 10 Dec), so the period before it began on 10 October.
Every case runs through both evaluators (SQL and Python) via `holds`."""

from __future__ import annotations

import datetime

import pytest
from django.db import connection

from accounts.models import CustomerAccount
from billing.models import License
from catalog.models import MeterWindow
from tests.upgrades.rules.conftest import NOW, live_rule, rollup, upgraded
from tests.upgrades.rules.test_conditions import holds
from tests.usage.factories import give_license
from upgrades.rules import insights, services
from upgrades.rules.conditions import AccountData, EvalContext, SqlQuery, parse_condition
from upgrades.rules.conditions.periods import period_first_day, sql_period_first_day
from upgrades.rules.conditions.tables import tables
from upgrades.rules.data import load_rule_catalog, refresh_limits
from upgrades.rules.models import AccountScore, Signal
from upgrades.rules.services import scores
from usage.selectors import get_account_entitlements

DAY = datetime.timedelta(days=1)
RENEWED = datetime.date(2026, 11, 10)  # give_license: the period started 10 days before NOW
NOW_90 = {"kind": "meter_utilisation", "meter": "api_calls", "percent": 90}


def _per_period(catalog) -> None:
    catalog.api_meter.window = MeterWindow.BILLING_PERIOD
    catalog.api_meter.save(update_fields=["window"])


@pytest.fixture
def billed_a(world_a, cat_a):
    _per_period(cat_a)
    return cat_a


def test_fires_at_the_threshold_of_usage_since_the_licence_period_start(world_a, billed_a):
    # Team allows 10,000 calls; the period's first day counts whole (usage's window), the day before does not.
    rollup(world_a.account, billed_a.api_meter, RENEWED - DAY, 50_000)
    rollup(world_a.account, billed_a.api_meter, RENEWED, 4000)
    rollup(world_a.account, billed_a.api_meter, NOW.date(), 4999)
    assert not holds(world_a.account, NOW_90)
    rollup(world_a.account, billed_a.api_meter, NOW.date(), 5000)
    assert holds(world_a.account, NOW_90)
    assert not holds(world_a.account, {**NOW_90, "percent": 91})


def test_usage_from_before_the_renewal_does_not_count(world_a, billed_a):
    # 9,500 calls earlier this calendar month but in the last period: by calendar month it would be 96%.
    for day in range(1, 10):
        rollup(world_a.account, billed_a.api_meter, datetime.date(2026, 11, day), 1000)
    rollup(world_a.account, billed_a.api_meter, NOW.date(), 100)
    assert not holds(world_a.account, {**NOW_90, "percent": 2})
    assert holds(world_a.account, {**NOW_90, "percent": 1})


def test_the_rule_counts_what_the_entitlements_answer_shows_as_used(world_a, billed_a):
    rollup(world_a.account, billed_a.api_meter, RENEWED - DAY, 7000)
    rollup(world_a.account, billed_a.api_meter, RENEWED + DAY, 6000)
    used = next(s.used for s in get_account_entitlements(world_a.tenant, account=world_a.account, now=NOW).states()
                if s.feature == "api_calls")  # fmt: skip
    assert used == 6000
    assert holds(world_a.account, {**NOW_90, "percent": 60}) and not holds(world_a.account, {**NOW_90, "percent": 61})


def test_without_an_entitled_licence_the_meter_counts_by_calendar_month_as_usage_does(world_a, billed_a):
    License.objects.filter(account=world_a.account).update(status="canceled")  # Free: 1,000 calls, no period
    rollup(world_a.account, billed_a.api_meter, datetime.date(2026, 10, 31), 5000)
    rollup(world_a.account, billed_a.api_meter, datetime.date(2026, 11, 2), 900)
    assert holds(world_a.account, NOW_90)
    assert not holds(world_a.account, {**NOW_90, "percent": 91})


def test_k_of_n_days_counts_each_day_from_the_period_in_force_that_day(world_a, billed_a):
    # The last period (from 10 Oct) reached 9,600 on 7 Nov, 9,700 on 8 Nov, 9,800 on 9 Nov: over 90% on
    # those 3 days. The renewal on 10 Nov starts from zero: 100 a day after it stays far below.
    rollup(world_a.account, billed_a.api_meter, datetime.date(2026, 10, 9), 50_000)  # before the last period
    rollup(world_a.account, billed_a.api_meter, datetime.date(2026, 10, 15), 9500)
    for day in range(7, 21):
        rollup(world_a.account, billed_a.api_meter, datetime.date(2026, 11, day), 100)
    three = {**NOW_90, "days": 14, "min_days": 3}
    assert holds(world_a.account, three)
    assert not holds(world_a.account, {**three, "min_days": 4})
    assert not holds(world_a.account, {**three, "days": 11})  # 10..20 Nov: all in the new period


def test_the_plain_words_say_the_window_is_the_billing_period(world_a, billed_a):
    catalog = load_rule_catalog(world_a.tenant)
    assert parse_condition(NOW_90, catalog).describe(catalog) == (
        "API calls at >= 90% of the limit this billing period"
    )
    k_of_n = parse_condition({**NOW_90, "days": 7, "min_days": 3}, catalog)
    assert k_of_n.describe(catalog) == (
        "API calls at >= 90% of the limit on 3 of the last 7 days (each day counted from its billing period's start)"
    )


def test_the_sweep_and_the_dirty_evaluation_fire_with_the_period_as_evidence(world_a, billed_a):
    rollup(world_a.account, billed_a.api_meter, RENEWED - DAY, 9000)  # last period: not counted
    rollup(world_a.account, billed_a.api_meter, NOW.date(), 9000)
    live_rule(world_a, key="hot", condition=NOW_90)
    assert services.evaluate_rules(world_a.tenant, accounts=[world_a.account.pk], now=NOW).matched == {"hot": 1}
    signal = Signal.objects.get()
    [fact] = signal.evidence["facts"]
    assert fact["numbers"]["used"] == 9000 and fact["numbers"]["since"] == "2026-11-10"
    assert signal.evidence["sentence"] == "API calls at 90% of the limit (9,000 of 10,000) since 10 Nov 2026"
    assert services.evaluate_rules(world_a.tenant, now=NOW).matched == {"hot": 1}


def test_the_readiness_score_counts_the_same_period_as_the_rule(world_a, billed_a):
    # 5,000 calls in the last period (earlier this calendar month) and 4,500 since the renewal: 45 %, not 95 %.
    rollup(world_a.account, billed_a.api_meter, RENEWED - DAY, 5000)
    rollup(world_a.account, billed_a.api_meter, NOW.date(), 4500)
    refresh_limits(world_a.tenant, account_ids=None, meter_ids={billed_a.api_meter.pk}, now=NOW)  # 10,000
    for account_ids in (None, [world_a.account.pk]):  # the sweep's tenant-wide read and the dirty accounts' one
        scores.recompute_scores(world_a.tenant, account_ids=account_ids, now=NOW)
        score = AccountScore.objects.get(account=world_a.account)
        [factor] = [f for f in score.factors["readiness"] if f["factor"] == "utilisation"]
        assert factor["why"] == "highest limit used: 45%"


def test_preview_and_backtest_count_each_day_from_its_own_period(world_a, billed_a):
    # Hot in the last period (9 Nov: 9,500 since 10 Oct), cold after the renewal.
    rollup(world_a.account, billed_a.api_meter, datetime.date(2026, 11, 9), 9500)
    rollup(world_a.account, billed_a.api_meter, NOW.date(), 100)
    preview = insights.preview_rule(world_a.tenant, condition=NOW_90, now=NOW)
    assert preview.count == 0 and preview.description == "API calls at >= 90% of the limit this billing period"
    result = insights.backtest_rule(world_a.tenant, condition=NOW_90, days=14, now=NOW)
    assert [(row["external_id"], row["fired_at"].date()) for row in result.fired] == [
        (world_a.account.external_id, datetime.date(2026, 11, 9))
    ]


def test_suggestions_score_billing_period_meters_too(world_a, billed_a):
    # Four accounts at 96% in their last period (5 Nov, counted from 10 Oct) upgraded as it renewed.
    for i in range(8):
        acc = CustomerAccount.objects.create(tenant=world_a.tenant, external_id=f"c{i}", name=f"C{i}")
        give_license(acc, billed_a.team, now=NOW)
        rollup(acc, billed_a.api_meter, datetime.date(2026, 11, 5), 9600 if i < 4 else 3000)
        if i < 4:
            upgraded(acc, datetime.datetime(2026, 11, 10, tzinfo=datetime.UTC))
    suggestions, note = insights.suggest_rules(world_a.tenant, now=NOW, days=21, snapshot_every=1)
    assert suggestions, note
    assert suggestions[0].condition["meter"] == "api_calls" and suggestions[0].precision == 1.0
    assert "this billing period" in suggestions[0].description or "billing period's start" in suggestions[0].description


def test_a_billing_period_rule_never_reads_another_tenants_licence_or_usage(two_tenants, billed_a, cat_b):
    a, b = two_tenants
    _per_period(cat_b)
    # B's look-alike account is hot since its own period start; A's account is cold.
    rollup(b.account, cat_b.api_meter, NOW.date(), 9500)
    rollup(a.account, billed_a.api_meter, NOW.date(), 100)
    live_rule(a, key="hot", condition=NOW_90)
    assert services.evaluate_rules(a.tenant, now=NOW).matched == {"hot": 0}
    assert services.evaluate_rules(a.tenant, accounts=[a.account.pk, b.account.pk], now=NOW).matched == {"hot": 0}
    assert Signal.objects.count() == 0
    assert insights.preview_rule(a.tenant, condition=NOW_90, now=NOW).count == 0
    assert insights.preview_rule(b.tenant, condition=NOW_90, now=NOW).count == 1


@pytest.mark.parametrize(
    ("start", "interval", "previous"),
    [
        (datetime.datetime(2026, 3, 31, 8, 0, tzinfo=datetime.UTC), "month", datetime.date(2026, 2, 28)),
        (datetime.datetime(2028, 3, 30, 23, 0, tzinfo=datetime.UTC), "month", datetime.date(2028, 2, 29)),
        (datetime.datetime(2026, 1, 31, 0, 0, tzinfo=datetime.UTC), "month", datetime.date(2025, 12, 31)),
        (datetime.datetime(2028, 2, 29, 12, 0, tzinfo=datetime.UTC), "year", datetime.date(2027, 2, 28)),
        (datetime.datetime(2026, 7, 15, 12, 0, tzinfo=datetime.UTC), "year", datetime.date(2025, 7, 15)),
    ],
)
def test_the_period_before_ends_the_month_as_billing_clamps_it_in_both_evaluators(
    world_a, cat_a, start, interval, previous
):
    lic = License.objects.get(account=world_a.account)
    lic.current_period_start, lic.current_period_end, lic.interval = start, start + 40 * DAY, interval
    lic.save()
    catalog = load_rule_catalog(world_a.tenant)
    data = AccountData(account_id=world_a.account.pk, period_start=start, period_end=start + 40 * DAY,
                       interval=interval)  # fmt: skip
    for now in (start + DAY, start - DAY):  # in the current period; in the one before it
        ctx = EvalContext(tenant_id=world_a.tenant.pk, now=now, time_zone="UTC", catalog=catalog)
        for day in (previous - DAY, previous, now.date()):
            q = SqlQuery(ctx, vendor=connection.vendor, ops=connection.ops)
            sql = f"SELECT {sql_period_first_day(q, day)} FROM {tables().license} lic WHERE lic.id = {q.p(lic.pk)}"  # noqa: S608
            with connection.cursor() as cursor:
                cursor.execute(sql, q.params)
                by_sql = cursor.fetchone()[0]
            by_sql = datetime.date.fromisoformat(by_sql) if isinstance(by_sql, str) else by_sql
            by_python = period_first_day(data, day, ctx)
            assert by_sql == by_python, (now, day)
        assert period_first_day(data, now.date(), ctx) == (start.date() if now > start else previous)
