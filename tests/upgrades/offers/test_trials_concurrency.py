"""Two starts of the same trial at once, on two PostgreSQL connections: one trial, one grant."""

from __future__ import annotations

import threading

import pytest
from django.db import connection

from accounts.models import Role
from accounts.tenancy import tenant_context
from billing.models import LicenseGrant
from tests.services import require_postgres
from tests.upgrades.offers.test_trials import make_trial_world
from upgrades.offers.errors import Conflict
from upgrades.offers.models import Trial
from upgrades.offers.services import trials

pytestmark = [pytest.mark.integration, pytest.mark.django_db(transaction=True)]


def _start(tw):
    with tenant_context(tw.tenant):
        return trials.start_trial(
            tw.tenant, account=tw.account, target_kind="tier", target_key="business", actor=tw.world.staff[Role.CSM]
        )


def _in_thread(target):
    results: list = []

    def run():
        try:
            results.append(target())
        except Exception as exc:  # noqa: BLE001 - the outcome is the assertion
            results.append(exc)
        finally:
            connection.close()

    thread = threading.Thread(target=run)
    thread.start()
    return thread, results


def test_concurrent_starts_make_one_trial_and_refuse_the_rest(world_a):
    require_postgres()
    tw = make_trial_world(world_a)
    n = 6
    barrier = threading.Barrier(n)

    def racer():
        barrier.wait(10)
        return _start(tw)

    threads = [_in_thread(racer) for _ in range(n)]
    outcomes = []
    for thread, results in threads:
        thread.join(60)
        outcomes += results
    made = [o for o in outcomes if isinstance(o, Trial)]
    refused = [o for o in outcomes if isinstance(o, Conflict)]
    assert len(made) == 1 and len(refused) == n - 1, outcomes
    assert {e.code for e in refused} == {"trial_already_used"}
    with tenant_context(tw.tenant):
        assert Trial.objects.for_tenant(tw.tenant).count() == 1
        assert LicenseGrant.objects.for_tenant(tw.tenant).count() == 1


def test_a_second_start_waits_for_the_first_to_commit_then_is_refused(world_a, monkeypatch):
    """The account row lock: the second start can't pass the window check while the first is in flight."""
    require_postgres()
    tw = make_trial_world(world_a)
    entered, release = threading.Event(), threading.Event()
    real = trials.unlocked_features
    calls = []

    def gated(*args, **kwargs):  # runs after the lock and the window check
        calls.append(1)
        if len(calls) == 1:
            entered.set()
            assert release.wait(20)
        return real(*args, **kwargs)

    monkeypatch.setattr(trials, "unlocked_features", gated)
    first, first_result = _in_thread(lambda: _start(tw))
    assert entered.wait(20)
    second, second_result = _in_thread(lambda: _start(tw))
    second.join(1.0)
    assert second.is_alive()  # blocked on the account's row lock
    release.set()
    first.join(30)
    second.join(30)
    assert isinstance(first_result[0], Trial)
    assert isinstance(second_result[0], Conflict) and second_result[0].code == "trial_already_used"
    assert len(calls) == 1
