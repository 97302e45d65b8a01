"""Preview equals evaluation; the backtest never looks ahead; suggestions say when history is thin."""

from __future__ import annotations

import datetime

from accounts.models import CustomerAccount
from billing.models import License, LicenseChange
from tests.upgrades.rules.conftest import NOW, live_rule, rollup, upgraded
from tests.usage.factories import give_license
from upgrades.rules import insights, services
from upgrades.rules.models import AccountLimit, Signal

DAY = datetime.timedelta(days=1)
HOT = {"kind": "meter_utilisation", "meter": "api_calls", "percent": 90}


def _accounts(world, catalog, n: int) -> list[CustomerAccount]:
    out = []
    for i in range(n):
        acc = CustomerAccount.objects.create(tenant=world.tenant, external_id=f"c{i}", name=f"C{i}")
        give_license(acc, catalog.team, now=NOW)
        out.append(acc)
    return out


def test_preview_matches_exactly_the_accounts_evaluation_then_signals(world_a, cat_a):
    accounts = _accounts(world_a, cat_a, 6)
    for i, acc in enumerate(accounts):
        rollup(acc, cat_a.api_meter, NOW.date(), 8000 + 400 * i)  # 80% .. 100%: c3, c4, c5 at >= 90%
    preview = insights.preview_rule(world_a.tenant, condition=HOT, now=NOW, sample=2)
    assert preview.count == 3 and preview.total_accounts == 7
    assert [row["external_id"] for row in preview.sample] == ["c3", "c4"]
    assert "API calls at 92% of the limit" in preview.sample[0]["evidence"]["sentence"]
    live_rule(world_a, key="hot", condition=HOT)
    services.evaluate_rules(world_a.tenant, now=NOW)
    signalled = set(Signal.objects.values_list("account__external_id", flat=True))
    assert signalled == {"c3", "c4", "c5"}


def test_backtest_replays_each_day_with_only_what_existed_then(world_a, cat_a):
    early, late = _accounts(world_a, cat_a, 2)
    rollup(early, cat_a.api_meter, NOW.date() - 3 * DAY, 9500)  # hot three days ago
    rollup(late, cat_a.api_meter, NOW.date(), 9500)  # hot only today: no replayed day may see it
    LicenseChange.objects.create(
        tenant=world_a.tenant, account=early, kind="upgrade", actor_label="test", mrr_before=100, mrr_after=200,
        effective_at=NOW - DAY,
    )  # fmt: skip
    result = insights.backtest_rule(world_a.tenant, condition=HOT, days=5, now=NOW)
    assert [row["external_id"] for row in result.fired] == ["c0"]
    fired_at = result.fired[0]["fired_at"]
    assert fired_at.date() == (NOW - 3 * DAY).date() and fired_at.hour == 23
    assert result.fired_upgraded == 1 and result.base_accounts == 2 and result.base_upgraded == 0
    assert "too few accounts to tell" in result.verdict


def test_backtest_ignores_a_limit_reached_the_day_after_the_replayed_day(world_a, cat_a):
    [acc] = _accounts(world_a, cat_a, 1)
    rollup(acc, cat_a.api_meter, NOW.date() - 2 * DAY, 8000)
    rollup(acc, cat_a.api_meter, NOW.date() - DAY, 2000)  # crosses 90% on the last replayed day only
    result = insights.backtest_rule(world_a.tenant, condition=HOT, days=3, now=NOW)
    assert [r["fired_at"].date() for r in result.fired] == [(NOW - DAY).date()]


def test_suggestions_say_plainly_when_history_is_too_thin(world_a, cat_a):
    suggestions, note = insights.suggest_rules(world_a.tenant, now=NOW)
    assert suggestions == [] and "too little history" in note


def test_suggestions_find_the_threshold_that_preceded_upgrades(world_a, cat_a):
    accounts = _accounts(world_a, cat_a, 8)
    for i, acc in enumerate(accounts):
        hot = i < 4
        rollup(acc, cat_a.api_meter, datetime.date(2026, 11, 1), 9600 if hot else 3000)
        if hot:
            upgraded(acc, datetime.datetime(2026, 11, 10, tzinfo=datetime.UTC))
    suggestions, note = insights.suggest_rules(world_a.tenant, now=NOW, days=21, snapshot_every=1)
    assert suggestions, note
    best = suggestions[0]
    # Days before the usage arrived count as missed upgrades: recall is below 1, precision is exact.
    assert best.condition["meter"] == "api_calls" and best.precision == 1.0 and 0.8 <= best.recall < 1.0
    assert "precision 100%" in best.explanation


def _change(world, account, *, kind, before, after, at, mrr=(100, 200)):
    return LicenseChange.objects.create(
        tenant=world.tenant, account=account, kind=kind, actor_label="test", mrr_before=mrr[0], mrr_after=mrr[1],
        from_state=before, to_state=after, effective_at=at,
    )  # fmt: skip


def _state(tier, status="active", addons=()):
    return {"tier": tier.key, "tier_version": tier.version, "status": status, "addons": list(addons), "seats": 5}


def test_backtest_replays_each_day_with_the_limits_the_account_held_then(world_a, cat_a):
    """Team (10,000 calls) until two days ago, Business (unlimited) since: at 9,500 calls three days ago
    the rule held under the limit the account had then, though today's limit would never fire."""
    [acc] = _accounts(world_a, cat_a, 1)
    License.objects.filter(account=acc).update(tier=cat_a.business)
    _change(world_a, acc, kind="upgrade", before=_state(cat_a.team), after=_state(cat_a.business), at=NOW - 2 * DAY)
    rollup(acc, cat_a.api_meter, NOW.date() - 3 * DAY, 9500)
    result = insights.backtest_rule(world_a.tenant, condition=HOT, days=5, now=NOW)
    assert [(r["external_id"], r["fired_at"].date()) for r in result.fired] == [("c0", (NOW - 3 * DAY).date())]
    assert result.fired[0]["upgraded_at"] == NOW - 2 * DAY
    # The replay wrote nothing: today's limits are as the evaluation left them (Business: none for calls).
    assert not AccountLimit.objects.filter(account=acc, meter=cat_a.api_meter).exists()
    # Today's preview agrees that it no longer holds.
    assert insights.preview_rule(world_a.tenant, condition=HOT, now=NOW).count == 0


def test_backtest_before_a_first_licence_uses_the_free_tier_and_unknown_history_keeps_todays_limits(world_a, cat_a):
    newbie, legacy = _accounts(world_a, cat_a, 2)
    _change(world_a, newbie, kind="new", before={}, after=_state(cat_a.team), at=NOW - 2 * DAY, mrr=(0, 100))
    _change(world_a, legacy, kind="seats", before={}, after={}, at=NOW - 2 * DAY, mrr=(100, 100))  # says nothing
    for acc in (newbie, legacy):
        rollup(acc, cat_a.api_meter, NOW.date() - 4 * DAY, 950)  # 95% of Free's 1,000; 9.5% of Team's 10,000
    result = insights.backtest_rule(world_a.tenant, condition=HOT, days=5, now=NOW)
    assert [r["external_id"] for r in result.fired] == ["c0"]
