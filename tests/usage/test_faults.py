"""Faults ingest and checks must survive (issue 11 item 14): the cache's Redis dies, a PostgreSQL backend dies.

The cache runs on OUR OWN redis-server (port 6393, append-only file so a restart brings the old
tokens and entries back, as a real restart would); the shared Redis is never touched.
"""

from __future__ import annotations

import logging
import os
import shutil
import signal
import subprocess
import threading
import time
from collections.abc import Iterator

import psycopg2
import pytest
import redis
from django.db import connection, connections
from django.utils import timezone

from accounts.models import CustomerAccount
from tests.services import port_open, require_postgres, unavailable
from usage import cache, tasks
from usage.models import Event, IngestKey, PendingInvalidation, UsageRollup

from .factories import event, make_catalog

pytestmark = [pytest.mark.integration]
URL = "/api/v1/events"
CHECK = "/api/v1/entitlements/check"
PORT = 6393


class OwnRedis:
    """A redis-server we start, kill -9 and restart; its data survives in an fsync'd append-only file."""

    def __init__(self, directory: str) -> None:
        self.directory = directory
        self.proc: subprocess.Popen | None = None

    def start(self) -> None:
        binary = shutil.which("redis-server")
        if binary is None:
            unavailable("redis-server is not installed")
        if port_open("127.0.0.1", PORT):
            pytest.fail(f"port {PORT} is already taken: another redis of ours is still running?")
        self.proc = subprocess.Popen(
            [
                binary,
                "--port",
                str(PORT),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "yes",
                "--appendfsync",
                "always",
                "--dir",
                self.directory,
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        client = redis.Redis(host="127.0.0.1", port=PORT, socket_connect_timeout=1)
        deadline = time.monotonic() + 10
        while True:  # up, and done loading its append-only file
            try:
                if client.ping():
                    break
            except redis.RedisError:
                pass
            if time.monotonic() > deadline or self.proc.poll() is not None:
                raise RuntimeError("our redis-server did not start")
            time.sleep(0.05)
        client.close()

    def kill(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            os.kill(self.proc.pid, signal.SIGKILL)  # only the process this fixture started
            self.proc.wait(timeout=10)
        self.proc = None


@pytest.fixture
def own_redis(tmp_path, settings) -> Iterator[OwnRedis]:
    server = OwnRedis(str(tmp_path))
    server.start()
    settings.CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": f"redis://127.0.0.1:{PORT}/0",
            "OPTIONS": {"socket_connect_timeout": 1, "socket_timeout": 1},
        }
    }
    try:
        yield server
    finally:
        server.kill()


@pytest.fixture
def metered(world_a):
    return make_catalog(world_a.tenant)


def used(client, account: str = "acct-1") -> int:
    response = client.post(CHECK, {"account": account, "feature": "api_calls"}, format="json")
    assert response.status_code == 200, response.content
    return response.json()["used"]


def test_redis_killed_between_commit_and_invalidation_answers_200_logs_and_the_sweep_corrects_the_cache(
    world_a, metered, own_redis, caplog, django_capture_on_commit_callbacks
):
    client = world_a.api("read")
    assert used(client) == 0  # cached in our redis
    batch = [event(key=f"k{i}") for i in range(3)]
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        response = world_a.api("ingest").post(URL, {"events": batch}, format="json")
    assert response.status_code == 200 and response.json()["accepted"] == 3  # committed
    own_redis.kill()
    with caplog.at_level(logging.ERROR, logger="usage.cache"):
        for callback in callbacks:
            callback()  # the after-commit invalidation: must not raise
    assert any("invalidation failed" in r.getMessage() for r in caplog.records)
    assert set(PendingInvalidation.objects.for_tenant(world_a.tenant).values_list("ref", flat=True)) == {"acct-1"}
    assert used(client) == 3  # Redis down: answered from PostgreSQL
    own_redis.start()  # comes back with the old token and the stale entry (append-only file)
    stale = cache.lookup(world_a.tenant.pk, "acct-1", now=timezone.now())
    assert stale.usage is not None  # the fault is real: an entry computed before the events survived
    assert tasks.retry_cache_invalidations() == 1  # beat's sweep
    assert not PendingInvalidation.objects.for_tenant(world_a.tenant).exists()
    assert used(client) == 3


def test_a_duplicate_only_retry_after_a_failed_invalidation_leaves_the_cache_correct(
    world_a, metered, own_redis, django_capture_on_commit_callbacks
):
    client = world_a.api("read")
    assert used(client) == 0
    batch = [event(key=f"k{i}") for i in range(2)]
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        assert world_a.api("ingest").post(URL, {"events": batch}, format="json").json()["accepted"] == 2
    own_redis.kill()
    for callback in callbacks:
        callback()
    own_redis.start()
    # The client retries the whole batch (all duplicates) once Redis is back; no sweep has run.
    with django_capture_on_commit_callbacks(execute=True):
        assert world_a.api("ingest").post(URL, {"events": batch}, format="json").json()["duplicates"] == 2
    assert used(client) == 2


@pytest.mark.django_db(transaction=True)
def test_ingest_and_checks_answer_while_redis_is_down_and_the_cache_is_right_once_it_is_back(world_a, own_redis):
    """A real commit inside the request: the old code ran the failing invalidation there and answered 500."""
    make_catalog(world_a.tenant)
    client = world_a.api("read")
    assert used(client) == 0
    own_redis.kill()
    response = world_a.api("ingest").post(URL, {"events": [event(key="a"), event(key="b")]}, format="json")
    assert response.status_code == 200 and response.json()["accepted"] == 2
    assert used(client) == 2
    own_redis.start()
    tasks.retry_cache_invalidations()
    assert used(client) == 2
    assert Event.objects.for_tenant(world_a.tenant).count() == 2


@pytest.mark.django_db(transaction=True)
def test_a_backend_terminated_mid_batch_loses_nothing_accepted_and_a_retry_counts_once(world_a):
    require_postgres()
    catalog = make_catalog(world_a.tenant)
    world_a.tenant.auto_create_accounts = True
    world_a.tenant.save()
    ingest = world_a.api("ingest")
    assert ingest.post(URL, {"events": [event(key="before")]}, format="json").json()["accepted"] == 1
    batch = [event(key=f"m{i}") for i in range(300)] + [event("fresh-co", key="fresh-1")]

    # Our own second connection holds the rollup row the batch must update: the batch stops there,
    # with its keys, events and new account written but not committed.
    db = connection.settings_dict
    blocker = psycopg2.connect(
        dbname=db["NAME"],
        user=db.get("USER") or "postgres",
        password=db.get("PASSWORD") or "",
        host=db.get("HOST") or "127.0.0.1",
        port=db.get("PORT") or 5432,
    )
    outcome: dict[str, object] = {}

    def send() -> None:
        try:
            client = world_a.api("ingest")
            client.raise_request_exception = False
            outcome["status"] = client.post(URL, {"events": batch}, format="json").status_code
        except Exception as exc:  # the terminated connection surfaces as an error, not an answer
            outcome["error"] = exc
        finally:
            connections.close_all()

    try:
        with blocker.cursor() as cur:
            # The tenant for row-level security (an app role sees nothing without it; a superuser ignores it).
            cur.execute("SELECT set_config('app.tenant_id', %s, false)", [str(world_a.tenant.pk)])
            cur.execute(
                "SELECT 1 FROM usage_usagerollup WHERE tenant_id = %s AND meter_id = %s FOR UPDATE",
                [world_a.tenant.pk, catalog.api_meter.pk],
            )
            thread = threading.Thread(target=send)
            thread.start()
            victim = None
            deadline = time.monotonic() + 30
            while victim is None and time.monotonic() < deadline:
                cur.execute("SELECT pg_stat_clear_snapshot()")  # else one transaction sees one snapshot
                cur.execute(
                    "SELECT pid FROM pg_stat_activity WHERE datname = current_database() AND pid <> pg_backend_pid() "
                    "AND wait_event_type = 'Lock' AND query LIKE 'INSERT INTO usage_usagerollup%%'"
                )
                row = cur.fetchone()
                victim = row[0] if row else None
                time.sleep(0.05)
            assert victim is not None, "the batch never reached the rollup upsert"
            cur.execute("SELECT pg_terminate_backend(%s)", [victim])
            thread.join(timeout=30)
        blocker.rollback()
    finally:
        blocker.close()
    assert outcome.get("status") != 200  # the client saw a failure and will retry

    # Nothing of the killed batch was half-written: no events, keys or auto-created account.
    assert Event.objects.for_tenant(world_a.tenant).count() == 1
    assert IngestKey.objects.for_tenant(world_a.tenant).count() == 1
    assert not CustomerAccount.objects.for_tenant(world_a.tenant).filter(external_id="fresh-co").exists()

    first = ingest.post(URL, {"events": batch}, format="json").json()
    assert first["accepted"] == 301
    again = ingest.post(URL, {"events": batch}, format="json").json()
    assert again["duplicates"] == 301 and again["accepted"] == 0
    assert Event.objects.for_tenant(world_a.tenant).count() == 302
    rolled = sum(
        UsageRollup.objects.for_tenant(world_a.tenant).filter(meter=catalog.api_meter).values_list("value", flat=True)
    )
    assert rolled == 302
