"""build_offers_for_signals set-based: a fixed number of queries per batch (not per offer), the same offers,
events, audit entries and acted-on signals as one by one, the arbitrated write kept, and signals with
nothing to offer dismissed so the sweep stops queuing them."""

from __future__ import annotations

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from accounts.models import AuditEntry
from upgrades.offers.models import Offer, OfferEvent, OfferState
from upgrades.offers.services.building import (
    NOTHING_TO_OFFER_REASON,
    build_offer,
    build_offers_for_signals,
    pending_signal_ids,
)
from upgrades.offers.services.lifecycle import release_offers
from upgrades.rules.models import Signal, SignalState
from upgrades.rules.services import mark_signals_acted_on

from .conftest import make_live_settings
from .engine_world import engine_world

pytestmark = pytest.mark.django_db


@pytest.fixture
def ew(world_a):
    return engine_world(world_a)


def _growers(ew, n: int, prefix: str = "g"):
    signals = []
    for i in range(n):
        account = ew.account(f"{prefix}{i}")
        ew.licence(account)
        ew.growing(account, start=1_000, step=200)
        signals.append(ew.signal(account))
    return signals


def _queries(ew, signals) -> tuple[int, list[Offer]]:
    with CaptureQueriesContext(connection) as captured:
        offers = build_offers_for_signals(ew.tenant, signal_ids=[s.pk for s in signals])
    return len(captured), offers


def test_a_batch_is_written_released_and_acted_on_like_single_builds(ew):
    make_live_settings(ew.tenant)
    signals = _growers(ew, 3)
    offers = build_offers_for_signals(ew.tenant, signal_ids=[s.pk for s in signals])
    assert len({o.pk for o in offers}) == 3
    for signal, offer in zip(signals, offers, strict=True):
        row = Offer.objects.get(pk=offer.pk)
        assert (row.state, row.signal_id, row.account_id) == (OfferState.SENT, signal.pk, signal.account_id)
        assert row.sent_at is not None and row.options and row.quote and row.recommended_option
        assert list(OfferEvent.objects.filter(offer=row).order_by("id").values_list("to_state", flat=True)) == [
            "draft",
            "sent",
        ]
        acted = Signal.objects.get(pk=signal.pk)
        assert (acted.state, acted.reference) == (SignalState.ACTED_ON, f"offer:{row.pk}")
        for action in ("offer.built", "offer.sent"):
            assert AuditEntry.objects.filter(action=action, object_id=str(row.pk)).count() == 1
        assert AuditEntry.objects.filter(action="signal.acted_on", object_id=str(signal.pk)).count() == 1
    assert build_offers_for_signals(ew.tenant, signal_ids=[s.pk for s in signals]) == []  # a retry: all acted on
    assert Offer.objects.for_tenant(ew.tenant).count() == 3


def test_the_queries_of_a_batch_do_not_grow_with_its_size(ew):
    make_live_settings(ew.tenant)
    small, _ = _queries(ew, _growers(ew, 2, "s"))
    large, offers = _queries(ew, _growers(ew, 8, "l"))
    assert len(offers) == 8
    assert large == small, (small, large)


def test_an_open_offer_already_made_is_returned_not_doubled(ew):
    make_live_settings(ew.tenant)
    signals = _growers(ew, 2)
    earlier = build_offer(ew.tenant, account=signals[0].account, actor="csm")  # same target, on demand
    offers = build_offers_for_signals(ew.tenant, signal_ids=[s.pk for s in signals])
    assert offers[0].pk == earlier.pk and offers[1].pk != earlier.pk
    assert Offer.objects.for_tenant(ew.tenant).count() == 2
    assert OfferEvent.objects.filter(offer_id=earlier.pk, note="built").count() == 1
    # the signal whose target already had an open offer is answered by it, not left open to be queued again
    answered, made = (Signal.objects.get(pk=s.pk) for s in signals)
    assert (answered.state, answered.reference) == (SignalState.ACTED_ON, f"offer:{earlier.pk}")
    assert (made.state, made.reference) == (SignalState.ACTED_ON, f"offer:{offers[1].pk}")


def test_an_existing_draft_is_refreshed_and_released(ew):
    make_live_settings(ew.tenant)
    (signal,) = _growers(ew, 1)
    draft = build_offer(ew.tenant, account=signal.account, actor="csm", release=False)
    (offer,) = build_offers_for_signals(ew.tenant, signal_ids=[signal.pk])
    assert offer.pk == draft.pk and Offer.objects.get(pk=draft.pk).state == OfferState.SENT


def test_signals_with_nothing_to_offer_are_dismissed_and_not_queued_again(ew):
    make_live_settings(ew.tenant)
    top = ew.account("top")
    ew.licence(top, ew.ladder.business)
    top_signal = ew.signal(top)
    (grower,) = _growers(ew, 1)
    offers = build_offers_for_signals(ew.tenant, signal_ids=[top_signal.pk, grower.pk])
    assert [o.signal_id for o in offers] == [grower.pk]
    dismissed = Signal.objects.get(pk=top_signal.pk)
    assert (dismissed.state, dismissed.closed_reason) == (SignalState.DISMISSED, NOTHING_TO_OFFER_REASON)
    assert dismissed.closed_by == "offer engine"
    assert AuditEntry.objects.filter(action="signal.dismissed", object_id=str(top_signal.pk)).exists()
    assert top_signal.pk not in pending_signal_ids(ew.tenant)
    assert not Offer.objects.for_tenant(ew.tenant).filter(account=top).exists()


def test_release_offers_moves_only_drafts_and_respects_review(ew):
    make_live_settings(ew.tenant)
    signals = _growers(ew, 2)
    one = build_offer(ew.tenant, account=signals[0].account, actor="t", release=False)
    two = build_offer(ew.tenant, account=signals[1].account, actor="t", release=False)
    Offer.objects.filter(pk=two.pk).update(requires_review=True)
    moved = release_offers(ew.tenant, offers=[one, two], actor="t")
    assert [o.state for o in moved] == [OfferState.SENT, OfferState.AWAITING_REVIEW]
    again = release_offers(ew.tenant, offers=moved, actor="t")  # nothing in draft: nothing written
    assert [o.state for o in again] == [OfferState.SENT, OfferState.AWAITING_REVIEW]
    assert OfferEvent.objects.filter(offer_id__in=[one.pk, two.pk]).exclude(note="built").count() == 2


def test_mark_signals_acted_on_moves_only_open_signals(ew):
    (open_one,) = _growers(ew, 1)
    closed = ew.signal(ew.account("closed"), state=SignalState.DISMISSED)
    n = mark_signals_acted_on(ew.tenant, signal_ids_to_reference={open_one.pk: "offer:1", closed.pk: "offer:2"})
    assert n == 1
    assert Signal.objects.get(pk=open_one.pk).reference == "offer:1"
    assert Signal.objects.get(pk=closed.pk).state == SignalState.DISMISSED


def test_another_tenants_signals_are_not_touched_by_a_batch(ew, world_b):
    make_live_settings(ew.tenant)
    other = engine_world(world_b)
    make_live_settings(other.tenant)
    theirs = other.account("theirs")
    other.licence(theirs, other.ladder.business)  # nothing to offer there either
    their_signal = other.signal(theirs)
    assert build_offers_for_signals(ew.tenant, signal_ids=[their_signal.pk]) == []
    assert mark_signals_acted_on(ew.tenant, signal_ids_to_reference={their_signal.pk: "offer:1"}) == 0
    assert Signal.objects.get(pk=their_signal.pk).state == SignalState.OPEN


def test_an_account_without_a_licence_row_holds_the_free_tier_and_gets_an_offer(ew):
    make_live_settings(ew.tenant)
    bare = ew.account("bare")  # no licence row: on the tenant's default free tier
    ew.growing(bare, start=100, step=150)
    signal = ew.signal(bare)
    (offer,) = build_offers_for_signals(ew.tenant, signal_ids=[signal.pk])
    row = Offer.objects.get(pk=offer.pk)
    assert row.state == OfferState.SENT and row.target_kind == "tier" and row.target_key != "free"
    assert (row.holding["tier"], row.holding["price"], row.holding["license"]) == ("free", None, None)
    assert row.quote["kind"] == "new" and row.quote["amount_due_now"] > 0
    assert Signal.objects.get(pk=signal.pk).state == SignalState.ACTED_ON
    again = build_offer(ew.tenant, account=bare, actor="csm")  # one by one: the same free holding, same offer
    assert again.pk == row.pk
    # Accepting it is billing's first purchase: tests/upgrades/offers/test_accept_free_tier.py (Stripe, worker).
