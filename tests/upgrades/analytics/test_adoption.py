"""Adoption of newly unlocked features after an upgrade, worked by hand: Team -> Business unlocks SSO; its usage
in the 30 days after the settled change against the 30 days before; another tenant's usage never counts."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from accounts.tenancy import tenant_context
from billing.models import PlanChange, PlanChangeKind, PlanChangeState
from catalog.models import Aggregation, Entitlement, Feature, FeatureKind, Meter
from tests.upgrades.offers.factories_life import holding
from upgrades.analytics.adoption import feature_adoption
from usage.models import UsageRollup

pytestmark = pytest.mark.django_db
DAY = timedelta(days=1)


def sso_world(world, *, settled_at):
    held = holding(world.tenant, world.account)  # holds Team
    catalog = held.catalog
    sso = Feature.objects.create(
        tenant=world.tenant, product=catalog.product, key="sso", name="SSO", kind=FeatureKind.BOOLEAN
    )
    for tier, enabled in ((catalog.tiers["team"], False), (catalog.tiers["business"], True)):
        Entitlement.objects.create(tenant=world.tenant, tier=tier, feature=sso, enabled=enabled)
    meter = Meter.objects.create(
        tenant=world.tenant, feature=sso, key="sso_logins", name="SSO logins", event_name="sso_login",
        aggregation=Aggregation.COUNT,
    )  # fmt: skip
    PlanChange.objects.create(
        tenant=world.tenant, license=held.license, account=world.account, kind=PlanChangeKind.UPGRADE,
        state=PlanChangeState.SETTLED, from_price=catalog.prices["team-month"],
        target_price=catalog.prices["business-month"], target_seats=3, quote_amount_due=1,
        quote_expires_at=settled_at, settled_at=settled_at,
    )  # fmt: skip
    return meter


def test_adoption_of_sso_after_team_to_business(world_a, world_b):
    now = timezone.now()
    settled = now - 10 * DAY
    meter = sso_world(world_a, settled_at=settled)
    meter_b = sso_world(world_b, settled_at=settled)
    for day, value in ((settled - 3 * DAY, 0), (settled, 4), (settled + 2 * DAY, 6), (settled + 40 * DAY, 99)):
        UsageRollup.objects.create(tenant=world_a.tenant, account=world_a.account, meter=meter, day=day.date(),
                                   value=value)  # fmt: skip
    UsageRollup.objects.create(
        tenant=world_b.tenant, account=world_b.account, meter=meter_b, day=settled.date(), value=500
    )
    with tenant_context(world_a.tenant):
        rows = feature_adoption(world_a.tenant, now=now)
    # Only SSO is newly unlocked (API calls etc. were on Team already, if any); 4 + 6 in the 30 days after,
    # none before; the day 40 days later is outside the window; B's 500 never counts.
    assert rows == [
        {"feature": "sso", "upgrades": 1, "adopted": 1, "used_before": 0, "usage_before": 0, "usage_after": 10}
    ]
