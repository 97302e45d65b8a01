"""Adoption of newly unlocked features after an upgrade, worked by hand: Team -> Business unlocks SSO; its usage
in the 30 days after the settled change against the 30 days before; another tenant's usage never counts. An
add-on bought unlocks what it enables too; one the account already held unlocks nothing."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from accounts.tenancy import tenant_context
from billing.models import PlanChange, PlanChangeKind, PlanChangeState
from catalog.models import AddOn, Aggregation, Entitlement, Feature, FeatureKind, Meter, Price
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


def test_an_add_on_bought_unlocks_its_features_and_one_already_held_does_not(world_a):
    now = timezone.now()
    settled = now - 10 * DAY
    meter = sso_world(world_a, settled_at=settled)
    PlanChange.objects.filter(tenant=world_a.tenant).delete()  # not the tier upgrade: an add-on on Team
    license = world_a.account.license
    addon = AddOn.objects.get(tenant=world_a.tenant, key="sso")
    Entitlement.objects.create(tenant=world_a.tenant, addon=addon, feature=meter.feature, enabled=True)
    team = Price.objects.get(tenant=world_a.tenant, key="team-month")
    addon_price = Price.objects.get(tenant=world_a.tenant, key="sso-month")
    bought = PlanChange.objects.create(
        tenant=world_a.tenant, license=license, account=world_a.account, kind=PlanChangeKind.UPGRADE,
        state=PlanChangeState.SETTLED, from_price=team, target_price=team, target_seats=3, quote_amount_due=1,
        quote_expires_at=settled, settled_at=settled,
    )  # fmt: skip
    bought.target_addon_prices.set([addon_price])
    UsageRollup.objects.create(tenant=world_a.tenant, account=world_a.account, meter=meter,
                               day=(settled + 2 * DAY).date(), value=7)  # fmt: skip
    with tenant_context(world_a.tenant):
        rows = feature_adoption(world_a.tenant, now=now)
    assert rows == [
        {"feature": "sso", "upgrades": 1, "adopted": 1, "used_before": 0, "usage_before": 0, "usage_after": 7}
    ]
    bought.from_addons.set([addon])  # it was held before: a renewal of the same add-on unlocks nothing
    with tenant_context(world_a.tenant):
        assert feature_adoption(world_a.tenant, now=now) == []
