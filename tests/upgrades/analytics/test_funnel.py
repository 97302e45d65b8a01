"""Offer funnel, declines by reason and trial conversion counted by hand; another tenant's offers never count."""

from __future__ import annotations

import pytest

from accounts.tenancy import tenant_context
from tests.upgrades.offers.factories_life import holding, make_offer
from upgrades.analytics.funnel import declines_by_reason, feedback_by_segment, offer_funnel, time_to_upgrade
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


def test_feedback_by_segment_next_to_the_packaging_it_answered(world_a, world_b):
    world_a.account.segment = "smb"
    world_a.account.save(update_fields=["segment"])
    held, held_b = holding(world_a.tenant, world_a.account), holding(world_b.tenant, world_b.account)
    offer = make_offer(held, state="declined")
    offer_b = make_offer(held_b, state="declined")
    tenant, account = world_a.tenant, world_a.account
    for reason in ("too_expensive", "too_expensive", "not_now"):
        Feedback.objects.create(tenant=tenant, account=account, offer=offer, kind="decline", reason_code=reason)
    Feedback.objects.create(
        tenant=tenant, account=account, offer=offer, kind="survey", satisfaction=2, perceived_value=3, friction=4
    )
    Feedback.objects.create(tenant=tenant, account=account, offer=offer, kind="survey", satisfaction=5)
    Feedback.objects.create(tenant=tenant, account=account, kind="decline", reason_code="other")  # on no offer
    Feedback.objects.create(tenant=tenant, account=account, kind="talk_to_person")  # neither: not counted
    Feedback.objects.create(
        tenant=world_b.tenant, account=world_b.account, offer=offer_b, kind="decline", reason_code="not_now"
    )
    with tenant_context(tenant):
        rows = feedback_by_segment(tenant)
    packaging = f"{offer.target_kind}: {offer.target_key}"
    assert rows == [
        {
            "segment": "Small business",
            "packaging": "none",
            "declines": 1,
            "surveys": 0,
            "reasons": "Other 1",
            "satisfaction": None,
            "perceived_value": None,
            "friction": None,
        },
        {
            "segment": "Small business",
            "packaging": packaging,
            "declines": 3,
            "surveys": 2,
            "reasons": "Too expensive 2; Not now 1",
            "satisfaction": 3.5,
            "perceived_value": 3.0,
            "friction": 4.0,
        },
    ]
