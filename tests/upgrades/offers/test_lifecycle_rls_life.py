"""The expiry sweep works as the production app role, under row-level security (PostgreSQL): it loops over
the tenants, each in its own tenant context, so no tenant's due offers are invisible to it. And the beat
entry names the registered task."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.conf import settings
from django.utils import timezone

from tests.tenancy.conftest import APP_PASSWORD, APP_ROLE, app_role, connect_as  # noqa: F401 - fixtures
from tests.upgrades.offers.factories_life import holding, make_offer
from upgrades.offers.models import Offer, OfferState
from upgrades.offers.services.expiry import expire_offers

S = OfferState


@pytest.mark.integration
def test_the_expiry_sweep_reaches_every_tenant_as_the_app_role(two_tenants, connect_as):  # noqa: F811
    for world in two_tenants:
        make_offer(holding(world.tenant, world.account), state=S.SENT, expires_in=timedelta(hours=1))
    later = timezone.now() + timedelta(hours=2)
    connect_as.switch(USER=APP_ROLE, PASSWORD=APP_PASSWORD)
    assert not Offer.objects.exists()  # no tenant set: nothing visible

    assert expire_offers(now=later) == 2
    assert expire_offers(now=later) == 0

    connect_as.restore()
    assert set(Offer.objects.values_list("tenant_id", "state")) == {(w.tenant.pk, S.EXPIRED) for w in two_tenants}


@pytest.mark.django_db
def test_beat_runs_the_registered_expiry_task_which_sweeps(world_a):
    from config.celery import app
    from upgrades.offers.tasks_lifecycle import expire_offers as task

    app.loader.import_default_modules()  # what a worker does at start: <app>.tasks of every app
    entry = settings.CELERY_BEAT_SCHEDULE["offers-expire"]
    assert entry["task"] in app.tasks and app.tasks[entry["task"]].name == task.name
    assert task.acks_late is True
    offer = make_offer(holding(world_a.tenant, world_a.account), state=S.VIEWED, expires_in=timedelta(seconds=-1))
    assert task.delay().get(timeout=10) == 1
    offer.refresh_from_db()
    assert offer.state == S.EXPIRED
