"""Offer funnel, declines by reason and trial conversion counted by hand; another tenant's offers never count."""

from __future__ import annotations

import pytest

from accounts.tenancy import tenant_context
from tests.upgrades.offers.factories_life import holding, make_offer
from upgrades.analytics.funnel import declines_by_reason, offer_funnel, time_to_upgrade
from upgrades.offers.models import Feedback, OfferEvent

pytestmark = pytest.mark.django_db


def walk(offer, *states):
    previous = ""
    for state in states:
        OfferEvent.objects.create(
            tenant=offer.tenant, offer=offer, from_state=previous, to_state=state, actor_label="t"
        )
        previous = state


def test_funnel_and_declines_by_hand(world_a, world_b):
    held, held_b = holding(world_a.tenant, world_a.account), holding(world_b.tenant, world_b.account)
    first = make_offer(held, state="fulfilled")
    walk(first, "sent", "viewed", "accepted", "fulfilled")
    other = make_offer(held_b, state="sent")
    walk(other, "sent", "viewed")
    Feedback.objects.create(tenant=world_a.tenant, account=world_a.account, kind="decline", reason_code="not_now")
    Feedback.objects.create(tenant=world_b.tenant, account=world_b.account, kind="decline", reason_code="not_now")
    with tenant_context(world_a.tenant):
        funnel = {row["step"]: row["offers"] for row in offer_funnel(world_a.tenant)}
        declines = {row["reason"]: row["declines"] for row in declines_by_reason(world_a.tenant)}
        assert time_to_upgrade(world_a.tenant) == {"upgrades": 0, "median_days": None, "p75_days": None}
    assert funnel == {"built": 1, "sent": 1, "viewed": 1, "accepted": 1, "fulfilled": 1}
    assert declines["Not now"] == 1 and sum(declines.values()) == 1
