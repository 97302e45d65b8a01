"""A real Celery worker on Redis and PostgreSQL picks up the dirty-account sweep that ingest leads to."""

from __future__ import annotations

import pytest

from tests.conftest import wait_for
from tests.upgrades.rules.conftest import live_rule
from tests.usage.factories import event, give_license, make_catalog
from upgrades.rules.models import DirtyAccount, Signal

pytestmark = pytest.mark.integration


@pytest.mark.django_db(transaction=True)
def test_ingest_marks_the_account_dirty_and_a_real_worker_fires_the_signal(world_a, celery_worker_process):
    from upgrades.rules import tasks
    from usage import services as usage_services

    catalog = make_catalog(world_a.tenant)
    give_license(world_a.account, catalog.team)
    live_rule(world_a, key="logged-in", condition={"kind": "event_seen", "event": "login", "days": 1},
              kind="trial_candidate")  # fmt: skip
    usage_services.ingest_events(world_a.tenant, events=[event(name="login", key="l1")])
    assert DirtyAccount.objects.filter(tenant=world_a.tenant, account=world_a.account).exists()

    tasks.sweep_dirty_accounts.delay()  # what beat sends every 30 s
    signal = wait_for(lambda: Signal.objects.filter(tenant=world_a.tenant).first(), timeout=40)
    assert signal.kind == "trial_candidate" and signal.account_id == world_a.account.pk
    assert "login seen 1 time today" in signal.evidence["sentence"].lower()
    wait_for(lambda: not DirtyAccount.objects.filter(tenant=world_a.tenant).exists())
    # The same task again (as a redelivery would run it): it finds nothing new to fire.
    usage_services.ingest_events(world_a.tenant, events=[event(name="login", key="l2")])
    assert tasks.evaluate_dirty_accounts.delay(world_a.tenant.pk).get(timeout=30) == 0
    assert tasks.evaluate_dirty_accounts.delay(world_a.tenant.pk).get(timeout=30) == 0
    assert Signal.objects.filter(tenant=world_a.tenant).count() == 1
