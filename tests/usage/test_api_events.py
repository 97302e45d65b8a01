"""POST /api/v1/events: per-event answers, idempotency, rejections, limits, keys and tenants."""

from __future__ import annotations

import datetime
import json

import pytest
from django.utils import timezone
from rest_framework.test import APIClient

from accounts import services as account_services
from accounts.models import AuditEntry, CustomerAccount
from usage import selectors
from usage.models import Event, IngestKey, UsageDistinctValue, UsageRollup
from usage.services import MAX_BATCH_BYTES

from .factories import event, make_catalog

pytestmark = pytest.mark.django_db
URL = "/api/v1/events"


def post(client: APIClient, events) -> object:
    return client.post(URL, {"events": events}, format="json")


def rollup(tenant, meter) -> int:
    return sum(UsageRollup.objects.for_tenant(tenant).filter(meter=meter).values_list("value", flat=True))


@pytest.fixture
def catalog(world_a):
    return make_catalog(world_a.tenant)


def test_a_valid_batch_is_stored_answered_per_event_and_rolled_up(world_a, catalog):
    response = post(world_a.api("ingest"), [event(), event(), event(name="support_ticket", severity="high")])
    assert response.status_code == 200
    body = response.json()
    assert body["accepted"] == 3 and body["duplicates"] == 0 and body["rejected"] == 0
    assert [r["status"] for r in body["results"]] == ["accepted"] * 3
    assert Event.objects.for_tenant(world_a.tenant).count() == 3
    assert rollup(world_a.tenant, catalog.api_meter) == 2
    ticket = selectors.list_events(world_a.tenant, event="support_ticket").get()
    assert ticket.properties == {"severity": "high"} and ticket.account_id == world_a.account.pk


def test_a_resent_batch_is_answered_duplicate_and_counted_once(world_a, catalog):
    client = world_a.api("ingest")
    batch = [event(key="a"), event(key="b")]
    assert post(client, batch).json()["accepted"] == 2
    again = post(client, batch).json()
    assert again["accepted"] == 0 and again["duplicates"] == 2
    assert [r["status"] for r in again["results"]] == ["duplicate", "duplicate"]
    assert Event.objects.for_tenant(world_a.tenant).count() == 2
    assert rollup(world_a.tenant, catalog.api_meter) == 2


def test_a_key_repeated_inside_one_batch_counts_once(world_a, catalog):
    body = post(world_a.api("ingest"), [event(key="same"), event(key="same"), event(key="other")]).json()
    assert [r["status"] for r in body["results"]] == ["accepted", "duplicate", "accepted"]
    assert rollup(world_a.tenant, catalog.api_meter) == 2


def test_a_duplicate_with_a_different_timestamp_is_still_a_duplicate(world_a, catalog):
    client = world_a.api("ingest")
    post(client, [event(key="k")])
    later = post(client, [event(key="k", at=timezone.now() - datetime.timedelta(days=3))]).json()
    assert later["duplicates"] == 1
    assert Event.objects.for_tenant(world_a.tenant).count() == 1


def test_partial_invalid_batch_stores_the_valid_events_only_with_reasons_for_the_rest(world_a, catalog):
    events = [
        event(key="good-1"),
        {"event": "api_call", "account": "acct-1", "idempotency_key": "no-time"},
        event(account="nobody", key="unknown-account"),
        event(name="storage_used", key="bad-type", gb="12"),
        event(name="bad name!", key="bad-name"),
        "not an object",
        event(key="bad-props") | {"properties": [1, 2]},
        event(name="storage_used", key="good-2", gb=12),
    ]
    body = post(world_a.api("ingest"), events).json()
    statuses = [r["status"] for r in body["results"]]
    assert statuses == ["accepted", "rejected", "rejected", "rejected", "rejected", "rejected", "rejected", "accepted"]
    errors = [r.get("errors") for r in body["results"]]
    assert "timestamp" in errors[1]
    assert "Unknown account 'nobody'." in errors[2]["account"]
    assert "properties.gb" in errors[3] and "integer" in errors[3]["properties.gb"][0]
    assert "event" in errors[4]
    assert "non_field_errors" in errors[5]
    assert "properties" in errors[6]
    stored = set(Event.objects.for_tenant(world_a.tenant).values_list("idempotency_key", flat=True))
    assert stored == {"good-1", "good-2"}
    assert set(IngestKey.objects.for_tenant(world_a.tenant).values_list("key", flat=True)) == stored
    # A rejected event left no key behind: fixing and resending it is accepted.
    fixed = post(world_a.api("ingest"), [event(name="storage_used", key="bad-type", gb=12)]).json()
    assert fixed["accepted"] == 1


@pytest.mark.parametrize(
    ("offset", "accepted"),
    [
        (datetime.timedelta(days=-34, hours=-23), True),  # inside the 35-day late-arrival window
        (datetime.timedelta(days=-35, minutes=-1), False),  # just outside it
        (datetime.timedelta(minutes=4), True),  # a skewed clock
        (datetime.timedelta(minutes=6), False),  # the future
    ],
)
def test_late_and_future_timestamps_are_judged_against_the_window(world_a, catalog, offset, accepted):
    body = post(world_a.api("ingest"), [event(at=timezone.now() + offset)]).json()
    assert (body["accepted"] == 1) is accepted
    if not accepted:
        assert "timestamp" in body["results"][0]["errors"]


def test_the_late_arrival_window_is_the_tenants_setting(world_a, catalog):
    world_a.tenant.event_late_arrival_days = 2
    world_a.tenant.save()
    body = post(world_a.api("ingest"), [event(at=timezone.now() - datetime.timedelta(days=3))]).json()
    assert body["rejected"] == 1
    assert "2 days" in body["results"][0]["errors"]["timestamp"][0]


@pytest.mark.parametrize(
    "stamp", ["2026-01-01T10:00:00", "yesterday", 1700000000, None, "9999-12-31T23:59:59-05:00", "0001-01-01T00:00Z"]
)
def test_timestamps_without_a_zone_or_not_iso_are_rejected(world_a, catalog, stamp):
    body = post(world_a.api("ingest"), [event() | {"timestamp": stamp}]).json()
    assert body["rejected"] == 1 and "timestamp" in body["results"][0]["errors"]


def test_oversized_properties_are_rejected_per_event(world_a, catalog):
    body = post(world_a.api("ingest"), [event(blob="x" * 9000), event()]).json()
    assert [r["status"] for r in body["results"]] == ["rejected", "accepted"]
    assert "Oversized" in body["results"][0]["errors"]["properties"][0]


def test_unique_count_meter_counts_distinct_values(world_a, catalog):
    post(world_a.api("ingest"), [event(name="user_active", user_id=u) for u in ("u1", "u2", "u1", 7)])
    assert UsageDistinctValue.objects.for_tenant(world_a.tenant).count() == 3
    assert rollup(world_a.tenant, catalog.users_meter) == 3


def test_unknown_accounts_are_created_when_the_tenant_says_so(world_a, catalog):
    world_a.tenant.auto_create_accounts = True
    world_a.tenant.save()
    body = post(world_a.api("ingest"), [event(account="new-co"), event(account="bad id!")]).json()
    assert [r["status"] for r in body["results"]] == ["accepted", "rejected"]
    created = CustomerAccount.objects.for_tenant(world_a.tenant).get(external_id="new-co")
    assert (
        AuditEntry.objects.for_tenant(world_a.tenant)
        .filter(action="account.auto_created", object_id=str(created.pk))
        .exists()
    )


def test_a_rejected_event_creates_no_account_and_no_audit_entry(world_a, catalog):
    """Issue 11 item 10: accounts were resolved (and auto-created) before the property and meter checks."""
    world_a.tenant.auto_create_accounts = True
    world_a.tenant.save()
    body = post(
        world_a.api("ingest"),
        [
            event(account="typed-wrong", name="storage_used", gb="12"),  # the meter needs an integer
            event(account="too-big", blob="x" * 9000),  # properties over 8 KiB
            event(account="has-nul", note="a\u0000b"),
            event(account="kept", key="shared"),
            event(account="dup-only", key="shared"),  # answered duplicate: must not leave an account
        ],
    ).json()
    assert [r["status"] for r in body["results"]] == ["rejected", "rejected", "rejected", "accepted", "duplicate"]
    external_ids = set(CustomerAccount.objects.for_tenant(world_a.tenant).values_list("external_id", flat=True))
    assert "kept" in external_ids
    assert not external_ids & {"typed-wrong", "too-big", "has-nul", "dup-only"}
    audited = AuditEntry.objects.for_tenant(world_a.tenant).filter(action="account.auto_created")
    assert audited.count() == 1


def test_an_unknown_account_with_auto_create_off_still_rejects_only_its_own_event(world_a, catalog):
    body = post(world_a.api("ingest"), [event(account="nobody", key="k"), event(key="k")]).json()
    assert [r["status"] for r in body["results"]] == ["rejected", "accepted"]
    assert not CustomerAccount.objects.for_tenant(world_a.tenant).filter(external_id="nobody").exists()


def test_a_body_over_the_cap_is_413_and_stores_nothing(world_a, catalog):
    padding = "x" * (MAX_BATCH_BYTES + 10)
    response = world_a.api("ingest").post(
        URL, data=json.dumps({"events": [event()], "pad": padding}), content_type="application/json"
    )
    assert response.status_code == 413
    assert response.json()["error"]["code"] == "payload_too_large"
    assert not Event.objects.exists()


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ("{not json", "body"),
        ('{"events": "nope"}', "events"),
        ("[]", "events"),
        ('{"events": []}', "events"),
    ],
)
def test_malformed_bodies_are_400_naming_the_problem(world_a, catalog, body, field):
    response = world_a.api("ingest").post(URL, data=body, content_type="application/json")
    assert response.status_code == 400
    assert field in response.json()["error"]["details"]
    assert not Event.objects.exists()


def test_more_than_1000_events_is_400_and_stores_nothing(world_a, catalog):
    response = post(world_a.api("ingest"), [event() for _ in range(1001)])
    assert response.status_code == 400
    assert "1001" in response.json()["error"]["details"]["events"][0]
    assert not Event.objects.exists()


def test_ingest_needs_the_ingest_scope(world_a, catalog):
    response = post(world_a.api("read", "write"), [event()])
    assert response.status_code == 403
    assert "ingest" in response.json()["error"]["message"]
    assert not Event.objects.exists()


@pytest.mark.parametrize("header", [None, "Bearer tw_nope_nope", "Token abc"])
def test_missing_or_bad_keys_are_401_and_store_nothing(world_a, catalog, header):
    client = APIClient()
    if header:
        client.credentials(HTTP_AUTHORIZATION=header)
    assert post(client, [event()]).status_code == 401
    assert not Event.objects.exists()


def test_a_revoked_key_is_refused(world_a, catalog):
    key, secret = account_services.create_api_key(world_a.tenant, name="k", scopes=["ingest"], actor="test")
    account_services.revoke_api_key(world_a.tenant, api_key=key, actor="test")
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {secret}")
    assert post(client, [event()]).status_code == 401


def test_events_land_in_the_callers_tenant_even_for_look_alike_accounts(two_tenants):
    a, b = two_tenants
    make_catalog(a.tenant)
    catalog_b = make_catalog(b.tenant)
    body = post(a.api("ingest"), [event("acct-1", key="shared-key")]).json()
    assert body["accepted"] == 1
    assert Event.objects.for_tenant(a.tenant).get().account_id == a.account.pk
    assert not Event.objects.for_tenant(b.tenant).exists()
    assert rollup(b.tenant, catalog_b.api_meter) == 0
    # Idempotency keys are per tenant: B may use the same key.
    assert post(b.api("ingest"), [event("acct-1", key="shared-key")]).json()["accepted"] == 1


def test_text_the_database_cannot_store_is_rejected_per_event_not_a_500(world_a, catalog):
    body = (
        '{"events": ['
        + json.dumps(event(key="nul-prop", note="a\u0000b"))
        + ","
        + json.dumps(event(key="surrogate"))[:-1]
        + ', "properties": {"note": "\\ud800"}}'
        + ","
        + json.dumps(event(key="nul\u0000key"))
        + ","
        + json.dumps(event(key="fine"))
        + "]}"
    )
    response = world_a.api("ingest").post(URL, data=body, content_type="application/json")
    assert response.status_code == 200, response.content
    results = response.json()["results"]
    assert [r["status"] for r in results] == ["rejected", "rejected", "rejected", "accepted"]
    assert "properties" in results[0]["errors"] and "properties" in results[1]["errors"]
    assert "idempotency_key" in results[2]["errors"]
