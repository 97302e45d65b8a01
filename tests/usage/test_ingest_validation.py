"""usage.services.ingest: every check on an incoming event, at its limit and one past it.

The meter checks are pure and tested as such; the rest goes through `ingest_events` on the
embedded SQLite database. Each test asserts the whole per-event answer (status, field and
reason, word for word): the reason is what the sender reads to fix its event, so a changed
limit, message or field name fails here. Types a JSON sender can get wrong (numbers, lists,
objects, null where a string belongs) are sent for every string field.
"""

from __future__ import annotations

import datetime
import json

import pytest
from django.utils import timezone
from rest_framework.request import Request
from rest_framework.test import APIRequestFactory

from accounts.models import AuditEntry, CustomerAccount, Tenant
from catalog.models import Aggregation
from usage.api import read_json_body
from usage.errors import InvalidInput, PayloadTooLarge, UsageErrorCode
from usage.models import Event
from usage.services import MAX_BATCH_BYTES
from usage.services.ingest import _meter_errors, ingest_events
from usage.services.writes import MeterSpec

from .factories import make_catalog

MISSING = object()
UTC = datetime.UTC


@pytest.fixture
def now() -> datetime.datetime:
    return timezone.now().replace(microsecond=0)


@pytest.fixture
def world(world_a):
    world_a.catalog = make_catalog(world_a.tenant)
    return world_a


def ev(now: datetime.datetime, key: str = "k-1", **fields) -> dict:
    """A valid api_call event for acct-1 at `now`; `fields` override (MISSING drops a field)."""
    event = {
        "event": "api_call",
        "account": "acct-1",
        "timestamp": now.isoformat(),
        "idempotency_key": key,
        "properties": {},
    }
    event.update(fields)
    return {name: value for name, value in event.items() if value is not MISSING}


def answer_for(world, now, event) -> dict:
    """The answer to a batch of one event."""
    result = ingest_events(world.tenant, events=[event], now=now)
    assert len(result.results) == 1
    return result.results[0]


def rejected(index: int = 0, **errors) -> dict:
    return {"index": index, "status": "rejected", "errors": errors}


def answers_for(world, now, events) -> list[dict]:
    """The answers to one batch (one database set-up for many cases)."""
    return ingest_events(world.tenant, events=events, now=now).results


ACCEPTED = {"index": 0, "status": "accepted"}


# --- The batch ---------------------------------------------------------------------------------


@pytest.mark.parametrize("events", [{"events": []}, "api_call", None, 7, ("a", "tuple")])
def test_a_batch_that_is_not_a_list_is_refused_whole(events):
    with pytest.raises(InvalidInput) as exc:
        ingest_events(Tenant(slug="t", name="T"), events=events)  # refused before any database work
    assert exc.value.code == UsageErrorCode.INVALID_BATCH
    assert exc.value.message == 'Send {"events": [...]}.'
    assert exc.value.details == {"events": ["Must be a list of events."]}


def test_an_empty_batch_is_refused_whole():
    with pytest.raises(InvalidInput) as exc:
        ingest_events(Tenant(slug="t", name="T"), events=[])
    assert (exc.value.code, exc.value.message) == (UsageErrorCode.INVALID_BATCH, "The batch is empty.")
    assert exc.value.details == {"events": ["Send at least one event."]}


@pytest.mark.django_db
def test_a_batch_of_exactly_1000_events_is_taken_and_1001_is_refused_whole(world, now):
    batch = [ev(now, key=f"k-{i}") for i in range(1000)]
    result = ingest_events(world.tenant, events=batch, now=now)
    assert (result.accepted, result.duplicates, result.rejected) == (1000, 0, 0)

    with pytest.raises(InvalidInput) as exc:
        ingest_events(world.tenant, events=[*batch, ev(now, key="one-too-many")], now=now)
    assert (exc.value.code, exc.value.message) == (UsageErrorCode.INVALID_BATCH, "At most 1000 events per batch.")
    assert exc.value.details == {"events": ["Got 1001; send at most 1000 per batch."]}
    assert not Event.objects.for_tenant(world.tenant).filter(idempotency_key="one-too-many").exists()


def _body_of(size: int) -> bytes:
    """A JSON body of exactly `size` bytes."""
    empty = b'{"events": [], "pad": ""}'
    return empty[:-2] + b"x" * (size - len(empty)) + empty[-2:]


def _request(body: bytes) -> Request:
    return Request(APIRequestFactory().post("/api/v1/events", data=body, content_type="application/json"))


def test_a_body_of_exactly_2_mib_is_read_and_one_byte_more_is_refused_before_reading():
    assert MAX_BATCH_BYTES == 2 * 1024 * 1024
    body = _body_of(MAX_BATCH_BYTES)
    assert len(body) == MAX_BATCH_BYTES
    assert read_json_body(_request(body), max_bytes=MAX_BATCH_BYTES)["events"] == []
    with pytest.raises(PayloadTooLarge) as exc:
        read_json_body(_request(_body_of(MAX_BATCH_BYTES + 1)), max_bytes=MAX_BATCH_BYTES)
    assert exc.value.message == f"The body is {MAX_BATCH_BYTES + 1} bytes; the limit is {MAX_BATCH_BYTES}."
    assert exc.value.details == {"max_bytes": MAX_BATCH_BYTES}


# --- One event's fields ------------------------------------------------------------------------

NOT_STRINGS = [MISSING, None, "", 5, 1.5, True, ["x"], {"x": 1}]


@pytest.mark.django_db
def test_an_event_that_is_not_an_object_is_rejected_alone(world, now):
    raws = ["api_call", 7, None, ["api_call"], True]
    assert answers_for(world, now, [*raws, ev(now)]) == [
        *(rejected(i, non_field_errors=["Each event must be a JSON object."]) for i in range(len(raws))),
        {"index": len(raws), "status": "accepted"},
    ]


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("field", "reason"),
    [
        ("event", "Required: a non-empty string."),
        ("account", "Required: the account's external id."),
        ("idempotency_key", "Required: a non-empty string unique per event."),
    ],
)
def test_a_string_field_sent_missing_empty_or_as_another_json_type_is_rejected(world, now, field, reason):
    batch = [ev(now, key=f"k-{i}", **{field: value}) for i, value in enumerate(NOT_STRINGS)]
    assert answers_for(world, now, batch) == [rejected(i, **{field: [reason]}) for i in range(len(NOT_STRINGS))]
    assert not Event.objects.for_tenant(world.tenant).exists()


@pytest.mark.django_db
def test_a_timestamp_that_is_not_a_string_is_rejected(world, now):
    values = [MISSING, None, 1_700_000_000, 1.5, True, ["2026-01-01T00:00:00Z"]]
    batch = [ev(now, key=f"k-{i}", timestamp=value) for i, value in enumerate(values)]
    reason = "Required: an ISO 8601 date-time with a time zone."
    assert answers_for(world, now, batch) == [rejected(i, timestamp=[reason]) for i in range(len(values))]


@pytest.mark.django_db
def test_properties_that_are_not_an_object_are_rejected(world, now):
    values = [[1, 2], "{}", 5, True]
    batch = [ev(now, key=f"k-{i}", properties=value) for i, value in enumerate(values)]
    assert answers_for(world, now, batch) == [
        rejected(i, properties=["Must be a JSON object."]) for i in range(len(values))
    ]


@pytest.mark.django_db
def test_missing_or_null_properties_are_an_empty_object(world, now):
    result = ingest_events(world.tenant, events=[ev(now, key="a", properties=None), ev(now, key="b")], now=now)
    assert result.accepted == 2
    assert list(Event.objects.for_tenant(world.tenant).values_list("properties", flat=True)) == [{}, {}]


@pytest.mark.django_db
def test_every_problem_of_one_event_is_answered_at_once(world, now):
    bad = {"event": "", "account": 1, "idempotency_key": None, "timestamp": "soon", "properties": []}
    assert answer_for(world, now, bad) == rejected(
        event=["Required: a non-empty string."],
        account=["Required: the account's external id."],
        idempotency_key=["Required: a non-empty string unique per event."],
        timestamp=["Not an ISO 8601 date-time (or out of range)."],
        properties=["Must be a JSON object."],
    )


@pytest.mark.django_db
def test_event_names_of_up_to_100_allowed_characters_are_accepted_and_others_rejected(world, now):
    good = ["x" * 100, "aZ09_.:/-", "a"]
    bad = ["x" * 101, "bad name!", "café", "api_call\n", "a,b"]
    batch = [ev(now, key=f"k-{i}", event=name) for i, name in enumerate(good + bad)]
    reason = "Use 1–100 letters, digits or _ . : / -."
    assert answers_for(world, now, batch) == [
        *({"index": i, "status": "accepted"} for i in range(len(good))),
        *(rejected(i, event=[reason]) for i in range(len(good), len(good) + len(bad))),
    ]


@pytest.mark.django_db
def test_accounts_that_are_not_external_ids_are_rejected(world, now):
    accounts = ["bad id!", "-starts-with-a-dash", "acct-1\n", "x" * 129]
    batch = [ev(now, key=f"k-{i}", account=account) for i, account in enumerate(accounts)]
    assert answers_for(world, now, batch) == [
        rejected(i, account=["Not a valid external id."]) for i in range(len(accounts))
    ]


@pytest.mark.django_db
def test_an_unknown_account_is_rejected_by_name(world, now):
    assert answer_for(world, now, ev(now, account="nobody")) == rejected(account=["Unknown account 'nobody'."])


@pytest.mark.django_db
def test_an_idempotency_key_of_255_characters_is_accepted_and_256_rejected(world, now):
    assert answer_for(world, now, ev(now, idempotency_key="k" * 255)) == ACCEPTED
    assert answer_for(world, now, ev(now, idempotency_key="k" * 256)) == rejected(
        idempotency_key=["At most 255 characters."]
    )


@pytest.mark.django_db
def test_an_idempotency_key_with_unprintable_characters_is_rejected(world, now):
    keys = ["a\nb", "tab\there", "nul\x00", "\x7f"]
    assert answers_for(world, now, [ev(now, key=key) for key in keys]) == [
        rejected(i, idempotency_key=["Use printable characters only."]) for i in range(len(keys))
    ]


# --- Timestamps --------------------------------------------------------------------------------


@pytest.mark.django_db
def test_timestamps_that_are_not_iso_or_out_of_range_are_rejected(world, now):
    stamps = ["yesterday", "2026-13-01T00:00:00Z", "9999-12-31T23:59:59-05:00", "0001-01-01T00:00+01:00"]
    batch = [ev(now, key=f"k-{i}", timestamp=stamp) for i, stamp in enumerate(stamps)]
    assert answers_for(world, now, batch) == [
        rejected(i, timestamp=["Not an ISO 8601 date-time (or out of range)."]) for i in range(len(stamps))
    ]


@pytest.mark.django_db
def test_a_timestamp_without_a_zone_is_rejected(world, now):
    naive = now.replace(tzinfo=None).isoformat()
    assert answer_for(world, now, ev(now, timestamp=naive)) == rejected(
        timestamp=["Include a time zone (e.g. 'Z' or '+00:00')."]
    )


@pytest.mark.django_db
def test_exactly_five_minutes_ahead_is_accepted_and_a_microsecond_more_is_rejected(world, now):
    ahead = now + datetime.timedelta(minutes=5)
    assert answer_for(world, now, ev(now, key="edge", timestamp=ahead.isoformat())) == ACCEPTED
    too_far = (ahead + datetime.timedelta(microseconds=1)).isoformat()
    assert answer_for(world, now, ev(now, key="past-edge", timestamp=too_far)) == rejected(
        timestamp=["Too far in the future (more than 5 minutes ahead)."]
    )


@pytest.mark.django_db
@pytest.mark.parametrize("days", [35, 2])
def test_the_first_moment_of_the_late_arrival_window_is_accepted_and_a_microsecond_earlier_rejected(world, now, days):
    world.tenant.event_late_arrival_days = days
    world.tenant.save()
    oldest = now - datetime.timedelta(days=days)
    assert answer_for(world, now, ev(now, key="edge", timestamp=oldest.isoformat())) == ACCEPTED
    too_old = (oldest - datetime.timedelta(microseconds=1)).isoformat()
    assert answer_for(world, now, ev(now, key="past-edge", timestamp=too_old)) == rejected(
        timestamp=[f"Older than this tenant's late-arrival window of {days} days."]
    )


@pytest.mark.django_db
def test_an_offset_timestamp_is_judged_and_stored_as_its_utc_instant(world, now):
    plus_two = datetime.timezone(datetime.timedelta(hours=2))
    # 4 minutes ahead written at +02:00 is still 4 minutes ahead; 6 minutes is too far.
    ahead = (now + datetime.timedelta(minutes=4)).astimezone(plus_two)
    assert answer_for(world, now, ev(now, key="east", timestamp=ahead.isoformat())) == ACCEPTED
    stored = Event.objects.for_tenant(world.tenant).get(idempotency_key="east")
    assert stored.occurred_at == now + datetime.timedelta(minutes=4)
    assert stored.received_at == now
    too_far = (now + datetime.timedelta(minutes=6)).astimezone(plus_two).isoformat()
    assert answer_for(world, now, ev(now, key="east-2", timestamp=too_far))["status"] == "rejected"


# --- Properties --------------------------------------------------------------------------------

OVERSIZED = rejected(properties=["Oversized: at most 8192 bytes as JSON."])


@pytest.mark.django_db
def test_properties_of_exactly_8_kib_as_json_are_accepted_and_one_byte_more_rejected(world, now):
    # {"blob":"..."} is 11 bytes around the value.
    assert len(json.dumps({"blob": "x" * 8181}, separators=(",", ":"))) == 8192
    assert answer_for(world, now, ev(now, key="edge", properties={"blob": "x" * 8181})) == ACCEPTED
    assert answer_for(world, now, ev(now, key="over", properties={"blob": "x" * 8182})) == OVERSIZED


@pytest.mark.django_db
def test_properties_are_measured_in_utf8_bytes_not_characters(world, now):
    # "é" is 2 bytes: 4,090 of them and one "x" make 8,192 bytes; 4,091 make 8,193 in only 4,102 characters.
    assert answer_for(world, now, ev(now, key="edge", properties={"blob": "é" * 4090 + "x"})) == ACCEPTED
    assert answer_for(world, now, ev(now, key="over", properties={"blob": "é" * 4091})) == OVERSIZED


@pytest.mark.django_db
def test_properties_the_database_cannot_store_are_rejected(world, now):
    values = [{"note": "a\x00b"}, {"a\x00": 1}, {"note": "\ud800"}, {"\udfff": 1}]
    batch = [ev(now, key=f"k-{i}", properties=value) for i, value in enumerate(values)]
    reason = "Strings may not contain NUL characters or unpaired surrogates."
    assert answers_for(world, now, batch) == [rejected(i, properties=[reason]) for i in range(len(values))]
    assert not Event.objects.for_tenant(world.tenant).exists()


# --- What meters read (pure) -------------------------------------------------------------------

SUM = MeterSpec(1, Aggregation.SUM, "gb")
MAX = MeterSpec(2, Aggregation.MAX, "gb")
UNIQUE = MeterSpec(3, Aggregation.UNIQUE_COUNT, "user_id")
COUNT = MeterSpec(4, Aggregation.COUNT, "")
LIMIT = 10**15


@pytest.mark.parametrize("spec", [SUM, MAX])
@pytest.mark.parametrize("value", [0, 7, -7, LIMIT, -LIMIT])
def test_a_sum_or_max_meter_takes_integers_up_to_a_quadrillion_either_way(spec, value):
    assert _meter_errors([spec], {"gb": value}) is None


@pytest.mark.parametrize(("spec", "reads"), [(SUM, "sum"), (MAX, "max")])
@pytest.mark.parametrize(
    ("properties", "got"),
    [
        ({}, "missing"),
        ({"gb": None}, "missing"),
        ({"gb": "12"}, "a str"),
        ({"gb": 1.5}, "a float"),
        ({"gb": True}, "a bool"),
        ({"gb": [1]}, "a list"),
    ],
)
def test_a_sum_or_max_meter_needs_an_integer_and_says_what_it_got(spec, reads, properties, got):
    assert _meter_errors([spec], properties) == {
        "properties.gb": [f"Must be an integer (meter {reads} reads it); got {got}."]
    }


@pytest.mark.parametrize("spec", [SUM, MAX])
@pytest.mark.parametrize("value", [LIMIT + 1, -LIMIT - 1, 10**30])
def test_a_sum_or_max_meter_refuses_integers_past_a_quadrillion(spec, value):
    assert _meter_errors([spec], {"gb": value}) == {
        "properties.gb": ["Must be between -1000000000000000 and 1000000000000000."]
    }


@pytest.mark.parametrize("value", [7, 0, -3, "u1", "u" * 200])
def test_a_unique_count_meter_takes_integers_and_strings_up_to_200_characters(value):
    assert _meter_errors([UNIQUE], {"user_id": value}) is None


@pytest.mark.parametrize(
    ("properties", "message"),
    [
        ({}, "Must be a non-empty string or an integer (unique count reads it); got missing."),
        ({"user_id": ""}, "Must be a non-empty string or an integer (unique count reads it); got a str."),
        ({"user_id": 1.5}, "Must be a non-empty string or an integer (unique count reads it); got a float."),
        ({"user_id": False}, "Must be a non-empty string or an integer (unique count reads it); got a bool."),
        ({"user_id": {"id": 1}}, "Must be a non-empty string or an integer (unique count reads it); got a dict."),
        ({"user_id": "u" * 201}, "At most 200 characters."),
    ],
)
def test_a_unique_count_meter_refuses_other_values_and_says_why(properties, message):
    assert _meter_errors([UNIQUE], properties) == {"properties.user_id": [message]}


def test_count_meters_and_meters_without_a_property_read_nothing():
    assert _meter_errors([COUNT], {}) is None
    assert _meter_errors([MeterSpec(5, Aggregation.SUM, "")], {"gb": "not read"}) is None


def test_every_meter_on_an_event_is_checked_not_only_the_first():
    others = MeterSpec(6, Aggregation.SUM, "bytes")
    assert _meter_errors([COUNT, UNIQUE, others], {"user_id": 7}) == {
        "properties.bytes": ["Must be an integer (meter sum reads it); got missing."]
    }
    assert _meter_errors([SUM, UNIQUE], {"gb": "x", "user_id": ""}) == {
        "properties.gb": ["Must be an integer (meter sum reads it); got a str."],
        "properties.user_id": ["Must be a non-empty string or an integer (unique count reads it); got a str."],
    }


@pytest.mark.django_db
def test_an_event_a_meter_reads_is_rejected_when_the_meter_cannot_use_it(world, now):
    result = ingest_events(
        world.tenant,
        events=[
            ev(now, key="bad", event="storage_used", properties={"gb": "12"}),
            ev(now, key="edge", event="storage_used", properties={"gb": LIMIT}),
            ev(now, key="unread", event="support_ticket", properties={"gb": "12"}),  # no meter reads it
        ],
        now=now,
    )
    assert result.results == [
        {
            "index": 0,
            "status": "rejected",
            "errors": {"properties.gb": ["Must be an integer (meter max reads it); got a str."]},
        },
        {"index": 1, "status": "accepted"},
        {"index": 2, "status": "accepted"},
    ]


# --- Answers, duplicates, accounts -------------------------------------------------------------


@pytest.mark.django_db
def test_the_answer_counts_each_outcome_in_request_order(world, now):
    first = ingest_events(
        world.tenant,
        events=[
            ev(now, key="a"),
            ev(now, key="a"),  # the same key again in one batch: the first one is the event
            "nope",
            ev(now, key="b", event="storage_used", properties={"gb": 3}),
            ev(now, key="c", account="nobody"),
            ev(now, key="d"),  # answered after an unknown account
        ],
        now=now,
    )
    assert first.as_dict() == {
        "accepted": 3,
        "duplicates": 1,
        "rejected": 2,
        "results": [
            {"index": 0, "status": "accepted"},
            {"index": 1, "status": "duplicate"},
            {"index": 2, "status": "rejected", "errors": {"non_field_errors": ["Each event must be a JSON object."]}},
            {"index": 3, "status": "accepted"},
            {"index": 4, "status": "rejected", "errors": {"account": ["Unknown account 'nobody'."]}},
            {"index": 5, "status": "accepted"},
        ],
    }
    assert first.touched_account_ids == {world.account.pk}
    stored = Event.objects.for_tenant(world.tenant).order_by("idempotency_key")
    assert [(e.idempotency_key, e.event, e.account_id, e.occurred_at, e.received_at) for e in stored] == [
        ("a", "api_call", world.account.pk, now, now),
        ("b", "storage_used", world.account.pk, now, now),
        ("d", "api_call", world.account.pk, now, now),
    ]
    assert stored.get(idempotency_key="b").properties == {"gb": 3}

    again = ingest_events(world.tenant, events=[ev(now, key="a"), ev(now, key="b")], now=now)
    assert again.as_dict() == {
        "accepted": 0,
        "duplicates": 2,
        "rejected": 0,
        "results": [{"index": 0, "status": "duplicate"}, {"index": 1, "status": "duplicate"}],
    }
    assert again.touched_account_ids == set()
    assert Event.objects.for_tenant(world.tenant).count() == 3

    nothing = ingest_events(world.tenant, events=["nope", ev(now, key="e", account="nobody")], now=now)
    assert (nothing.accepted, nothing.duplicates, nothing.rejected) == (0, 0, 2)
    assert nothing.touched_account_ids == set()


@pytest.mark.django_db
def test_without_a_given_time_events_are_judged_against_the_clock(world):
    before = timezone.now()
    result = ingest_events(world.tenant, events=[ev(before, key="now")])
    assert result.accepted == 1
    stored = Event.objects.for_tenant(world.tenant).get()
    assert before <= stored.received_at <= timezone.now()


@pytest.mark.django_db
def test_accounts_are_created_only_for_events_that_pass_and_are_audited_with_the_actor(world, now):
    world.tenant.auto_create_accounts = True
    world.tenant.save()
    result = ingest_events(
        world.tenant,
        events=[
            ev(now, key="new", account="new-co"),
            ev(now, key="bad-time", account="late-co", timestamp="soon"),
            ev(now, key="bad-props", account="odd-co", properties={"blob": "x" * 9000}),
            ev(now, key="new", account="twin-co"),  # a duplicate of the first: creates nothing
            ev(now, key="resent", account="again-co"),
            ev(now, key="resent", account="again-co"),  # resent in the same batch: still created, once
        ],
        actor="ingest-test",
        now=now,
    )
    statuses = [r["status"] for r in result.results]
    assert statuses == ["accepted", "rejected", "rejected", "duplicate", "accepted", "duplicate"]
    created = CustomerAccount.objects.for_tenant(world.tenant).exclude(pk=world.account.pk).order_by("external_id")
    assert list(created.values_list("external_id", flat=True)) == ["again-co", "new-co"]
    audits = AuditEntry.objects.for_tenant(world.tenant).filter(action="account.auto_created")
    assert sorted(audits.values_list("object_id", flat=True)) == sorted(
        str(pk) for pk in created.values_list("pk", flat=True)
    )
    assert {a.actor_label for a in audits} == {"ingest-test"}
