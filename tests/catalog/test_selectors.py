"""Published reads: pricing table, effective entitlements, upgrade hints, default tier; no N+1."""

import pytest

from catalog import selectors, services
from catalog.errors import NotFound
from catalog.models import AddOn, Tier
from tests.catalog.factories import make_addon, make_tier, publish_through_governance

pytestmark = pytest.mark.django_db


def test_list_published_tiers_hides_drafts_hidden_and_retired_tiers(ladder):
    make_tier(ladder.tenant, ladder.pm, product=ladder.product, key="draft-one", rank=99)
    hidden = make_tier(
        ladder.tenant,
        ladder.pm,
        product=ladder.product,
        key="partner",
        rank=35,
        monthly=1,
        annual=12,
        is_public=False,
        grants={ladder.api_calls: None, ladder.seats: None, ladder.sso: True},
    )
    publish_through_governance(ladder.tenant, hidden, author=ladder.pm, approver=ladder.approver)
    services.retire(ladder.tenant, obj=ladder.free, actor=ladder.pm)
    assert [t.key for t in selectors.list_published_tiers(ladder.tenant)] == ["team", "business"]
    assert [t.key for t in selectors.list_published_tiers(ladder.tenant, include_hidden=True)] == [
        "team",
        "business",
        "partner",
    ]


def test_get_tier_for_tenant_refuses_another_tenants_id(ladder, ladder_b):
    assert selectors.get_tier_for_tenant(ladder.tenant, ladder.team.pk) == ladder.team
    with pytest.raises(NotFound):
        selectors.get_tier_for_tenant(ladder.tenant, ladder_b.team.pk)


def test_default_tier_is_the_published_free_tier(ladder):
    assert selectors.get_default_tier(ladder.tenant) == ladder.free


def test_entitlements_for_a_tier_plus_add_on_combine_generously(ladder):
    pack = make_addon(
        ladder.tenant,
        ladder.pm,
        product=ladder.product,
        key="calls-pack",
        monthly=500,
        grants={ladder.api_calls: 25_000},
        compatible=[ladder.team],
    )
    publish_through_governance(ladder.tenant, pack, author=ladder.pm, approver=ladder.approver)
    result = selectors.entitlements_for(ladder.tenant, tier=ladder.team, addons=[pack, ladder.addon])
    assert result["api_calls"].limit == 75_000 and result["api_calls"].sources == ("Team", "Calls-Pack")
    assert result["sso"].enabled and result["sso"].sources == ("SSO pack",)
    assert result["seats"].limit == 25
    alone = selectors.entitlements_for(ladder.tenant, tier=ladder.team)
    assert not alone["sso"].enabled and not alone["sso"].allows()


def test_entitlements_for_works_for_a_retired_version_a_licence_still_holds(ladder):
    services.retire(ladder.tenant, obj=ladder.team, actor=ladder.pm)
    assert selectors.entitlements_for(ladder.tenant, tier=ladder.team)["api_calls"].limit == 50_000


def test_entitlements_for_refuses_another_tenants_tier(ladder, ladder_b):
    with pytest.raises(NotFound):
        selectors.entitlements_for(ladder.tenant, tier=ladder_b.team)


def test_lowest_tier_allowing_suggests_the_smallest_step_that_fits(ladder):
    assert selectors.lowest_tier_allowing(ladder.tenant, "api_calls", 800) == ladder.free
    assert selectors.lowest_tier_allowing(ladder.tenant, "api_calls", 20_000) == ladder.team
    assert selectors.lowest_tier_allowing(ladder.tenant, ladder.api_calls, 10**9) == ladder.business
    assert selectors.lowest_tier_allowing(ladder.tenant, "sso") == ladder.business
    # An account on Team needs SSO: the compatible add-on is a smaller step than Business.
    assert selectors.lowest_tier_allowing(ladder.tenant, "sso", current_tier=ladder.team) == ladder.addon
    # On Free the add-on isn't offered, so the hint is the lowest tier above Free that has SSO.
    assert selectors.lowest_tier_allowing(ladder.tenant, "sso", current_tier=ladder.free) == ladder.business
    assert selectors.lowest_tier_allowing(ladder.tenant, "no-such-feature") is None


def test_lowest_tier_allowing_ignores_hidden_and_unpublished_tiers(ladder):
    make_tier(
        ladder.tenant, ladder.pm, product=ladder.product, key="cheap-sso", rank=15, monthly=1, grants={ladder.sso: True}
    )
    assert selectors.lowest_tier_allowing(ladder.tenant, "sso") == ladder.business


def test_pricing_table_computes_savings_and_marks_one_anchor(ladder):
    (table,) = selectors.build_pricing_tables(ladder.tenant)
    cards = {c.tier.key: c for c in table.tiers}
    assert list(cards) == ["free", "team", "business"]
    assert cards["team"].prices.saving.amount == 5_800
    assert str(cards["team"].prices.saving.percent) == "16.67"
    assert cards["team"].prices.effective_monthly == 2_417
    assert [c.tier.key for c in table.tiers if c.is_anchor] == ["business"]
    assert [a.key for a in cards["team"].addons] == ["sso-pack"]
    assert cards["free"].prices.is_free


def test_pricing_table_with_pending_shows_the_newest_open_version(ladder):
    v2 = services.revise(ladder.tenant, obj=ladder.team, actor=ladder.pm).obj
    services.update_draft(ladder.tenant, obj=v2, actor=ladder.pm, name="Team+")
    (published,) = selectors.build_pricing_tables(ladder.tenant)
    (pending,) = selectors.build_pricing_tables(ladder.tenant, include_pending=True)
    assert [c.tier.name for c in published.tiers] == ["Free", "Team", "Business"]
    assert [c.tier.name for c in pending.tiers] == ["Free", "Team+", "Business"]


def test_add_on_compatibility_survives_a_new_tier_version(ladder):
    v2 = services.revise(ladder.tenant, obj=ladder.team, actor=ladder.pm).obj
    publish_through_governance(ladder.tenant, v2, author=ladder.pm, approver=ladder.approver)
    (table,) = selectors.build_pricing_tables(ladder.tenant)
    team = next(c for c in table.tiers if c.tier.key == "team")
    assert team.tier.version == 2
    assert [a.key for a in team.addons] == ["sso-pack"]


def test_pricing_table_reads_in_a_fixed_number_of_queries(ladder, django_assert_max_num_queries):
    for i in range(6):
        tier = make_tier(
            ladder.tenant,
            ladder.pm,
            product=ladder.product,
            key=f"extra-{i}",
            rank=100 + i,
            monthly=10_000 + i,
            annual=100_000,
            grants={ladder.api_calls: None, ladder.seats: None, ladder.sso: True},
        )
        publish_through_governance(ladder.tenant, tier, author=ladder.pm, approver=ladder.approver)
    with django_assert_max_num_queries(12):
        tables = selectors.build_pricing_tables(ladder.tenant)
        assert len(tables[0].tiers) == 9
        for card in tables[0].tiers:
            [row.included for row in card.features]
            [a.name for a in card.addons]
    with django_assert_max_num_queries(4):
        for tier in selectors.list_published_tiers(ladder.tenant):
            [(p.amount, e.feature.key) for p in tier.prices.all() for e in tier.entitlements.all()]


def test_discount_policy_selector_returns_the_published_one(ladder):
    from catalog.models import DiscountPolicy

    assert selectors.get_discount_policy(ladder.tenant) is None
    policy = services.create_draft(
        ladder.tenant,
        model=DiscountPolicy,
        actor=ladder.pm,
        key="std",
        name="Standard",
        term_rules=[{"years": 2, "percent": "10"}],
    )
    publish_through_governance(ladder.tenant, policy, author=ladder.pm, approver=ladder.approver)
    assert selectors.get_discount_policy(ladder.tenant) == policy
    assert AddOn.objects.count() == 1 and Tier.objects.count() == 3
