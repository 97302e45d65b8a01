"""Events sent with a UTC offset roll up on their UTC day, as stored (windows are UTC days)."""

from __future__ import annotations

import datetime

import pytest
from django.test import override_settings
from django.utils import timezone

from usage import services
from usage.models import Event, UsageRollup

from .factories import make_catalog

pytestmark = pytest.mark.django_db
UTC = datetime.UTC
EAST = datetime.timezone(datetime.timedelta(hours=2))
WEST = datetime.timezone(datetime.timedelta(hours=-5))


def test_an_event_with_a_utc_offset_rolls_up_on_its_utc_day(world_a):
    catalog = make_catalog(world_a.tenant)
    today = timezone.now().astimezone(UTC).date()
    yesterday = today - datetime.timedelta(days=1)
    now = datetime.datetime.combine(today, datetime.time(12), tzinfo=UTC)
    # 00:30 at +02:00 today is 22:30 UTC yesterday; 23:30 at -05:00 yesterday is 04:30 UTC today.
    east = datetime.datetime.combine(today, datetime.time(0, 30), tzinfo=EAST)
    west = datetime.datetime.combine(yesterday, datetime.time(23, 30), tzinfo=WEST)
    peak_east = datetime.datetime.combine(today, datetime.time(1, 0), tzinfo=EAST)
    events = [
        {"event": "api_call", "account": "acct-1", "timestamp": east.isoformat(), "idempotency_key": "east"},
        {"event": "api_call", "account": "acct-1", "timestamp": west.isoformat(), "idempotency_key": "west"},
        {
            "event": "storage_used",
            "account": "acct-1",
            "timestamp": peak_east.isoformat(),
            "idempotency_key": "peak",
            "properties": {"gb": 7},
        },
    ]
    assert services.ingest_events(world_a.tenant, events=events, now=now).accepted == 3

    stored = dict(Event.objects.for_tenant(world_a.tenant).values_list("idempotency_key", "occurred_at"))
    assert stored["east"] == datetime.datetime.combine(yesterday, datetime.time(22, 30), tzinfo=UTC)
    assert stored["west"] == datetime.datetime.combine(today, datetime.time(4, 30), tzinfo=UTC)

    def days(meter) -> dict:
        rollups = UsageRollup.objects.for_tenant(world_a.tenant).filter(meter=meter)
        return dict(rollups.values_list("day", "value"))

    assert days(catalog.api_meter) == {yesterday: 1, today: 1}
    assert days(catalog.storage_meter) == {yesterday: 7}
    # A rebuild from the raw events (in SQL) puts them on the same days.
    incremental = (days(catalog.api_meter), days(catalog.storage_meter))
    services.rebuild_rollups(world_a.tenant)
    assert (days(catalog.api_meter), days(catalog.storage_meter)) == incremental


@override_settings(TIME_ZONE="Europe/Berlin")
def test_rollup_days_are_utc_days_whatever_the_servers_time_zone(world_a):
    """The process zone follows TIME_ZONE: converting to 'local' time instead of UTC would move the day."""
    catalog = make_catalog(world_a.tenant)
    today = timezone.now().astimezone(UTC).date()
    yesterday = today - datetime.timedelta(days=1)
    now = datetime.datetime.combine(today, datetime.time(12), tzinfo=UTC)
    late_evening = datetime.datetime.combine(yesterday, datetime.time(23, 30), tzinfo=UTC)  # 00:30 in Berlin
    event = {"event": "api_call", "account": "acct-1", "timestamp": late_evening.isoformat(), "idempotency_key": "e"}
    assert services.ingest_events(world_a.tenant, events=[event], now=now).accepted == 1
    rollups = UsageRollup.objects.for_tenant(world_a.tenant).filter(meter=catalog.api_meter)
    assert dict(rollups.values_list("day", "value")) == {yesterday: 1}
