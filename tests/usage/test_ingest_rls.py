"""Ingest, checks, gate hits, rebuilds and the invalidation sweep as the unprivileged app role under row-level security.

COPY FROM is refused on a table with row-level security: the bulk insert must be a plain
INSERT ... SELECT, with every statement inside the API key's tenant.
"""

from __future__ import annotations

import pytest

from accounts.tenancy import tenant_context
from catalog.models import Aggregation, Meter
from tests.tenancy import conftest as rls_fixtures
from usage import cache, tasks
from usage.models import Event, IngestKey, PendingInvalidation, UsageDistinctValue, UsageRollup

from .factories import event, make_catalog

pytestmark = [pytest.mark.integration]
app_role = rls_fixtures.app_role
connect_as = rls_fixtures.connect_as
URL = "/api/v1/events"
CHECK = "/api/v1/entitlements/check"


def test_ingest_and_checks_work_as_the_app_role_and_store_only_inside_the_keys_tenant(two_tenants, connect_as):
    a, b = two_tenants
    catalog = make_catalog(a.tenant)
    make_catalog(b.tenant)
    ingest, read, other = a.api("ingest"), a.api("read"), b.api("ingest")
    connect_as.switch(USER=rls_fixtures.APP_ROLE, PASSWORD=rls_fixtures.APP_PASSWORD)

    batch = [event(key=f"c{i}") for i in range(5)] + [
        event(name="storage_used", key="s1", gb=7),
        event(name="user_active", key="u1", user_id="x"),
        event(name="user_active", key="u2", user_id="y"),
    ]
    first = ingest.post(URL, {"events": batch}, format="json")
    assert first.status_code == 200, first.content
    assert first.json()["accepted"] == 8
    assert ingest.post(URL, {"events": batch}, format="json").json()["duplicates"] == 8
    assert other.post(URL, {"events": batch}, format="json").json()["accepted"] == 8  # b's own keys
    check = read.post(CHECK, {"account": "acct-1", "feature": "api_calls"}, format="json").json()
    assert check["used"] == 5
    denied = read.post(CHECK, {"account": "acct-1", "feature": "sso"}, format="json").json()
    assert denied["allowed"] is False  # its gate hit is written as the app role too

    connect_as.restore()  # count as the superuser, which sees every tenant
    assert Event.objects.for_tenant(a.tenant).count() == 9  # 8 + the gate hit
    assert Event.objects.for_tenant(b.tenant).count() == 8
    assert IngestKey.objects.for_tenant(a.tenant).count() == 9
    rollups = dict(UsageRollup.objects.for_tenant(a.tenant).values_list("meter_id", "value"))
    assert rollups[catalog.api_meter.pk] == 5 and rollups[catalog.storage_meter.pk] == 7
    assert rollups[catalog.users_meter.pk] == 2
    assert UsageDistinctValue.objects.for_tenant(a.tenant).count() == 2


def test_a_rebuild_and_the_invalidation_sweep_run_as_the_app_role(
    world_a, connect_as, django_capture_on_commit_callbacks
):
    make_catalog(world_a.tenant)
    ingest = world_a.api("ingest")
    connect_as.switch(USER=rls_fixtures.APP_ROLE, PASSWORD=rls_fixtures.APP_PASSWORD)
    body = ingest.post(
        URL, {"events": [event(name="upload", key=f"up{i}", size=10**20) for i in range(2)]}, format="json"
    )
    assert body.json()["accepted"] == 2
    with tenant_context(world_a.tenant):
        with django_capture_on_commit_callbacks(execute=True):
            meter = Meter.objects.create(
                tenant=world_a.tenant, key="sizes", name="Sizes", event_name="upload",
                aggregation=Aggregation.SUM, property="size",
            )  # fmt: skip
        assert UsageRollup.objects.for_tenant(world_a.tenant).get(meter=meter).value == 2 * 10**15
        PendingInvalidation.objects.create(tenant=world_a.tenant, ref="acct-1")
    assert tasks.retry_cache_invalidations() == 1
    with tenant_context(world_a.tenant):
        assert not PendingInvalidation.objects.for_tenant(world_a.tenant).exists()
    assert cache.invalidate([cache.USAGE], world_a.tenant.pk, ["acct-1"]) is True
