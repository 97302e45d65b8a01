"""Experiments at the moment the trigger fires: the offer engine assigns, variants get their arm, controls get
nothing on any channel (their would-be offer is recorded), and a rolled-out winner is every offer's default."""

from __future__ import annotations

import pytest

from messaging.models import Message
from tests.upgrades.offers.conftest import make_live_settings
from tests.upgrades.offers.engine_world import engine_world
from upgrades.experiments.buckets import CONTROL
from upgrades.experiments.models import Experiment, ExperimentAssignment, ExperimentState
from upgrades.experiments.services import roll_out_variant, stop_experiment
from upgrades.offers.errors import InvalidInput
from upgrades.offers.models import Offer
from upgrades.offers.services.building import build_offer, build_offers_for_signals
from upgrades.offers.services.messages import due_offer_messages, send_due_for_tenant
from upgrades.rules.models import Signal, SignalState

pytestmark = pytest.mark.django_db


@pytest.fixture
def ew(world_a):
    make_live_settings(world_a.tenant, discount_variants=[{"key": "none", "percent": "0"},
                                                          {"key": "launch10", "percent": "10"}])  # fmt: skip
    return engine_world(world_a)


def running(tenant, **fields) -> Experiment:
    fields.setdefault("variants", [{"key": "b", "weight": 1, "anchor": False, "discount_variant": "launch10"}])
    fields.setdefault("control_percent", 50)
    return Experiment.objects.create(tenant=tenant, name="Copy test", state=ExperimentState.RUNNING, **fields)


def _signals(ew, n, prefix="x"):
    out = []
    for i in range(n):
        account = ew.account(f"{prefix}{i}")
        ew.licence(account)
        ew.growing(account, start=1_000, step=200)
        out.append(ew.signal(account))
    return out


def test_a_batch_assigns_every_account_and_controls_get_no_offer_and_no_message(ew):
    experiment = running(ew.tenant, variants=[{"key": "b", "weight": 1, "anchor": False, "template_variant": "b"}])
    signals = _signals(ew, 12)
    offers = build_offers_for_signals(ew.tenant, signal_ids=[s.pk for s in signals])
    rows = {a.account_id: a for a in ExperimentAssignment.objects.for_tenant(ew.tenant).filter(experiment=experiment)}
    assert len(rows) == 12  # everyone assigned, controls included
    controls = [a for a in rows.values() if a.arm == CONTROL]
    treated = [a for a in rows.values() if a.arm == "b"]
    assert controls and treated and len(offers) == len(treated)
    for a in controls:
        assert not Offer.objects.for_tenant(ew.tenant).filter(account_id=a.account_id).exists()
        assert a.withheld_offer["options"] and a.withheld_offer["recommended_option"]
        signal = Signal.objects.get(pk=a.signal_id)
        assert (signal.state, signal.reference) == (SignalState.ACTED_ON, f"experiment:{experiment.pk}:control")
    for offer in offers:
        assert offer.variant == "b" and offer.anchor is None
    assert {o.state for o in offers} == {"sent"}
    sent_at = max(o.sent_at for o in offers)
    send_due_for_tenant(ew.tenant, now=sent_at)
    due = {d.account_id for d in due_offer_messages(ew.tenant, now=sent_at)}
    control_ids = {a.account_id for a in controls}
    assert due == {a.account_id for a in treated}  # the treated are messaged; the controls are not
    assert not Message.objects.for_tenant(ew.tenant).filter(account_id__in=control_ids).exists()
    due_items = due_offer_messages(ew.tenant, now=sent_at)
    assert {d.variant for d in due_items} == {"b"}  # emailed with the arm's template variant
    # a retry assigns nothing twice and sends nothing
    assert build_offers_for_signals(ew.tenant, signal_ids=[s.pk for s in signals]) == []
    assert ExperimentAssignment.objects.for_tenant(ew.tenant).count() == 12


def test_the_single_build_path_holds_a_control_back(ew):
    experiment = running(ew.tenant, control_percent=90)
    for signal in _signals(ew, 6):
        try:
            offer = build_offer(ew.tenant, account=signal.account, actor="t", signal=signal, automatic=True)
        except InvalidInput:
            a = ExperimentAssignment.objects.for_tenant(ew.tenant).get(experiment=experiment, account=signal.account)
            assert a.arm == CONTROL and a.withheld_offer
            assert not Offer.objects.for_tenant(ew.tenant).filter(account=signal.account).exists()
        else:
            assert offer.variant == "b"
    assert ExperimentAssignment.objects.for_tenant(ew.tenant).count() == 6


def test_a_rolled_out_winner_is_the_default_of_new_offers(ew):
    experiment = running(ew.tenant)
    stop_experiment(ew.tenant, experiment=experiment, actor="t")
    roll_out_variant(ew.tenant, experiment=experiment, variant_key="b", actor="t")
    offers = build_offers_for_signals(ew.tenant, signal_ids=[s.pk for s in _signals(ew, 3)])
    assert len(offers) == 3 and all(o.variant == "b" and o.anchor is None for o in offers)
    assert all(o.discount and o.discount.get("variant") == "launch10" for o in offers)  # priced with its discount
    assert not ExperimentAssignment.objects.for_tenant(ew.tenant).exists()


def test_another_tenants_experiment_never_assigns_here(ew, world_b):
    running(world_b.tenant, control_percent=90)
    offers = build_offers_for_signals(ew.tenant, signal_ids=[s.pk for s in _signals(ew, 3)])
    assert len(offers) == 3 and not ExperimentAssignment.objects.exists()
