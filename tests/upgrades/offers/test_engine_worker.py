"""Through a REAL Celery worker on Redis and PostgreSQL: the build task run twice (as a redelivery
runs it), at once and again, makes one offer; the sweep makes the rest and nothing twice."""

from __future__ import annotations

import pytest

from tests.conftest import wait_for
from upgrades.offers.models import Offer, OfferState
from upgrades.rules.models import Signal, SignalState

from .conftest import make_live_settings
from .engine_world import engine_world

pytestmark = pytest.mark.integration


@pytest.mark.django_db(transaction=True)
def test_a_build_task_run_twice_makes_one_offer_and_the_sweep_never_doubles(world_a, celery_worker_process):
    from upgrades.offers import tasks

    ew = engine_world(world_a)
    make_live_settings(ew.tenant)
    accounts, signals = [], []
    for i in range(3):
        account = ew.account(f"worker-{i}")
        ew.licence(account)
        ew.growing(account, start=1_000, step=200)
        accounts.append(account)
        signals.append(ew.signal(account))

    first = tasks.build_offer.delay(ew.tenant.pk, accounts[0].pk, signals[0].pk)
    second = tasks.build_offer.delay(ew.tenant.pk, accounts[0].pk, signals[0].pk)  # the redelivered copy
    assert first.get(timeout=60) == second.get(timeout=60) is not None
    assert Offer.objects.filter(tenant=ew.tenant, account=accounts[0]).count() == 1
    assert Signal.objects.get(pk=signals[0].pk).state == SignalState.ACTED_ON

    tasks.sweep_offer_signals.delay()
    tasks.sweep_offer_signals.delay()  # beat firing again before the first batch ran
    wait_for(lambda: Offer.objects.filter(tenant=ew.tenant).count() == 3, timeout=60)
    wait_for(lambda: not Signal.objects.filter(tenant=ew.tenant, state=SignalState.OPEN).exists(), timeout=60)
    assert tasks.build_offer.delay(ew.tenant.pk, accounts[1].pk, signals[1].pk).get(timeout=60) is not None
    offers = Offer.objects.filter(tenant=ew.tenant)
    assert offers.count() == 3
    assert {o.account_id for o in offers} == {a.pk for a in accounts}
    assert all(o.state == OfferState.SENT and o.target_key == "business" for o in offers)


@pytest.mark.django_db(transaction=True)
def test_the_worker_refuses_another_tenants_ids(world_a, world_b, celery_worker_process):
    from upgrades.offers import tasks

    mine, theirs = engine_world(world_a), engine_world(world_b)
    make_live_settings(mine.tenant)
    make_live_settings(theirs.tenant)
    account = theirs.account("theirs")
    theirs.licence(account)
    theirs.growing(account, start=1_000, step=200)
    signal = theirs.signal(account)
    assert tasks.build_offer.delay(mine.tenant.pk, account.pk, signal.pk).get(timeout=60) is None
    assert tasks.build_offers_batch.delay(mine.tenant.pk, [signal.pk]).get(timeout=60) == 0
    assert not Offer.objects.exists()
    assert Signal.objects.get(pk=signal.pk).state == SignalState.OPEN
