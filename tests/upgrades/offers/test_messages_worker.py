"""Through a real Celery worker on Redis: beat's sweeps end a due trial and send its lifecycle messages,
and running them twice (a redelivery, a second beat) sends nothing twice."""

from __future__ import annotations

import datetime

import pytest
from django.utils import timezone

from accounts.tenancy import tenant_context
from billing.models import LicenseGrant
from messaging.models import Message, MessageState
from tests.conftest import wait_for
from tests.upgrades.offers.test_messages import _trial, make_message_world, make_offer
from upgrades.offers.models import Trial, TrialState
from upgrades.offers.tasks_messages import send_lifecycle_messages, send_lifecycle_messages_for_tenant
from upgrades.offers.tasks_trials import end_due_trials

pytestmark = [pytest.mark.integration]


def test_the_sweeps_end_a_due_trial_and_send_each_message_once(world_a, celery_worker_process):
    mw = make_message_world(world_a)
    offer = make_offer(mw)
    trial = _trial(mw)
    # The trial's end has come (as if it started 14 days ago): the sunset is due.
    ended = timezone.now() - datetime.timedelta(hours=1)
    with tenant_context(mw.tenant):
        LicenseGrant.objects.for_tenant(mw.tenant).filter(pk=trial.grant_id).update(
            starts_at=ended - datetime.timedelta(days=14), ends_at=ended
        )
        Trial.objects.for_tenant(mw.tenant).filter(pk=trial.pk).update(
            starts_at=ended - datetime.timedelta(days=14), ends_at=ended
        )

    end_due_trials.delay()
    end_due_trials.delay()

    def trial_state():
        with tenant_context(mw.tenant):
            return Trial.objects.for_tenant(mw.tenant).get(pk=trial.pk).state

    assert wait_for(lambda: trial_state() == TrialState.ENDED, timeout=30)

    send_lifecycle_messages.delay()
    send_lifecycle_messages_for_tenant.delay(mw.tenant.pk)

    def delivered():
        with tenant_context(mw.tenant):
            rows = list(Message.objects.for_tenant(mw.tenant).values_list("cause", "state"))
        return rows if len(rows) == 2 and all(state == MessageState.SENT for _, state in rows) else None

    rows = wait_for(delivered, timeout=40)
    assert sorted(cause for cause, _ in rows) == [f"offer:{offer.pk}:sent", f"trial:{trial.pk}:ended"]
    # A third run after both finished: still one message per cause.
    send_lifecycle_messages_for_tenant.delay(mw.tenant.pk).get(timeout=30)
    with tenant_context(mw.tenant):
        assert Message.objects.for_tenant(mw.tenant).count() == 2
        grant = LicenseGrant.objects.for_tenant(mw.tenant).get(pk=trial.grant_id)
        assert grant.ended_at == ended
