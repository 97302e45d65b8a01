"""Trials and lifecycle messages as the production app role, under row-level security (PostgreSQL): a start
inside its tenant, and the beat sweeps reaching every tenant's due rows, each inside its own tenant context."""

from __future__ import annotations

import datetime

import pytest
from django.utils import timezone

from accounts.models import Role
from accounts.tenancy import tenant_context
from messaging.models import Message
from tests.tenancy.conftest import APP_PASSWORD, APP_ROLE, app_role, connect_as  # noqa: F401 - fixtures
from tests.upgrades.offers.test_messages import make_message_world
from upgrades.offers.models import Trial, TrialState, TrialWin
from upgrades.offers.services.messages import send_due_lifecycle_messages
from upgrades.offers.services.trials import end_due_trials, start_trial
from upgrades.offers.services.trials_wins import record_wins_for_active_trials
from usage.services import ingest_events

pytestmark = pytest.mark.integration


def test_starts_and_sweeps_work_for_every_tenant_as_the_app_role(two_tenants, connect_as):  # noqa: F811
    worlds = [make_message_world(world) for world in two_tenants]
    connect_as.switch(USER=APP_ROLE, PASSWORD=APP_PASSWORD)
    assert not Trial.objects.exists()  # no tenant set: nothing visible

    trials = []
    for mw in worlds:
        with tenant_context(mw.tenant):
            trials.append(
                start_trial(
                    mw.tenant,
                    account=mw.account,
                    target_kind="tier",
                    target_key="business",
                    actor=mw.world.staff[Role.CSM],
                )
            )
            ingest_events(
                mw.tenant,
                events=[
                    {
                        "event": "export_created",
                        "account": "acct-1",
                        "timestamp": timezone.now().isoformat(),
                        "idempotency_key": "e-1",
                        "properties": {"rows": 5},
                    }
                ],  # fmt: skip
                actor="test",
            )
    later = timezone.now() + datetime.timedelta(days=2)
    assert record_wins_for_active_trials(now=later) == 2
    assert send_due_lifecycle_messages(now=timezone.now()) == 2  # each tenant's trial-started
    assert end_due_trials(now=trials[0].ends_at + datetime.timedelta(minutes=1)) == 2

    connect_as.restore()
    assert set(Trial.objects.values_list("state", flat=True)) == {TrialState.ENDED}
    assert TrialWin.objects.count() == 2
    assert sorted(Message.objects.values_list("tenant_id", "template_key")) == sorted(
        (mw.tenant.pk, "trial-started") for mw in worlds
    )
