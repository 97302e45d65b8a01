"""The lookups a plan change is validated with: what a tier sells at now, and how many seats it allows."""

from __future__ import annotations

import pytest

from billing.selectors import latest_tier_price
from catalog.models import Entitlement, Feature, FeatureKind, GovernanceState, Price
from catalog.selectors import get_published_tier, tier_seat_limit
from tests.billing.factories import make_catalog

pytestmark = pytest.mark.django_db


def test_latest_tier_price_is_the_newest_published_version_in_the_interval_and_currency(two_tenants):
    a, b = two_tenants
    catalog = make_catalog(a.tenant)
    make_catalog(b.tenant)
    team = catalog.tiers["team"]
    v1 = catalog.prices["team-month"]
    v2 = Price.objects.create(
        tenant=a.tenant, tier=team, key="team-month", amount=v1.amount + 500, currency=v1.currency, interval="month",
        version=2,
        state=GovernanceState.PUBLISHED,
    )  # fmt: skip
    Price.objects.create(
        tenant=a.tenant, tier=team, key="team-month", amount=1, currency=v1.currency, interval="month", version=3,
        state=GovernanceState.DRAFT,
    )  # fmt: skip

    assert latest_tier_price(a.tenant, tier=team, interval="month", currency=v1.currency) == v2
    assert latest_tier_price(a.tenant, tier=team, interval="month", currency="EUR") is None
    # Another tenant's question about this tier finds nothing, not this tenant's price.
    assert latest_tier_price(b.tenant, tier=team, interval="month", currency=v1.currency) is None


def test_tier_seat_limit_reads_the_enabled_seats_entitlement(world_a):
    catalog = make_catalog(world_a.tenant)
    team, business = catalog.tiers["team"], catalog.tiers["business"]
    assert tier_seat_limit(team) is None  # no seats feature: not limited
    seats = Feature.objects.create(
        tenant=world_a.tenant, product=team.product, key="seats", name="Users", kind=FeatureKind.SEATS
    )
    Entitlement.objects.create(tenant=world_a.tenant, tier=team, feature=seats, limit=10)
    Entitlement.objects.create(tenant=world_a.tenant, tier=business, feature=seats, limit=None)

    assert tier_seat_limit(team) == 10
    assert tier_seat_limit(business) is None  # a seats entitlement without a limit: unlimited
    prefetched = get_published_tier(world_a.tenant, "team")  # entitlements prefetched with their features
    assert tier_seat_limit(prefetched) == 10
    Entitlement.objects.filter(tier=team).update(enabled=False)
    assert tier_seat_limit(team) is None
