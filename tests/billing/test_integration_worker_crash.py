"""Fault: a prefork worker child is killed (SIGKILL) while the plan change's Stripe call has been made but not
answered. The broker redelivers the task, the rerun sends the same idempotency key, Stripe replays its first
answer, and the change settles with exactly one charge.

PostgreSQL, Redis, a real prefork Celery worker (-c 1) and the Stripe stand-in; nothing mocked.
"""

from __future__ import annotations

import os
import signal
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

from billing.models import PlanChange, PlanChangeState
from billing.services import plan_changes
from tests.billing.helpers import billed_license
from tests.conftest import _database_url, wait_for
from tests.services import celery_worker, require_postgres, require_redis

ROOT = Path(__file__).resolve().parents[2]
pytestmark = [pytest.mark.integration, pytest.mark.django_db(transaction=True)]


def _children(pid: int) -> list[int]:
    found = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                stat = Path(f"/proc/{entry}/stat").read_text()
            except OSError:
                continue
            if int(stat.rsplit(")", 1)[1].split()[1]) == pid:
                found.append(int(entry))
    return found


@pytest.fixture
def prefork_worker(standin, settings) -> Iterator[subprocess.Popen]:
    """`celery worker -P prefork -c 1`: one pool child doing the work, its parent left to notice its death."""
    require_postgres()
    require_redis()
    from config.celery import app

    settings.CELERY_TASK_ALWAYS_EAGER = False
    app.conf.task_always_eager = False
    env = {
        **os.environ,
        "DATABASE_URL": _database_url(),
        "REDIS_URL": settings.REDIS_URL,
        "DJANGO_SETTINGS_MODULE": "config.settings_test",
        "CELERY_TASK_ALWAYS_EAGER": "0",
        "STRIPE_API_BASE": standin.url,
    }
    app.control.purge()
    try:
        with celery_worker(env, log_name=f"test-prefork-worker-{os.getpid()}.log", pool="prefork") as (proc, _):
            yield proc
    finally:
        app.conf.task_always_eager = True


def test_a_worker_killed_after_stripe_acted_settles_the_change_once_after_redelivery(world_a, standin, prefork_worker):
    billed = billed_license(world_a.tenant, world_a.account, standin)
    customer = billed.license.stripe_customer_id
    paid_before = [c["amount"] for c in standin.charges(billed.api_key, customer) if c["status"] == "succeeded"]
    assert paid_before == [8_700]
    upgrade = plan_changes.quote_plan_change(
        world_a.tenant, license=billed.license, target_price=billed.catalog.prices["business-month"]
    )
    # Stripe applies the update (and charges its invoice) at once, but its answer takes 15 s to come back.
    path = f"/v1/subscriptions/{billed.license.stripe_subscription_id}"
    requests.post(
        f"{standin.url}/_standin/delays", data={"path": path, "seconds": 15, "count": 1}, timeout=5
    ).raise_for_status()

    plan_changes.confirm_plan_change(world_a.tenant, plan_change=upgrade, actor="customer")  # enqueued on commit

    def held() -> bool:
        delays = requests.get(f"{standin.url}/_standin/delays", timeout=5).json()["data"]
        return any(d["path"] == path and d["held"] for d in delays)

    wait_for(held, timeout=60)
    children = _children(prefork_worker.pid)
    assert len(children) == 1
    os.kill(children[0], signal.SIGKILL)  # mid-task: Stripe has charged, our row still says pending
    assert PlanChange.objects.get(pk=upgrade.pk).state == PlanChangeState.PENDING

    # The pool replaces its child, the broker hands the task back, and the rerun replays Stripe's answer.
    wait_for(lambda: PlanChange.objects.get(pk=upgrade.pk).state == PlanChangeState.SETTLED, timeout=90, interval=0.5)
    upgrade.refresh_from_db()
    assert upgrade.attempts == 2  # the task ran twice...
    charges = [c["amount"] for c in standin.charges(billed.api_key, customer) if c["status"] == "succeeded"]
    assert sorted(charges) == sorted([8_700, upgrade.quote_amount_due])  # ...and charged once
    updates = [i for i in standin.invoices(billed.api_key, customer) if i["billing_reason"] == "subscription_update"]
    assert len(updates) == 1 and upgrade.charged_amount == upgrade.quote_amount_due
    assert billed.refresh().tier.key == "business"
