"""Idempotency-Key under real concurrency: two requests, two PostgreSQL connections, one effect."""

from __future__ import annotations

import json
import threading

import pytest
from django.db import connection

from accounts import services
from accounts.models import CustomerAccount, IdempotencyRecord
from tests.services import require_postgres

pytestmark = [pytest.mark.integration, pytest.mark.django_db(transaction=True)]
URL = "/api/v1/accounts"
BODY = json.dumps({"external_id": "race-1", "name": "Race"})


def post(client, key="race-key"):
    return client.post(URL, BODY, content_type="application/json", HTTP_IDEMPOTENCY_KEY=key)


def in_thread(target):
    """Run target in a thread with its own database connection; returns (thread, results)."""
    results: list = []

    def run():
        try:
            results.append(target())
        finally:
            connection.close()

    thread = threading.Thread(target=run)
    thread.start()
    return thread, results


def test_a_second_request_while_the_first_runs_answers_409_then_the_replay(world_a, monkeypatch):
    require_postgres()
    client = world_a.api()
    entered, release = threading.Event(), threading.Event()
    real = services.create_customer_account

    def gated(*args, **kwargs):  # the first request is inside its service when the second arrives
        entered.set()
        assert release.wait(20)
        return real(*args, **kwargs)

    monkeypatch.setattr(services, "create_customer_account", gated)
    thread, results = in_thread(lambda: post(client))
    assert entered.wait(20)
    try:
        second = post(client)
        assert second.status_code == 409
        assert second.json()["error"]["code"] == "idempotency_key_in_use"
    finally:
        release.set()
        thread.join(30)
    first = results[0]
    assert first.status_code == 201
    replay = post(client)
    assert replay.status_code == 201 and replay.content == first.content
    assert CustomerAccount.objects.for_tenant(world_a.tenant).filter(external_id="race-1").count() == 1


def test_concurrent_requests_under_one_key_have_one_effect(world_a):
    require_postgres()
    client = world_a.api()
    n = 8
    barrier = threading.Barrier(n)

    def racer():
        barrier.wait(10)
        return post(client)

    threads = [in_thread(racer) for _ in range(n)]
    responses = []
    for thread, results in threads:
        thread.join(60)
        responses.extend(results)
    assert len(responses) == n
    originals = [r for r in responses if r.status_code == 201 and "Idempotent-Replayed" not in r]
    assert len(originals) == 1
    for response in responses:
        assert response.status_code in (201, 409)
        if response.status_code == 201:  # a replay of the one answer
            assert response.content == originals[0].content
        else:  # the key was held, never "that external id exists": the create ran once
            assert response.json()["error"]["code"] == "idempotency_key_in_use"
    assert CustomerAccount.objects.for_tenant(world_a.tenant).filter(external_id="race-1").count() == 1
    assert IdempotencyRecord.objects.for_tenant(world_a.tenant).count() == 1
