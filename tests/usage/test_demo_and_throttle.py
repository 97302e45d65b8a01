"""The demo seed is idempotent and consistent; the hot endpoints are rate limited per key."""

from __future__ import annotations

import pytest

from usage import services
from usage.demo import seed_tenant_usage
from usage.models import Event, UsageRollup

from .factories import event, give_license, make_catalog

pytestmark = pytest.mark.django_db


def test_seeding_demo_usage_twice_adds_nothing_and_rollups_match_a_rebuild(world_a):
    catalog = make_catalog(world_a.tenant)
    give_license(world_a.account, catalog.team)
    written = seed_tenant_usage(world_a.tenant, seed=1, days=10)
    assert written > 0 and Event.objects.for_tenant(world_a.tenant).count() == written
    assert seed_tenant_usage(world_a.tenant, seed=1, days=10) == 0
    assert Event.objects.for_tenant(world_a.tenant).count() == written
    before = sorted(UsageRollup.objects.for_tenant(world_a.tenant).values_list("meter_id", "day", "value"))
    services.rebuild_rollups(world_a.tenant)
    assert sorted(UsageRollup.objects.for_tenant(world_a.tenant).values_list("meter_id", "day", "value")) == before


def test_the_hot_endpoints_answer_429_past_the_keys_rate(world_a, settings):
    make_catalog(world_a.tenant)
    settings.REST_FRAMEWORK = {**settings.REST_FRAMEWORK, "DEFAULT_THROTTLE_RATES": {"api_key": "2/min"}}
    client = world_a.api("ingest")
    assert client.post("/api/v1/events", {"events": [event()]}, format="json").status_code == 200
    assert client.post("/api/v1/events", {"events": [event()]}, format="json").status_code == 200
    response = client.post("/api/v1/events", {"events": [event()]}, format="json")
    assert response.status_code == 429
    assert response.json()["error"]["code"] == "throttled"
    assert Event.objects.for_tenant(world_a.tenant).count() == 2
