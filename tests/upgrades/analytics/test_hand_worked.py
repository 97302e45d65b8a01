"""Time to upgrade after a signal and trial conversion, worked by hand; another tenant's rows never count."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from accounts.tenancy import tenant_context
from billing.models import GrantKind, LicenseGrant
from tests.upgrades.offers.factories_life import holding, make_offer
from upgrades.analytics.funnel import time_to_upgrade, trial_conversion
from upgrades.offers.models import Trial
from upgrades.rules.models import Signal, TriggerRule

pytestmark = pytest.mark.django_db
DAY = timedelta(days=1)


def fired(world, key: str, at) -> Signal:
    rule, _ = TriggerRule.objects.get_or_create(
        tenant=world.tenant, key="hot", defaults={"name": "Hot", "condition": {}, "signal_kind": "upgrade_opportunity"}
    )
    return Signal.objects.create(
        tenant=world.tenant, account=world.account, rule=rule, kind="upgrade_opportunity", dedup_key=key, created_at=at
    )


def test_time_to_upgrade_by_hand(world_a, world_b):
    now = timezone.now()
    held, held_b = holding(world_a.tenant, world_a.account), holding(world_b.tenant, world_b.account)
    for n, days in enumerate((10, 2, 4)):  # days from the signal to the fulfilment: 2, 4, 10
        signal = fired(world_a, f"s{n}", now - 20 * DAY)
        make_offer(held, state="fulfilled", signal=signal, fulfilled_at=now - 20 * DAY + days * DAY)
    make_offer(held, state="fulfilled", fulfilled_at=now)  # not from a signal: left out
    make_offer(held, state="sent", signal=fired(world_a, "open", now - DAY))  # not fulfilled: left out
    make_offer(held_b, state="fulfilled", signal=fired(world_b, "b", now - 90 * DAY), fulfilled_at=now)  # B's
    with tenant_context(world_a.tenant):
        figures = time_to_upgrade(world_a.tenant)
    # Sorted 2, 4, 10: the median is the middle one; the 75th percentile rounds index 0.75 * 2 = 1.5 up to 10.
    assert figures == {"upgrades": 3, "median_days": 4.0, "p75_days": 10.0}


def trial(world, tier, state: str) -> Trial:
    now = timezone.now()
    grant = LicenseGrant.objects.create(
        tenant=world.tenant, account=world.account, kind=GrantKind.TRIAL, tier=tier, starts_at=now, ends_at=now + DAY
    )
    return Trial.objects.create(
        tenant=world.tenant, account=world.account, grant=grant, target_kind="tier", target_key=tier.key,
        state=state, started_by_label="t", ends_at=now + DAY,
    )  # fmt: skip


def test_trial_conversion_by_hand(world_a, world_b):
    tier = holding(world_a.tenant, world_a.account).catalog.tiers["business"]
    tier_b = holding(world_b.tenant, world_b.account).catalog.tiers["business"]
    for state in ("converted", "converted", "ended", "cancelled", "active"):
        trial(world_a, tier, state)
    trial(world_b, tier_b, "converted")
    with tenant_context(world_a.tenant):
        figures = trial_conversion(world_a.tenant)
    # 2 upgraded of 4 finished (2 upgraded + 1 ended + 1 ended early); the one in progress is left out.
    assert figures == {"in_progress": 1, "converted": 2, "finished": 4, "rate": 0.5}
