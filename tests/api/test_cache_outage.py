"""Defect 13: with Redis (the cache) down, the API keeps answering; the throttle fails open to a local count."""

from __future__ import annotations

import logging
import shutil
import subprocess
import time
from collections.abc import Iterator

import pytest
from django.utils import timezone

from accounts import api_auth
from tests.services import port_open, unavailable
from tests.usage.factories import make_catalog

pytestmark = [pytest.mark.integration, pytest.mark.django_db]

PORT = 6395  # our own redis-server: the shared one on 6379 is never touched


def start_redis() -> subprocess.Popen:
    binary = shutil.which("redis-server")
    if binary is None:
        unavailable("redis-server is not installed")
    if port_open("127.0.0.1", PORT):
        pytest.fail(f"port {PORT} is taken; this test starts its own Redis there")
    proc = subprocess.Popen(
        [binary, "--port", str(PORT), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 10
    while not port_open("127.0.0.1", PORT):
        assert proc.poll() is None and time.monotonic() < deadline, "redis-server did not start"
        time.sleep(0.05)
    return proc


@pytest.fixture
def own_redis(settings) -> Iterator[subprocess.Popen]:
    proc = start_redis()
    try:
        settings.CACHES = {
            "default": {
                "BACKEND": "django.core.cache.backends.redis.RedisCache",
                "LOCATION": f"redis://127.0.0.1:{PORT}/0",
            }
        }
        api_auth._local_counter.clear()
        api_auth._last_warning_at = None
        yield proc
    finally:
        if proc.poll() is None:
            proc.terminate()
            proc.wait(timeout=10)


def stop(proc: subprocess.Popen) -> None:
    proc.terminate()
    proc.wait(timeout=10)
    assert not port_open("127.0.0.1", PORT)


def event(key: str) -> dict:
    return {"event": "api_call", "account": "acct-1", "timestamp": timezone.now().isoformat(), "idempotency_key": key}


def calls(client, n: int) -> list[int]:
    statuses = []
    for i in range(n):
        statuses.append(client.get("/api/v1/accounts").status_code)
        statuses.append(client.post("/api/v1/events", {"events": [event(f"{n}-{i}")]}, format="json").status_code)
        statuses.append(
            client.post(
                "/api/v1/entitlements/check", {"account": "acct-1", "feature": "api_calls"}, format="json"
            ).status_code
        )
        statuses.append(client.get("/api/v1/catalog/tiers").status_code)
    return statuses


def test_the_api_answers_2xx_while_redis_is_down_and_says_so_once(
    world_a, own_redis, caplog, django_capture_on_commit_callbacks
):
    make_catalog(world_a.tenant)
    client = world_a.api()
    with django_capture_on_commit_callbacks(execute=True):  # after-commit cache invalidation runs too
        assert set(calls(client, 2)) == {200}
    stop(own_redis)
    with caplog.at_level(logging.WARNING, logger="accounts.api_auth"), django_capture_on_commit_callbacks(execute=True):
        assert set(calls(client, 5)) == {200}
    warnings = [r for r in caplog.records if r.name == "accounts.api_auth" and "unreachable" in r.getMessage()]
    assert len(warnings) == 1  # rate-limited: not one per request


def test_the_rate_limit_still_holds_per_process_while_redis_is_down(world_a, own_redis, settings):
    settings.REST_FRAMEWORK = {**settings.REST_FRAMEWORK, "DEFAULT_THROTTLE_RATES": {"api_key": "3/hour"}}
    client = world_a.api()
    stop(own_redis)
    statuses = [client.get("/api/v1/accounts").status_code for _ in range(4)]
    assert statuses == [200, 200, 200, 429]


def test_the_throttle_counts_in_redis_again_once_it_is_back(world_a, own_redis, monkeypatch):
    from django.core.cache import cache

    monkeypatch.setattr(api_auth._LocalCounter, "RETRY_CACHE_AFTER", 0.0)
    client = world_a.api()
    stop(own_redis)
    assert client.get("/api/v1/accounts").status_code == 200  # counted locally
    again = start_redis()
    try:
        assert client.get("/api/v1/accounts").status_code == 200
        assert any(key.startswith(b":1:throttle:api:") for key in cache._cache.get_client().keys("*"))
    finally:
        again.terminate()
        again.wait(timeout=10)
