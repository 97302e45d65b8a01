"""Set-based event writes, in one transaction (used by ingest, gate hits and the demo seed):
  1. one multi-row `INSERT INTO usage_ingestkey ... ON CONFLICT DO NOTHING RETURNING key`
     decides which events are new (the arbiter: two racing identical batches count once,
     the second one waits on the unique key and then sees the first's rows);
  2. the new events go in with one `INSERT ... SELECT FROM jsonb_to_recordset` (PostgreSQL; COPY is
     refused under row-level security) or one `executemany` (SQLite);
  3. rollups per account x meter x day are upserted with one statement per kind.
Cache invalidation for the touched accounts runs on commit (a duplicate-only batch's too).
"""

from __future__ import annotations

import datetime
import json
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from django.db import connection, transaction

from accounts.models import CustomerAccount
from catalog.models import Aggregation, Meter
from usage import cache
from usage.partitions import ensure_event_partitions
from usage.services.values import clamp_bigint, clamp_meter_value, saturated_bigint_sql
from usage.signals import send_events_ingested_on_commit

_ADVISORY_LOCK_NAMESPACE = 0x75736167  # "usag": ingest takes it shared, rebuild exclusive, per tenant


@dataclass(frozen=True)
class MeterSpec:
    id: int
    aggregation: str
    property: str


# A validated event: (index, account_id, event, occurred_at (aware UTC), key, properties, properties_json)
_Row = tuple[int, int, str, datetime.datetime, str, dict, str]


def meters_by_event(tenant_id: int) -> dict[str, list[MeterSpec]]:
    meters: dict[str, list[MeterSpec]] = defaultdict(list)
    for meter_id, event_name, aggregation, prop in (
        Meter.objects.for_tenant(tenant_id).order_by("id").values_list("id", "event_name", "aggregation", "property")
    ):
        meters[event_name].append(MeterSpec(meter_id, aggregation, prop))
    return dict(meters)


# Keys may hold any printable character, so they are JSON-encoded; event names are validated to
# letters, digits and _ . : / - (nothing to escape); timestamps are ISO 8601.
_encode_string = json.JSONEncoder(ensure_ascii=False).encode


def _events_json(rows: Sequence[_Row]) -> str:
    """The rows as one JSON array of {"a": account, "e": event, "o": occurred_at, "k": key, "p": properties}."""
    encode = _encode_string
    return (
        "["
        + ",".join(
            f'{{"a":{account_id},"e":"{name}","o":"{occurred_at.isoformat()}","k":{encode(key)},"p":{encoded}}}'
            for _, account_id, name, occurred_at, key, _, encoded in rows
        )
        + "]"
    )


def write_events(
    tenant_id: int,
    rows: Sequence[_Row],
    *,
    specs_by_event: dict[str, list[MeterSpec]],
    received_at: datetime.datetime,
    external_ids: dict[int, str] | None = None,
) -> tuple[set[str], set[int]]:
    """Store validated events whose key is new for the tenant, and their rollups, in one transaction.

    Returns the keys that were new (accepted) and the accounts whose meter values changed.
    Callers have validated rows; this trusts them. Used by ingest, gate hits and the demo seed.
    `external_ids` (account id -> external id) spares a lookup for cache invalidation.
    """
    vendor = connection.vendor
    ensure_event_partitions({datetime.date(r[3].year, r[3].month, 1) for r in rows})
    # Sorted keys: concurrent overlapping batches take the unique-index locks in one order (no deadlock).
    keys = sorted({r[4] for r in rows})
    # No savepoint when nested (ingest wraps account creation and this in one transaction): one fewer
    # round trip each way, and an error here rolls the caller back anyway.
    with transaction.atomic(savepoint=False), connection.cursor() as cursor:
        if vendor == "postgresql":
            cursor.execute("SELECT pg_advisory_xact_lock_shared(%s, %s)", [_ADVISORY_LOCK_NAMESPACE, tenant_id])
            cursor.execute(
                "INSERT INTO usage_ingestkey (tenant_id, key, created_at) "
                "SELECT %s, k, %s FROM jsonb_array_elements_text(%s::jsonb) AS k "
                "ON CONFLICT DO NOTHING RETURNING key",
                [tenant_id, received_at, _encode_string(keys)],  # one JSON array: one parameter, parsed once
            )
            new_keys = {row[0] for row in cursor.fetchall()}
        else:
            new_keys = set()
            stamp = connection.ops.adapt_datetimefield_value(received_at)
            for start in range(0, len(keys), 500):
                chunk = keys[start : start + 500]
                values = ", ".join(["(%s, %s, %s)"] * len(chunk))
                cursor.execute(
                    f"INSERT INTO usage_ingestkey (tenant_id, key, created_at) VALUES {values} "  # noqa: S608
                    "ON CONFLICT DO NOTHING RETURNING key",
                    [value for k in chunk for value in (tenant_id, k, stamp)],
                )
                new_keys.update(row[0] for row in cursor.fetchall())
        if not new_keys:
            # A duplicate-only batch is often the retry of one whose invalidation failed after
            # commit: invalidate its metered accounts again (one cache write, no table read).
            _invalidate_on_commit(tenant_id, {r[1] for r in rows if r[2] in specs_by_event}, external_ids=external_ids)
            return new_keys, set()
        fresh = [r for r in rows if r[4] in new_keys]
        if vendor == "postgresql":
            # One statement per batch, set-based like COPY but allowed under row-level security
            # (COPY FROM is refused on RLS tables): the batch travels as one JSON array that
            # PostgreSQL parses once and turns into rows; the properties are already JSON.
            cursor.execute(
                "INSERT INTO usage_event (tenant_id, account_id, event, occurred_at, received_at, idempotency_key, "
                "properties) SELECT %s, r.a, r.e, r.o, %s, r.k, r.p "
                "FROM jsonb_to_recordset(%s::jsonb) AS r(a bigint, e text, o timestamptz, k text, p jsonb)",
                [tenant_id, received_at, _events_json(fresh)],
            )
        else:
            adapt = connection.ops.adapt_datetimefield_value
            received = adapt(received_at)
            cursor.executemany(
                "INSERT INTO usage_event (tenant_id, account_id, event, occurred_at, received_at, idempotency_key, "
                "properties) VALUES (%s, %s, %s, %s, %s, %s, %s)",
                [(tenant_id, r[1], r[2], adapt(r[3]), received, r[4], r[6]) for r in fresh],
            )
        touched = _upsert_rollups(cursor, tenant_id, fresh, specs_by_event, vendor=vendor, now=received_at)
        _invalidate_on_commit(tenant_id, touched, external_ids=external_ids)
        # After the invalidation above (on_commit runs in order): receivers read fresh answers.
        send_events_ingested_on_commit(tenant_id, {r[1] for r in fresh})
    return new_keys, touched


def _invalidate_on_commit(tenant_id: int, account_ids: set[int], *, external_ids: dict[int, str] | None) -> None:
    """Cached usage answers of these accounts go after commit (keyed by external id: a warm check reads no table)."""
    if not account_ids:
        return
    if external_ids is None or not account_ids <= external_ids.keys():
        external_ids = dict(
            CustomerAccount.objects.for_tenant(tenant_id).filter(pk__in=account_ids).values_list("id", "external_id")
        )
    cache.invalidate_on_commit([cache.USAGE], tenant_id, [external_ids[a] for a in account_ids if a in external_ids])


def _upsert_rollups(
    cursor,
    tenant_id: int,
    rows: Iterable[_Row],
    specs_by_event: dict[str, list[MeterSpec]],
    *,
    vendor: str,
    now: datetime.datetime,
) -> set[int]:
    additive: dict[tuple[int, int, datetime.date], list[int]] = {}  # (account, meter, day) -> [value, events]
    maxima: dict[tuple[int, int, datetime.date], list[int]] = {}
    distinct: dict[tuple[int, int, datetime.date, str], None] = {}
    distinct_events: dict[tuple[int, int, datetime.date], int] = defaultdict(int)
    for _, account_id, name, occurred_at, _, properties, _ in rows:
        specs = specs_by_event.get(name)
        if not specs:
            continue
        day = occurred_at.date()
        for spec in specs:
            bucket = (account_id, spec.id, day)
            aggregation = spec.aggregation
            if aggregation == Aggregation.COUNT or not spec.property:
                entry = additive.setdefault(bucket, [0, 0])
                entry[0] += 1
                entry[1] += 1
            elif aggregation == Aggregation.SUM:
                entry = additive.setdefault(bucket, [0, 0])
                entry[0] += clamp_meter_value(properties[spec.property])
                entry[1] += 1
            elif aggregation == Aggregation.MAX:
                value = clamp_meter_value(properties[spec.property])
                entry = maxima.get(bucket)
                if entry is None:
                    maxima[bucket] = [value, 1]
                else:
                    entry[0] = max(entry[0], value)
                    entry[1] += 1
            else:  # unique count
                distinct[(account_id, spec.id, day, str(properties[spec.property]))] = None
                distinct_events[bucket] += 1
    if distinct:
        new_per_bucket: dict[tuple[int, int, datetime.date], int] = defaultdict(int)
        ordered = sorted(distinct)
        for start in range(0, len(ordered), 1000):
            chunk = ordered[start : start + 1000]
            values = ", ".join(["(%s, %s, %s, %s, %s)"] * len(chunk))
            cursor.execute(
                f"INSERT INTO usage_usagedistinctvalue (tenant_id, account_id, meter_id, day, value) VALUES {values} "  # noqa: S608
                "ON CONFLICT DO NOTHING RETURNING account_id, meter_id, day",
                [v for (a, m, d, val) in chunk for v in (tenant_id, a, m, d.isoformat(), val)],
            )
            for account_id, meter_id, day in cursor.fetchall():
                if isinstance(day, str):
                    day = datetime.date.fromisoformat(day)
                new_per_bucket[(account_id, meter_id, day)] += 1
        for bucket, events in distinct_events.items():
            entry = additive.setdefault(bucket, [0, 0])
            entry[0] += new_per_bucket.get(bucket, 0)
            entry[1] += events
    greatest = "GREATEST" if vendor == "postgresql" else "MAX"
    numeric = "::numeric" if vendor == "postgresql" else ""  # a day's total saturates, never overflows
    stamp = now if vendor == "postgresql" else connection.ops.adapt_datetimefield_value(now)
    for buckets, value_sql in (
        (additive, saturated_bigint_sql(vendor, f"usage_usagerollup.value{numeric} + EXCLUDED.value")),
        (maxima, f"{greatest}(usage_usagerollup.value, EXCLUDED.value)"),
    ):
        if not buckets:
            continue
        # Sorted: concurrent batches lock rollup rows in the same order (no deadlock).
        ordered = sorted(buckets.items())
        if vendor == "postgresql":
            # One statement, five array literals ('{1,2,3}': one parameter each, parsed in C) instead
            # of thousands of bound values; unnest keeps the sorted order.
            rows_out = [(a, m, d, clamp_bigint(value), events) for ((a, m, d), (value, events)) in ordered]
            columns = list(zip(*rows_out, strict=True))
            cursor.execute(
                "INSERT INTO usage_usagerollup (tenant_id, account_id, meter_id, day, value, event_count, updated_at) "  # noqa: S608 (value_sql is a constant)
                "SELECT %s, a, m, d, v, n, %s "
                "FROM unnest(%s::bigint[], %s::bigint[], %s::date[], %s::bigint[], %s::bigint[]) AS t(a, m, d, v, n) "
                "ON CONFLICT (tenant_id, account_id, meter_id, day) DO UPDATE SET "
                f"value = {value_sql}, event_count = usage_usagerollup.event_count + EXCLUDED.event_count, "
                "updated_at = EXCLUDED.updated_at",
                [tenant_id, stamp, *("{" + ",".join(map(str, column)) + "}" for column in columns)],
            )
            continue
        for start in range(0, len(ordered), 1000):
            chunk = ordered[start : start + 1000]
            cursor.execute(
                "INSERT INTO usage_usagerollup (tenant_id, account_id, meter_id, day, value, event_count, updated_at) "
                "VALUES "
                + ", ".join(["(%s, %s, %s, %s, %s, %s, %s)"] * len(chunk))
                + " ON CONFLICT (tenant_id, account_id, meter_id, day) DO UPDATE SET "
                f"value = {value_sql}, event_count = usage_usagerollup.event_count + EXCLUDED.event_count, "
                "updated_at = EXCLUDED.updated_at",
                [
                    v
                    for ((a, m, d), (value, events)) in chunk
                    for v in (tenant_id, a, m, d.isoformat(), clamp_bigint(value), events, stamp)
                ],
            )
    return {bucket[0] for bucket in additive} | {bucket[0] for bucket in maxima}
