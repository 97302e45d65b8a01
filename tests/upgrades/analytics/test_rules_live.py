"""Rule backtests next to live results: a live rule's predicted firings beside the signals it fired and the
upgrades they led to, counted by hand; another tenant's signals never count."""

from __future__ import annotations

import datetime

import pytest
from django.utils import timezone

from accounts.tenancy import tenant_context
from tests.upgrades.offers.factories_life import holding, make_offer
from tests.upgrades.rules.conftest import NOW, live_rule, rollup
from tests.usage.factories import give_license, make_catalog
from upgrades.analytics.rules_live import rules_backtest_vs_live
from upgrades.rules import services
from upgrades.rules.models import RuleState, Signal, TriggerRule

pytestmark = pytest.mark.django_db
DAY = datetime.timedelta(days=1)
HOT = {"kind": "meter_utilisation", "meter": "api_calls", "percent": 90, "days": 7, "min_days": 5}


def test_backtest_prediction_next_to_the_signal_it_fired(world_a):
    catalog = make_catalog(world_a.tenant)
    give_license(world_a.account, catalog.team, now=NOW - 60 * DAY, seats=5)
    for back in range(10):  # over 90% of Team's 10,000 calls every day: the replayed days fire too
        rollup(world_a.account, catalog.api_meter, (NOW - back * DAY).date(), 9500)
    live_rule(world_a, key="hot", condition=HOT)
    services.evaluate_rules(world_a.tenant, now=NOW)
    assert Signal.objects.filter(tenant=world_a.tenant).count() == 1
    with tenant_context(world_a.tenant):
        rows = rules_backtest_vs_live(world_a.tenant, now=NOW)
    assert rows == [
        {"rule": "hot", "name": "Hot", "predicted": 1, "predicted_upgraded": 0, "fired": 1, "fired_upgraded": 0}
    ]


def test_live_signals_that_led_to_an_upgrade(world_a, world_b):
    now = timezone.now()
    held, held_b = holding(world_a.tenant, world_a.account), holding(world_b.tenant, world_b.account)
    rows_by_world = {}
    for world, held_here in ((world_a, held), (world_b, held_b)):
        rule = TriggerRule.objects.create(
            tenant=world.tenant, key="hand", name="Hand", condition={"kind": "nonsense"},
            signal_kind="upgrade_opportunity",
        )  # fmt: skip
        TriggerRule.objects.filter(pk=rule.pk).update(state=RuleState.LIVE)
        for n in range(2):
            signal = Signal.objects.create(
                tenant=world.tenant, account=world.account, rule=rule, kind="upgrade_opportunity",
                dedup_key=f"d{n}", created_at=now - (n + 1) * DAY,
            )  # fmt: skip
            if n == 0:
                make_offer(held_here, state="fulfilled", signal=signal, fulfilled_at=now)
        rows_by_world[world.tenant.slug] = rule
    old = TriggerRule.objects.get(tenant=world_a.tenant, key="hand")
    Signal.objects.create(
        tenant=world_a.tenant, account=world_a.account, rule=old, kind="upgrade_opportunity", dedup_key="old",
        created_at=now - 40 * DAY,
    )  # fmt: skip  # before the 30 days: left out
    with tenant_context(world_a.tenant):
        rows = rules_backtest_vs_live(world_a.tenant, now=now)
    # One account fired (twice) in the 30 days; one of its signals' offers was fulfilled. The condition does
    # not parse any more, so there is no prediction. B's identical rule and signals never count.
    assert rows == [
        {"rule": "hand", "name": "Hand", "predicted": None, "predicted_upgraded": None, "fired": 1, "fired_upgraded": 1}
    ]
