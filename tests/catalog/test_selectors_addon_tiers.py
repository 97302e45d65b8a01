"""An add-on that names no compatible tiers is sold with every tier: the pricing table, the catalog API,
upgrade hints and bundles say so alike (catalog.selectors.addon_sold_with)."""

from __future__ import annotations

import pytest

from catalog import selectors
from catalog.services import rules
from tests.catalog.factories import make_addon, publish_through_governance
from tests.catalog.test_api_tiers import api_for

pytestmark = pytest.mark.django_db


@pytest.fixture
def everywhere(ladder):
    """A published add-on that names no tiers: 5,000 more API calls."""
    addon = make_addon(
        ladder.tenant,
        ladder.pm,
        product=ladder.product,
        key="calls-pack",
        monthly=500,
        annual=5_000,
        name="Calls pack",
        grants={ladder.api_calls: 60_000},
    )
    return publish_through_governance(ladder.tenant, addon, author=ladder.pm, approver=ladder.approver)


def test_an_addon_naming_no_tiers_is_sold_with_every_tier_and_one_naming_tiers_only_with_those(ladder, everywhere):
    for tier in (ladder.free, ladder.team, ladder.business):
        assert selectors.addon_sold_with(everywhere, tier)
    assert selectors.addon_sold_with(ladder.addon, ladder.team)  # the SSO pack names Team
    assert not selectors.addon_sold_with(ladder.addon, ladder.business)


def test_the_pricing_table_offers_it_on_every_tier_card_and_names_every_tier(ladder, everywhere):
    (table,) = selectors.build_pricing_tables(ladder.tenant)
    for card in table.tiers:
        keys = [a.key for a in card.addons]
        assert "calls-pack" in keys
        assert ("sso-pack" in keys) == (card.tier.key == "team")
    card = next(c for c in table.addons if c.addon.key == "calls-pack")
    assert card.tier_keys == ["business", "free", "team"]
    assert card.tier_names == [ladder.free.name, ladder.team.name, ladder.business.name]


def test_the_catalog_api_lists_every_tier_key_for_it(ladder, everywhere):
    body = api_for(ladder).get("/api/v1/catalog/tiers").json()
    addon = next(a for a in body["addons"] if a["key"] == "calls-pack")
    assert sorted(addon["compatible_tiers"]) == ["business", "free", "team"]
    assert all("calls-pack" in tier["addons"] for tier in body["tiers"])


def test_an_upgrade_hint_may_suggest_it_on_top_of_any_tier(ladder, everywhere):
    # Team allows 50,000 calls; the calls pack on top allows 60,000 more: the smallest step is the add-on.
    assert selectors.lowest_tier_allowing(ladder.tenant, ladder.api_calls, 70_000, current_tier=ladder.team) == (
        everywhere
    )


def test_a_bundle_may_put_it_on_any_tier(ladder, everywhere):
    from catalog.models import Bundle

    bundle = Bundle(
        tenant=ladder.tenant, tier=ladder.business, key="b", name="B", scenarios=[{"title": "t", "story": "s"}]
    )
    bundle.save()
    bundle.addons.set([everywhere])
    assert rules._bundle_issues(bundle, for_publish=False) == []
    bundle.addons.set([ladder.addon])
    assert rules._bundle_issues(bundle, for_publish=False) == [
        "The add-on SSO pack is not offered with the Business tier."
    ]
