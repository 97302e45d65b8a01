"""recommend() over a real catalog and real rollups: the lowest option that fits, never a blind next tier,
bundles by segment, grandfathered holdings, named targets, the anchor, tenant walls, constant queries."""

from __future__ import annotations

import datetime

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from catalog.models import Bundle, Entitlement, GovernanceState, Price, Tier
from upgrades.offers.errors import InvalidInput, NotFound
from upgrades.offers.recommendation import load_catalog, recommend
from upgrades.offers.recommendation.projection import RUN_RATE, TREND

from .engine_world import engine_world, sso_gate_fact

pytestmark = pytest.mark.django_db


@pytest.fixture
def ew(world_a):
    return engine_world(world_a)


def test_growing_api_use_past_team_is_offered_the_tier_that_covers_the_projection(ew):
    account = ew.account("grower")
    lic = ew.licence(account)
    ew.growing(account, start=1_000, step=200)  # 1,000 .. 2,400 calls a day: ~80k next month, Team has 50k
    rec = recommend(ew.tenant, account=account, license=lic)
    assert (rec.target_kind, rec.target_key) == ("tier", "business")
    meter = rec.evidence["meters"][0]
    assert meter["meter"] == "api_calls" and meter["limit"] == 50_000 and meter["projected"] > 50_000
    assert rec.evidence["model"]["name"] == TREND
    assert rec.evidence["model"]["inputs"]["per_meter"]["api_calls"]["weeks_used"] == 8
    assert "50k API calls" in rec.evidence["sentence"] and "next month" in rec.evidence["sentence"]
    assert rec.candidate.changes["limits"][0] == {"feature": "api_calls", "from": 50_000, "to": None}
    assert rec.anchor is None  # Business is the top of the ladder


def test_a_locked_feature_gets_the_cheap_add_on_not_the_next_tier(ew):
    account = ew.account("sso-wanter")
    lic = ew.licence(account)
    ew.growing(account, start=100, step=0)
    signal = ew.signal(account, facts=[sso_gate_fact()])
    rec = recommend(ew.tenant, account=account, license=lic, signal=signal)
    # Team + SSO pack = 3 x (29 + 10) = 117 a month; Business = 3 x 79 = 237.
    assert (rec.target_kind, rec.target_key) == ("addon", "sso-pack")
    assert rec.candidate.monthly_amount == 11_700
    assert rec.candidate.changes == {"gained": ["sso"], "lost": [], "limits": []}
    assert rec.anchor is not None and rec.anchor.key == "business"
    assert rec.evidence["locked_features"] == ["sso"]
    assert "Single sign-on" in rec.evidence["sentence"]
    assert rec.evidence["signal"] == signal.pk
    assert rec.holding["price"]["amount"] == 2_900 and rec.holding["seats"] == 3


def test_a_healthcare_account_gets_the_clinic_bundle_at_the_same_price(ew):
    account = ew.account("clinic", industry="healthcare")
    lic = ew.licence(account)
    signal = ew.signal(account, facts=[sso_gate_fact()])
    rec = recommend(ew.tenant, account=account, license=lic, signal=signal)
    assert (rec.target_kind, rec.target_key) == ("bundle", "clinics")
    assert rec.candidate.monthly_amount == 11_700
    assert rec.candidate.audience == ("industry", "healthcare")
    assert any(c.key == "sso-pack" for c in rec.alternatives)  # the same price, plain: the segment decided


def test_a_bundle_on_a_retired_tier_is_never_offered(ew):
    account = ew.account("clinic2", industry="healthcare")
    lic = ew.licence(account)
    old_tier = Tier.objects.create(tenant=ew.tenant, product=ew.ladder.product, key="legacy", name="Legacy", rank=25,
                                   state=GovernanceState.RETIRED)  # fmt: skip
    Price.objects.create(tenant=ew.tenant, tier=old_tier, key="legacy-month", interval="month", amount=100,
                         state=GovernanceState.RETIRED)  # fmt: skip
    Entitlement.objects.create(tenant=ew.tenant, tier=old_tier, feature=ew.ladder.sso, enabled=True)
    Bundle.objects.create(tenant=ew.tenant, key="cheap-clinics", name="Cheap clinics", tier=old_tier,
                          audience_kind="industry", audience="healthcare", state=GovernanceState.PUBLISHED)  # fmt: skip
    rec = recommend(ew.tenant, account=account, license=lic, signal=ew.signal(account, facts=[sso_gate_fact()]))
    assert rec.target_key == "clinics"
    assert "cheap-clinics" not in {c.key for c in [rec.candidate, *rec.alternatives]}


def test_a_grandfathered_account_keeps_its_price_and_is_told_exactly_what_changes(ew):
    team = ew.ladder.team
    cheap = Price.objects.create(tenant=ew.tenant, tier=team, key="team-month-2019", interval="month", amount=1_900,
                                 state=GovernanceState.RETIRED, version=1)  # fmt: skip
    account = ew.account("old-timer")
    lic = ew.licence(account, price=cheap)
    rec = recommend(ew.tenant, account=account, license=lic, signal=ew.signal(account, facts=[sso_gate_fact()]))
    assert rec.holding["grandfathered"] is True
    assert rec.holding["price"] == {**rec.holding["price"], "amount": 1_900, "state": "retired"}
    # The add-on goes on the plan it holds, at the price it holds: 3 x (19 + 10).
    assert (rec.target_key, rec.candidate.monthly_amount) == ("sso-pack", 8_700)
    assert rec.candidate.tier_price.pk == cheap.pk


def test_a_retired_tier_version_moves_only_to_something_that_takes_nothing_away(ew):
    ladder = ew.ladder
    v1 = ladder.team
    account = ew.account("v1-holder")
    lic = ew.licence(account)
    Tier.objects.filter(pk=v1.pk).update(state=GovernanceState.RETIRED)
    Price.objects.filter(tier=v1).update(state=GovernanceState.RETIRED)
    # Team v2: dearer and with fewer calls (40k): "more for less", never offered to a v1 holder.
    v2 = Tier.objects.create(tenant=ew.tenant, product=ladder.product, key="team", version=2, name="Team", rank=20,
                             state=GovernanceState.PUBLISHED)  # fmt: skip
    Price.objects.create(tenant=ew.tenant, tier=v2, key="team-month", version=2, interval="month", amount=3_500,
                         state=GovernanceState.PUBLISHED)  # fmt: skip
    for feature, limit in ((ladder.api_calls, 40_000), (ladder.seats, 25)):
        Entitlement.objects.create(tenant=ew.tenant, tier=v2, feature=feature, limit=limit)
    Entitlement.objects.create(tenant=ew.tenant, tier=v2, feature=ladder.sso, enabled=True)
    rec = recommend(ew.tenant, account=account, license=lic, signal=ew.signal(account, facts=[sso_gate_fact()]))
    assert rec.target_key == "business"
    assert rec.holding["tier_state"] == "retired" and rec.holding["grandfathered"] is True
    assert rec.candidate.changes == {
        "gained": ["sso"],
        "lost": [],
        "limits": [{"feature": "api_calls", "from": 50_000, "to": None}, {"feature": "seats", "from": 25, "to": None}],
    }
    with pytest.raises(InvalidInput) as refused:
        recommend(ew.tenant, account=account, license=lic, target_kind="tier", target_key="team")
    assert refused.value.code == "nothing_to_offer"


def test_a_named_target_is_offered_only_when_it_is_an_upgrade(ew):
    account = ew.account("named")
    lic = ew.licence(account)
    rec = recommend(ew.tenant, account=account, license=lic, target_kind="tier", target_key="business")
    assert rec.target_key == "business"
    with pytest.raises(InvalidInput):
        recommend(ew.tenant, account=account, license=lic, target_kind="tier", target_key="free")
    signal = ew.signal(account, target_kind="bundle", target_key="clinics")
    assert recommend(ew.tenant, account=account, license=lic, signal=signal).target_key == "clinics"


def test_a_new_account_is_projected_from_its_run_rate_and_the_evidence_says_so(ew):
    account = ew.account("newbie")
    lic = ew.licence(account)
    today = timezone.now().astimezone(datetime.UTC).date()
    ew.usage(account, {today - datetime.timedelta(days=i): 5_000 for i in range(3)})
    rec = recommend(ew.tenant, account=account, license=lic)
    assert rec.evidence["meters"][0]["model"] == RUN_RATE
    assert "only 3 days of history" in rec.evidence["sentence"]


def test_the_top_tier_has_nothing_to_offer(ew):
    account = ew.account("top")
    lic = ew.licence(account, ew.ladder.business)
    with pytest.raises(InvalidInput) as refused:
        recommend(ew.tenant, account=account, license=lic)
    assert refused.value.code == "nothing_to_offer"


def test_another_tenants_licence_or_signal_is_not_found(ew, world_b):
    other = engine_world(world_b)
    theirs = other.account("theirs")
    their_lic = other.licence(theirs)
    mine = ew.account("mine")
    with pytest.raises(NotFound):
        recommend(ew.tenant, account=mine, license=their_lic)
    with pytest.raises(NotFound):
        recommend(ew.tenant, account=mine, license=ew.licence(mine), signal=other.signal(theirs))


def test_queries_per_recommendation_do_not_grow_with_the_catalog(ew):
    account = ew.account("counted")
    lic = ew.licence(account)
    ew.growing(account, start=1_000, step=200)

    def count() -> tuple[int, int]:
        with CaptureQueriesContext(connection) as loading:
            catalog = load_catalog(ew.tenant)
        with CaptureQueriesContext(connection) as one:
            recommend(ew.tenant, account=account, license=lic, catalog=catalog)
        return len(loading), len(one)

    small = count()
    for i in range(15):
        tier = Tier.objects.create(tenant=ew.tenant, product=ew.ladder.product, key=f"extra{i}", name=f"X{i}",
                                   rank=100 + i, state=GovernanceState.PUBLISHED)  # fmt: skip
        Price.objects.create(tenant=ew.tenant, tier=tier, key=f"x{i}-month", interval="month", amount=9_000 + i,
                             state=GovernanceState.PUBLISHED)  # fmt: skip
        Entitlement.objects.create(tenant=ew.tenant, tier=tier, feature=ew.ladder.api_calls, limit=None)
    assert count() == small


def test_a_batchs_prefetched_reads_give_the_same_recommendation_as_reading_alone(ew):
    from upgrades.offers.recommendation import prefetch_accounts

    now = timezone.now()
    accounts = []
    for i, (industry, facts) in enumerate((("software", []), ("healthcare", [sso_gate_fact()]), ("retail", []))):
        account = ew.account(f"batch{i}", industry=industry)
        lic = ew.licence(account)
        ew.growing(account, start=200 + 600 * i, step=100 * i)
        accounts.append((account, lic, ew.signal(account, facts=facts)))
    catalog = load_catalog(ew.tenant)
    prefetched = prefetch_accounts(ew.tenant, account_ids=[a.pk for a, _, _ in accounts],
                                   meter_ids=[m.pk for m in catalog.meters.values()], now=now)  # fmt: skip
    for account, lic, signal in accounts:
        alone = recommend(ew.tenant, account=account, license=lic, signal=signal, now=now)
        with CaptureQueriesContext(connection) as batched_queries:
            batched = recommend(ew.tenant, account=account, license=lic, signal=signal, now=now, catalog=catalog,
                                prefetched=prefetched)  # fmt: skip
        assert (batched.target_kind, batched.target_key) == (alone.target_kind, alone.target_key)
        assert batched.evidence == alone.evidence and batched.holding == alone.holding
        assert len(batched_queries) == 0  # everything came from the batch's reads


def test_the_sentence_uses_the_signals_own_numbers_and_the_projection(ew):
    account = ew.account("sentence")
    lic = ew.licence(account)
    ew.growing(account, start=1_000, step=200)
    fact = {"kind": "meter_utilisation", "sentence": "API calls at 92% of the limit on 5 of the last 7 days",
            "numbers": {"meter": "api_calls", "limit": 50_000, "used": 46_000, "percent": 92, "threshold": 92,
                        "days_over": 5, "days": 7}}  # fmt: skip
    rec = recommend(ew.tenant, account=account, license=lic, signal=ew.signal(account, facts=[fact]))
    projected = rec.evidence["meters"][0]["projected"]
    from upgrades.offers.recommendation.evidence import short_number

    assert rec.evidence["sentence"] == (
        f"You used 92% of your 50k API calls on 5 of the last 7 days; at this pace you will need about "
        f"{short_number(projected)} next month."
    )
    assert short_number(140_000) == "140k" and short_number(1_500) == "1.5k" and short_number(2_500_000) == "2.5M"
