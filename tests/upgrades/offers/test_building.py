"""build_offer / build_offers_for_signals: one arbitrated write per account and target, settings honoured,
the signal marked acted on, the build audited, other tenants' ids refused."""

from __future__ import annotations

import datetime

import pytest
from django.utils import timezone

from accounts.models import AuditEntry
from upgrades.offers import tasks
from upgrades.offers.errors import Conflict, InvalidInput, NotFound
from upgrades.offers.models import Offer, OfferEvent, OfferSettings, OfferState, SettingsState
from upgrades.offers.services.building import (
    build_offer,
    build_offers_for_signals,
    pending_signal_ids,
    signals_to_sweep,
)
from upgrades.rules.models import Signal, SignalKind, SignalState

from .conftest import make_live_settings
from .engine_world import engine_world

pytestmark = pytest.mark.django_db


@pytest.fixture
def ew(world_a):
    return engine_world(world_a)


@pytest.fixture
def grower(ew):
    account = ew.account("grower")
    ew.licence(account)
    ew.growing(account, start=1_000, step=200)
    return account


def test_an_offer_is_built_from_a_signal_released_and_the_signal_is_acted_on(ew, grower):
    settings = make_live_settings(ew.tenant, expiry_days=10)
    signal = ew.signal(grower)
    now = timezone.now()
    offer = build_offer(ew.tenant, account=grower, actor="test", signal=signal, now=now)
    assert (offer.target_kind, offer.target_key, offer.state) == ("tier", "business", OfferState.SENT)
    assert offer.expires_at == now + datetime.timedelta(days=10)
    assert offer.settings_version == settings and offer.signal == signal
    assert offer.evidence["meters"][0]["projected"] > 50_000 and offer.evidence["sentence"]
    assert offer.holding["tier"] == "team" and offer.options and offer.recommended_option
    acted = Signal.objects.get(pk=signal.pk)
    assert (acted.state, acted.reference) == (SignalState.ACTED_ON, f"offer:{offer.pk}")
    assert list(OfferEvent.objects.filter(offer=offer).values_list("to_state", flat=True)) == ["draft", "sent"]
    assert AuditEntry.objects.filter(action="offer.built", object_id=str(offer.pk)).exists()


def test_building_twice_returns_the_same_offer(ew, grower):
    make_live_settings(ew.tenant)
    signal = ew.signal(grower)
    first = build_offer(ew.tenant, account=grower, actor="test", signal=signal)
    again = build_offer(ew.tenant, account=grower, actor="test", signal=Signal.objects.get(pk=signal.pk))
    on_demand = build_offer(ew.tenant, account=grower, actor="csm")  # same target, no signal
    assert first.pk == again.pk == on_demand.pk
    assert Offer.objects.for_tenant(ew.tenant).count() == 1


def test_two_signals_for_the_same_target_make_one_offer(ew, grower):
    make_live_settings(ew.tenant)
    one, two = ew.signal(grower), ew.signal(grower, rule=ew.rule("other"))
    offers = build_offers_for_signals(ew.tenant, signal_ids=[one.pk, two.pk])
    assert len({o.pk for o in offers}) == 1 and Offer.objects.for_tenant(ew.tenant).count() == 1


def test_a_draft_is_refreshed_when_rebuilt_but_a_sent_offer_is_left_alone(ew, grower):
    make_live_settings(ew.tenant)
    draft = build_offer(ew.tenant, account=grower, actor="test", release=False)
    assert draft.state == OfferState.DRAFT
    later = timezone.now() + datetime.timedelta(hours=1)
    again = build_offer(ew.tenant, account=grower, actor="test", release=False, now=later)
    assert again.pk == draft.pk and again.quoted_at == later
    sent = build_offer(ew.tenant, account=grower, actor="test", now=later)
    assert sent.state == OfferState.SENT
    untouched = build_offer(ew.tenant, account=grower, actor="test", now=later + datetime.timedelta(hours=1))
    assert untouched.pk == draft.pk and untouched.quoted_at == later


def test_review_is_required_by_the_signal_or_by_the_settings(ew, grower):
    make_live_settings(ew.tenant)
    offer = build_offer(ew.tenant, account=grower, actor="test", signal=ew.signal(grower, requires_csm_review=True))
    assert offer.requires_review and offer.state == OfferState.AWAITING_REVIEW
    other = ew.account("other")
    ew.licence(other)
    OfferSettings.objects.for_tenant(ew.tenant).update(state=SettingsState.RETIRED)
    make_live_settings(ew.tenant, requires_csm_review=True)
    assert build_offer(ew.tenant, account=other, actor="test").state == OfferState.AWAITING_REVIEW


def test_no_live_settings_no_offer(ew, grower):
    with pytest.raises(InvalidInput) as refused:
        build_offer(ew.tenant, account=grower, actor="test", signal=ew.signal(grower))
    assert refused.value.code == "no_live_settings"
    assert not Offer.objects.for_tenant(ew.tenant).exists()
    assert pending_signal_ids(ew.tenant) == []


def test_only_the_allowed_signal_kinds_make_offers_automatically(ew, grower):
    make_live_settings(ew.tenant, signal_kinds=["upgrade_opportunity"])
    churn = ew.signal(grower, rule=ew.rule("churn", kind=SignalKind.CHURN_RISK))
    assert pending_signal_ids(ew.tenant) == []
    assert build_offers_for_signals(ew.tenant, signal_ids=[churn.pk]) == []
    with pytest.raises(InvalidInput):
        build_offer(ew.tenant, account=grower, actor="engine", signal=churn, automatic=True)
    assert Signal.objects.get(pk=churn.pk).state == SignalState.OPEN


def test_a_dismissed_signal_makes_no_offer(ew, grower):
    make_live_settings(ew.tenant)
    signal = ew.signal(grower, state=SignalState.DISMISSED)
    with pytest.raises(Conflict):
        build_offer(ew.tenant, account=grower, actor="test", signal=signal)


def test_another_tenants_accounts_and_signals_are_refused(ew, grower, world_b):
    make_live_settings(ew.tenant)
    other = engine_world(world_b)
    make_live_settings(other.tenant)
    theirs = other.account("theirs")
    other.licence(theirs)
    their_signal = other.signal(theirs)
    with pytest.raises(NotFound):
        build_offer(ew.tenant, account=theirs, actor="test")
    with pytest.raises(NotFound):
        build_offer(ew.tenant, account=grower, actor="test", signal=their_signal)
    assert build_offers_for_signals(ew.tenant, signal_ids=[their_signal.pk]) == []
    assert tasks.build_offer(ew.tenant.pk, theirs.pk, their_signal.pk) is None
    assert tasks.build_offer(ew.tenant.pk, grower.pk, their_signal.pk) is None
    assert not Offer.objects.exists()
    assert Signal.objects.get(pk=their_signal.pk).state == SignalState.OPEN


def test_the_sweep_enqueues_open_signals_in_batches_after_commit(ew, grower, django_capture_on_commit_callbacks):
    make_live_settings(ew.tenant)
    signals = [ew.signal(grower)]
    for i in range(3):
        account = ew.account(f"more{i}")
        ew.licence(account)
        ew.growing(account, start=1_000, step=200)
        signals.append(ew.signal(account))
    assert pending_signal_ids(ew.tenant) == [s.pk for s in signals]
    assert signals_to_sweep(ew.tenant) == [s.pk for s in signals]
    assert signals_to_sweep(ew.tenant) == []  # sent once: the next minute's sweep doesn't queue them again
    late = ew.account("late")
    ew.licence(late)
    late_signal = ew.signal(late)
    assert signals_to_sweep(ew.tenant) == [late_signal.pk]
    assert signals_to_sweep(ew.tenant, remember_s=0) == []
    signals.append(late_signal)
    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        assert tasks.enqueue_batches(ew.tenant.pk, pending_signal_ids(ew.tenant), batch_size=3) == 2
    assert len(callbacks) == 2  # eager tasks ran on commit
    assert Offer.objects.for_tenant(ew.tenant).count() == 5
    assert pending_signal_ids(ew.tenant) == []
    with django_capture_on_commit_callbacks(execute=True):
        assert tasks.sweep_offer_signals() == 0
    assert Offer.objects.for_tenant(ew.tenant).count() == 5
