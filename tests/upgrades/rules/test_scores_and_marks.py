"""Scores read tenant-wide (a sweep) and by chunks of ids (dirty accounts) agree; dirty marks survive
an evaluation that started before them."""

from __future__ import annotations

import datetime

from accounts.models import CustomerAccount
from tests.services import require_postgres
from tests.upgrades.rules.conftest import NOW, add_event, rollup
from upgrades.rules import services
from upgrades.rules.models import AccountScore, DirtyAccount
from upgrades.rules.services import scores

DAY = datetime.timedelta(days=1)


def _snapshot(tenant) -> dict:
    return {
        s.account_id: (s.readiness, s.health, s.churn_flags, s.factors, s.previous_readiness, s.week_started_at)
        for s in AccountScore.objects.for_tenant(tenant)
    }


def test_tenant_wide_and_chunked_scores_are_the_same_rows(world_a, cat_a, monkeypatch):
    other = CustomerAccount.objects.create(tenant=world_a.tenant, external_id="acct-2", name="Second")
    for account, base in ((world_a.account, 300), (other, 40)):
        for back in range(60):
            rollup(account, cat_a.api_meter, (NOW - back * DAY).date(), base + (back % 7) * 10)
    add_event(world_a.account, "feature_gate_hit", NOW - 2 * DAY, feature="sso")
    add_event(other, "support.ticket", NOW - DAY)
    add_event(other, "survey.answered", NOW - 3 * DAY, survey="nps", score=4)
    services.evaluate_rules(world_a.tenant, now=NOW, recompute_scores=False)  # limits refreshed
    scores.recompute_scores(world_a.tenant, now=NOW)  # every account, tenant-wide
    wide = _snapshot(world_a.tenant)
    AccountScore.objects.for_tenant(world_a.tenant).delete()
    monkeypatch.setattr(scores, "CHUNK", 1)  # one id per chunk: the IN-list path
    scores.recompute_scores(world_a.tenant, account_ids=[other.pk, world_a.account.pk], now=NOW)
    assert _snapshot(world_a.tenant) == wide
    assert set(wide) == {world_a.account.pk, other.pk}
    flags = wide[other.pk][2]
    assert "NPS 4" in flags
    gates = next(f for f in wide[world_a.account.pk][3]["readiness"] if f["factor"] == "gate_hits")
    assert gates["why"] == "1 feature-gate hits in 30 days"


def test_last_weeks_factors_are_kept_through_the_week_and_roll_over_after_it(world_a, cat_a):
    for back in range(30):
        rollup(world_a.account, cat_a.api_meter, (NOW - back * DAY).date(), 100)
    scores.recompute_scores(world_a.tenant, now=NOW)
    first = AccountScore.objects.get(account=world_a.account)
    scores.recompute_scores(world_a.tenant, now=NOW + 8 * DAY)  # a new week: the first values become last week's
    rolled = AccountScore.objects.get(account=world_a.account)
    assert rolled.previous_readiness == first.readiness and rolled.previous_at == NOW
    assert rolled.factors["previous"] == {"readiness": first.factors["readiness"], "health": first.factors["health"]}
    scores.recompute_scores(world_a.tenant, now=NOW + 9 * DAY)  # same week: last week's stay as they were
    again = AccountScore.objects.get(account=world_a.account)
    assert again.previous_readiness == first.readiness and again.factors["previous"] == rolled.factors["previous"]
    assert again.week_started_at == NOW + 8 * DAY


def test_a_mark_made_while_an_evaluation_runs_survives_it(world_a, cat_a):
    require_postgres()  # the mark's upsert that moves marked_at forward is PostgreSQL's
    services.mark_accounts_dirty(world_a.tenant.pk, [world_a.account.pk, world_a.account.pk], now=NOW)
    services.mark_accounts_dirty(world_a.tenant.pk, [world_a.account.pk], now=NOW - DAY)  # never moves back
    assert DirtyAccount.objects.for_tenant(world_a.tenant).get().marked_at == NOW
    later = NOW + datetime.timedelta(seconds=5)
    services.mark_accounts_dirty(world_a.tenant.pk, [world_a.account.pk], now=later)  # ingest during the run
    services.evaluate_dirty_accounts(world_a.tenant, now=NOW + datetime.timedelta(seconds=1))
    assert DirtyAccount.objects.for_tenant(world_a.tenant).get().marked_at == later
    services.evaluate_dirty_accounts(world_a.tenant, now=later)
    assert not DirtyAccount.objects.for_tenant(world_a.tenant).exists()
