"""Through a REAL Celery worker on Redis and PostgreSQL: the offer sweep assigns every triggered account of a
running experiment once; controls get no offer (the worker process registers the hook in its own ready())."""

from __future__ import annotations

import pytest

from tests.conftest import wait_for
from tests.upgrades.offers.conftest import make_live_settings
from tests.upgrades.offers.engine_world import engine_world
from upgrades.experiments.buckets import CONTROL
from upgrades.experiments.models import Experiment, ExperimentAssignment, ExperimentState
from upgrades.offers.models import Offer
from upgrades.rules.models import Signal, SignalState

pytestmark = pytest.mark.integration


@pytest.mark.django_db(transaction=True)
def test_the_sweep_on_a_worker_holds_controls_back(world_a, celery_worker_process):
    from upgrades.offers import tasks

    ew = engine_world(world_a)
    make_live_settings(ew.tenant)
    experiment = Experiment.objects.create(tenant=ew.tenant, name="w", state=ExperimentState.RUNNING,
                                           control_percent=50, variants=[{"key": "b", "weight": 1}])  # fmt: skip
    for i in range(6):
        account = ew.account(f"wx-{i}")
        ew.licence(account)
        ew.growing(account, start=1_000, step=200)
        ew.signal(account)
    tasks.sweep_offer_signals.delay()
    tasks.sweep_offer_signals.delay()  # beat firing again before the first batch ran
    wait_for(lambda: not Signal.objects.filter(tenant=ew.tenant, state=SignalState.OPEN).exists(), timeout=90)
    rows = list(ExperimentAssignment.objects.filter(experiment=experiment))
    assert len(rows) == 6
    controls = {r.account_id for r in rows if r.arm == CONTROL}
    offers = Offer.objects.filter(tenant=ew.tenant)
    assert {o.account_id for o in offers} == {r.account_id for r in rows} - controls
    assert all(o.variant == "b" for o in offers)
    assert all(r.withheld_offer for r in rows if r.arm == CONTROL)
