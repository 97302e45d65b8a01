"""On real PostgreSQL: racing identical batches count once; events live in monthly partitions."""

from __future__ import annotations

import datetime
import threading

import pytest
from django.db import connection, connections
from django.utils import timezone

from tests.services import require_postgres
from usage.models import Event, UsageRollup
from usage.partitions import ensure_event_partitions, partition_name

from .factories import event, make_catalog

pytestmark = [pytest.mark.integration]


def _race(clients, payload=None, *, payloads=None) -> list[dict]:
    payloads = payloads or [payload] * len(clients)
    barrier = threading.Barrier(len(clients))
    answers: list[dict | Exception] = [None] * len(clients)  # type: ignore[list-item]

    def send(i: int) -> None:
        try:
            barrier.wait(timeout=10)
            response = clients[i].post("/api/v1/events", payloads[i], format="json")
            answers[i] = response.json()
        except Exception as exc:  # surfaced below with the thread's answer
            answers[i] = exc
        finally:
            connections.close_all()

    threads = [threading.Thread(target=send, args=(i,)) for i in range(len(clients))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    for answer in answers:
        assert isinstance(answer, dict), answer
    return answers  # type: ignore[return-value]


@pytest.mark.django_db(transaction=True)
def test_two_workers_sending_the_same_batch_at_once_count_it_once(world_a):
    require_postgres()
    catalog = make_catalog(world_a.tenant)
    clients = [world_a.api("ingest"), world_a.api("ingest")]
    total = 0
    for round_no in range(3):
        batch = [event(key=f"race-{round_no}-{i}") for i in range(400)]
        answers = _race(clients, {"events": batch})
        assert sum(a["accepted"] for a in answers) == 400
        assert sum(a["duplicates"] for a in answers) == 400
        total += 400
        assert Event.objects.for_tenant(world_a.tenant).count() == total
        rolled = sum(
            UsageRollup.objects.for_tenant(world_a.tenant)
            .filter(meter=catalog.api_meter)
            .values_list("value", flat=True)
        )
        assert rolled == total


@pytest.mark.django_db(transaction=True)
def test_the_same_events_racing_in_opposite_orders_neither_deadlock_nor_double_count(world_a):
    require_postgres()
    catalog = make_catalog(world_a.tenant)
    for round_no in range(3):
        forward = [
            event(key=f"o-{round_no}-{i}", at=timezone.now() - datetime.timedelta(days=i % 3)) for i in range(300)
        ]
        answers = _race(
            [world_a.api("ingest"), world_a.api("ingest")],
            payloads=[{"events": forward}, {"events": list(reversed(forward))}],
        )
        assert sum(a["accepted"] for a in answers) == 300
        assert sum(a["duplicates"] for a in answers) == 300
    rolled = sum(
        UsageRollup.objects.for_tenant(world_a.tenant).filter(meter=catalog.api_meter).values_list("value", flat=True)
    )
    assert rolled == 900


@pytest.mark.django_db
def test_events_are_stored_in_the_partition_of_their_month(world_a):
    require_postgres()
    make_catalog(world_a.tenant)
    now = timezone.now()
    last_month = (now.replace(day=1) - datetime.timedelta(days=1)).replace(hour=12)
    if (now - last_month).days > 30:
        last_month = now - datetime.timedelta(days=20)
    world_a.api("ingest").post("/api/v1/events", {"events": [event(at=now), event(at=last_month)]}, format="json")
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT tableoid::regclass::text, occurred_at FROM usage_event WHERE tenant_id = %s", [world_a.tenant.pk]
        )
        rows = cursor.fetchall()
    assert {name for name, _ in rows} == {partition_name(at.date().replace(day=1)) for _, at in rows}
    assert len(rows) == 2


@pytest.mark.django_db
def test_missing_monthly_partitions_are_created_once_and_idempotently():
    require_postgres()
    far = datetime.date(2040, 2, 1)
    assert ensure_event_partitions([far]) == [partition_name(far)]
    assert ensure_event_partitions([far]) == []
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT pg_get_expr(c.relpartbound, c.oid) FROM pg_class c WHERE relname = %s", [partition_name(far)]
        )
        bound = cursor.fetchone()[0]
    assert "2040-02-01" in bound and "2040-03-01" in bound


@pytest.mark.django_db
def test_the_idempotency_arbiter_is_a_unique_key_outside_the_partitioned_table():
    require_postgres()
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT relkind FROM pg_class WHERE relname IN ('usage_event', 'usage_ingestkey') ORDER BY relname"
        )
        kinds = [row[0] for row in cursor.fetchall()]
        cursor.execute(
            "SELECT indexdef FROM pg_indexes WHERE tablename = 'usage_ingestkey' AND indexdef LIKE '%UNIQUE%'"
        )
        unique = [row[0] for row in cursor.fetchall()]
    assert kinds == ["p", "r"]  # events partitioned; the key table an ordinary table
    assert any("(tenant_id, key)" in definition for definition in unique)


@pytest.mark.django_db(transaction=True)
def test_a_real_worker_rebuilds_a_new_meters_rollups_from_earlier_events(world_a, celery_worker_process):
    from catalog.models import Meter
    from tests.conftest import wait_for
    from usage import services

    make_catalog(world_a.tenant)
    services.ingest_events(world_a.tenant, events=[event(name="report.exported", key=f"r{i}") for i in range(4)])
    meter = Meter.objects.create(tenant=world_a.tenant, key="exports", name="Exports", event_name="report.exported")
    row = wait_for(lambda: UsageRollup.objects.for_tenant(world_a.tenant).filter(meter=meter).first())
    assert row.value == 4 and row.event_count == 4
