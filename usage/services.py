"""Writes of the usage app: event ingest, rollups, feature-gate hits, rollup rebuilds.

The ingest hot path validates a parsed batch in one tight loop (no per-event serializer),
then writes set-based in one transaction:
  1. one multi-row `INSERT INTO usage_ingestkey ... ON CONFLICT DO NOTHING RETURNING key`
     decides which events are new (the arbiter: two racing identical batches count once,
     the second one waits on the unique key and then sees the first's rows);
  2. the new events go in with one `COPY` (PostgreSQL) or one `executemany` (SQLite);
  3. rollups per account x meter x day are upserted with one statement per kind.
Invalid events are answered with reasons and never written. Cache invalidation for the
touched accounts runs on commit.
"""

from __future__ import annotations

import datetime
import io
import json
import re
import uuid
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from django.conf import settings
from django.db import connection, transaction
from django.utils import timezone

from accounts.models import CustomerAccount, Tenant, external_id_validator
from accounts.services import Actor, record_audit, snapshot
from catalog.models import Aggregation, Meter
from usage import cache
from usage.models import FEATURE_GATE_HIT_EVENT
from usage.partitions import ensure_event_partitions

UTC = datetime.UTC
MAX_EVENTS_PER_BATCH = 1000
MAX_BATCH_BYTES: int = getattr(settings, "USAGE_MAX_BATCH_BYTES", 2 * 1024 * 1024)
MAX_PROPERTIES_BYTES = 8 * 1024
MAX_KEY_LENGTH = 255
MAX_EVENT_NAME_LENGTH = 100
MAX_DISTINCT_VALUE_LENGTH = 200
# Clocks drift: a few minutes ahead is a skewed clock, more is a bug in the sender.
MAX_FUTURE_SKEW = datetime.timedelta(minutes=5)
# Integers a meter adds up; kept well inside bigint so a day's sum can't overflow.
MAX_METER_VALUE = 10**15
# external_id_validator.regex is lazy (a proxy per access): compile it once for the hot loop.
_EXTERNAL_ID = re.compile(external_id_validator.regex.pattern)
# One encoder: json.dumps(..., separators=...) would build a new JSONEncoder per event.
_encode_properties = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False).encode
_EVENT_NAME_CHARS = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_.:/-")
_ADVISORY_LOCK_NAMESPACE = 0x75736167  # "usag": ingest takes it shared, rebuild exclusive, per tenant

ACCEPTED = "accepted"
DUPLICATE = "duplicate"
REJECTED = "rejected"


@dataclass(frozen=True)
class MeterSpec:
    id: int
    aggregation: str
    property: str


@dataclass
class IngestResult:
    """The per-event answer, in request order: {"index", "status"[, "errors"]}."""

    results: list[dict[str, Any]]
    accepted: int = 0
    duplicates: int = 0
    rejected: int = 0
    touched_account_ids: set[int] = field(default_factory=set)

    def as_dict(self) -> dict[str, Any]:
        return {
            "accepted": self.accepted,
            "duplicates": self.duplicates,
            "rejected": self.rejected,
            "results": self.results,
        }


# A validated event: (index, account_id, event, occurred_at (aware UTC), key, properties, properties_json)
_Row = tuple[int, int, str, datetime.datetime, str, dict, str]


def meters_by_event(tenant_id: int) -> dict[str, list[MeterSpec]]:
    meters: dict[str, list[MeterSpec]] = defaultdict(list)
    for meter_id, event_name, aggregation, prop in (
        Meter.objects.for_tenant(tenant_id).order_by("id").values_list("id", "event_name", "aggregation", "property")
    ):
        meters[event_name].append(MeterSpec(meter_id, aggregation, prop))
    return dict(meters)


def _meter_errors(specs: list[MeterSpec], properties: dict) -> dict[str, list[str]] | None:
    """Events a meter reads must carry its property with the right type, or the number is wrong."""
    errors: dict[str, list[str]] = {}
    for spec in specs:
        if spec.aggregation == Aggregation.COUNT or not spec.property:
            continue
        value = properties.get(spec.property)
        name = f"properties.{spec.property}"
        if spec.aggregation in (Aggregation.SUM, Aggregation.MAX):
            if type(value) is not int:
                kind = "missing" if value is None else f"a {type(value).__name__}"
                errors[name] = [f"Must be an integer (meter {spec.aggregation} reads it); got {kind}."]
            elif not -MAX_METER_VALUE <= value <= MAX_METER_VALUE:
                errors[name] = [f"Must be between -{MAX_METER_VALUE} and {MAX_METER_VALUE}."]
        elif spec.aggregation == Aggregation.UNIQUE_COUNT:
            if type(value) is int:
                continue
            if type(value) is not str or not value:
                kind = "missing" if value is None else f"a {type(value).__name__}"
                errors[name] = [f"Must be a non-empty string or an integer (unique count reads it); got {kind}."]
            elif len(value) > MAX_DISTINCT_VALUE_LENGTH:
                errors[name] = [f"At most {MAX_DISTINCT_VALUE_LENGTH} characters."]
    return errors or None


def ingest_events(
    tenant: Tenant, *, events: Sequence[Any], actor: Actor = None, now: datetime.datetime | None = None
) -> IngestResult:
    """Validate and store a batch of events; answer each one. The valid ones commit together.

    `events` is the parsed JSON list. Rejections name the field and the reason; the whole
    batch is refused (InvalidInput) only when it isn't a list of at most 1,000 items.
    """
    from usage.errors import InvalidInput, UsageErrorCode

    if not isinstance(events, list):
        raise InvalidInput(
            'Send {"events": [...]}.',
            code=UsageErrorCode.INVALID_BATCH,
            details={"events": ["Must be a list of events."]},
        )
    if not events:
        raise InvalidInput(
            "The batch is empty.", code=UsageErrorCode.INVALID_BATCH, details={"events": ["Send at least one event."]}
        )
    if len(events) > MAX_EVENTS_PER_BATCH:
        raise InvalidInput(
            f"At most {MAX_EVENTS_PER_BATCH} events per batch.",
            code=UsageErrorCode.INVALID_BATCH,
            details={"events": [f"Got {len(events)}; send at most {MAX_EVENTS_PER_BATCH} per batch."]},
        )

    now = now or timezone.now()
    earliest = now - datetime.timedelta(days=tenant.event_late_arrival_days)
    latest = now + MAX_FUTURE_SKEW
    results: list[dict[str, Any]] = [None] * len(events)  # type: ignore[list-item]
    pending: list[tuple[int, str, str, datetime.datetime, str, dict]] = []
    external_ids: set[str] = set()
    fromisoformat = datetime.datetime.fromisoformat
    id_regex = _EXTERNAL_ID

    # The tight loop: plain type checks, no serializer objects.
    for index, raw in enumerate(events):
        if type(raw) is not dict:
            results[index] = {
                "index": index,
                "status": REJECTED,
                "errors": {"non_field_errors": ["Each event must be a JSON object."]},
            }
            continue
        errors: dict[str, list[str]] = {}
        name = raw.get("event")
        if type(name) is not str or not name:
            errors["event"] = ["Required: a non-empty string."]
        elif len(name) > MAX_EVENT_NAME_LENGTH or not _EVENT_NAME_CHARS.issuperset(name):
            errors["event"] = [f"Use 1–{MAX_EVENT_NAME_LENGTH} letters, digits or _ . : / -."]
        account = raw.get("account")
        if type(account) is not str or not account:
            errors["account"] = ["Required: the account's external id."]
        elif not id_regex.match(account):
            errors["account"] = ["Not a valid external id."]
        key = raw.get("idempotency_key")
        if type(key) is not str or not key:
            errors["idempotency_key"] = ["Required: a non-empty string unique per event."]
        elif len(key) > MAX_KEY_LENGTH:
            errors["idempotency_key"] = [f"At most {MAX_KEY_LENGTH} characters."]
        elif not key.isprintable():
            errors["idempotency_key"] = ["Use printable characters only."]
        stamp = raw.get("timestamp")
        occurred_at = None
        if type(stamp) is not str:
            errors["timestamp"] = ["Required: an ISO 8601 date-time with a time zone."]
        else:
            try:
                occurred_at = fromisoformat(stamp)
                if occurred_at.tzinfo is not None:
                    occurred_at = occurred_at.astimezone(UTC)
            except (ValueError, OverflowError):  # overflow: e.g. year 9999 at UTC-5
                errors["timestamp"] = ["Not an ISO 8601 date-time (or out of range)."]
                occurred_at = None
            else:
                if occurred_at.tzinfo is None:
                    errors["timestamp"] = ["Include a time zone (e.g. 'Z' or '+00:00')."]
                    occurred_at = None
                elif occurred_at > latest:
                    errors["timestamp"] = ["Too far in the future (more than 5 minutes ahead)."]
                elif occurred_at < earliest:
                    errors["timestamp"] = [
                        f"Older than this tenant's late-arrival window of {tenant.event_late_arrival_days} days."
                    ]
        properties = raw.get("properties")
        if properties is None:
            properties = {}
        if type(properties) is not dict:
            errors["properties"] = ["Must be a JSON object."]
        if errors:
            results[index] = {"index": index, "status": REJECTED, "errors": errors}
            continue
        pending.append((index, account, name, occurred_at, key, properties))
        external_ids.add(account)

    accounts = _resolve_accounts(tenant, external_ids, actor=actor)
    specs_by_event = meters_by_event(tenant.pk)
    rows: list[_Row] = []
    seen_keys: dict[str, int] = {}
    for index, account, name, occurred_at, key, properties in pending:
        account_id = accounts.get(account)
        if account_id is None:
            results[index] = {
                "index": index,
                "status": REJECTED,
                "errors": {"account": [f"Unknown account {account!r}."]},
            }
            continue
        encoded = _encode_properties(properties)
        try:
            size = len(encoded.encode())
        except UnicodeEncodeError:
            size = -1  # a lone surrogate (e.g. "\ud800"): not text PostgreSQL or SQLite can store
        if size < 0 or "\\u0000" in encoded:
            results[index] = {
                "index": index,
                "status": REJECTED,
                "errors": {"properties": ["Strings may not contain NUL characters or unpaired surrogates."]},
            }
            continue
        if size > MAX_PROPERTIES_BYTES:
            results[index] = {
                "index": index,
                "status": REJECTED,
                "errors": {"properties": [f"Oversized: at most {MAX_PROPERTIES_BYTES} bytes as JSON."]},
            }
            continue
        specs = specs_by_event.get(name)
        if specs:
            meter_errors = _meter_errors(specs, properties)
            if meter_errors:
                results[index] = {"index": index, "status": REJECTED, "errors": meter_errors}
                continue
        if key in seen_keys:
            # The same key twice in one batch: the first occurrence is the event.
            results[index] = {"index": index, "status": DUPLICATE}
            continue
        seen_keys[key] = index
        rows.append((index, account_id, name, occurred_at, key, properties, encoded))

    outcome = IngestResult(results=results)
    if rows:
        new_keys, touched = write_events(
            tenant.pk,
            rows,
            specs_by_event=specs_by_event,
            received_at=now,
            external_ids={account_id: external_id for external_id, account_id in accounts.items()},
        )
        outcome.touched_account_ids = touched
        for row in rows:
            results[row[0]] = {"index": row[0], "status": ACCEPTED if row[4] in new_keys else DUPLICATE}
    for item in results:
        status = item["status"]
        if status == ACCEPTED:
            outcome.accepted += 1
        elif status == DUPLICATE:
            outcome.duplicates += 1
        else:
            outcome.rejected += 1
    return outcome


def _resolve_accounts(tenant: Tenant, external_ids: set[str], *, actor: Actor) -> dict[str, int]:
    if not external_ids:
        return {}
    found = dict(
        CustomerAccount.objects.for_tenant(tenant).filter(external_id__in=external_ids).values_list("external_id", "id")
    )
    missing = external_ids - found.keys()
    if missing and tenant.auto_create_accounts:
        with transaction.atomic():
            CustomerAccount.objects.bulk_create(
                [CustomerAccount(tenant=tenant, external_id=x, name=x) for x in sorted(missing)], ignore_conflicts=True
            )
            created = CustomerAccount.objects.for_tenant(tenant).filter(external_id__in=missing)
            for account in created:
                record_audit(
                    tenant,
                    actor=actor,
                    action="account.auto_created",
                    obj=account,
                    after=snapshot(account, ["external_id", "name"]),
                )
                found[account.external_id] = account.pk
    return found


def _copy_escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace("\t", "\\t").replace("\n", "\\n").replace("\r", "\\r")


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
    with transaction.atomic(), connection.cursor() as cursor:
        if vendor == "postgresql":
            cursor.execute("SELECT pg_advisory_xact_lock_shared(%s, %s)", [_ADVISORY_LOCK_NAMESPACE, tenant_id])
            cursor.execute(
                "INSERT INTO usage_ingestkey (tenant_id, key, created_at) "
                "SELECT %s, k, %s FROM unnest(%s::varchar[]) AS k "
                "ON CONFLICT DO NOTHING RETURNING key",
                [tenant_id, received_at, keys],
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
            return new_keys, set()
        fresh = [r for r in rows if r[4] in new_keys]
        if vendor == "postgresql":
            received = received_at.isoformat()
            buffer = io.StringIO()
            write = buffer.write
            for _, account_id, name, occurred_at, key, _, encoded in fresh:
                write(
                    f"{tenant_id}\t{account_id}\t{name}\t{occurred_at.isoformat()}\t{received}\t"
                    f"{_copy_escape(key)}\t{_copy_escape(encoded)}\n"
                )
            buffer.seek(0)
            cursor.copy_expert(
                "COPY usage_event (tenant_id, account_id, event, occurred_at, received_at, idempotency_key, "
                "properties) FROM STDIN",
                buffer,
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
        if touched:
            # Cached answers are keyed by external id (a warm check reads no table).
            if external_ids is None:
                external_ids = dict(
                    CustomerAccount.objects.for_tenant(tenant_id)
                    .filter(pk__in=touched)
                    .values_list("id", "external_id")
                )
            refs = [external_ids[account_id] for account_id in touched if account_id in external_ids]
            transaction.on_commit(lambda: cache.invalidate([cache.USAGE], tenant_id, refs))
    return new_keys, touched


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
                entry[0] += properties[spec.property]
                entry[1] += 1
            elif aggregation == Aggregation.MAX:
                value = properties[spec.property]
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
    stamp = now if vendor == "postgresql" else connection.ops.adapt_datetimefield_value(now)
    for buckets, value_sql in (
        (additive, "usage_usagerollup.value + EXCLUDED.value"),
        (maxima, f"{greatest}(usage_usagerollup.value, EXCLUDED.value)"),
    ):
        if not buckets:
            continue
        # Sorted: concurrent batches lock rollup rows in the same order (no deadlock).
        ordered = sorted(buckets.items())
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
                    for v in (tenant_id, a, m, d.isoformat(), value, events, stamp)
                ],
            )
    return {bucket[0] for bucket in additive} | {bucket[0] for bucket in maxima}


# --- Feature-gate hits -----------------------------------------------------------------


def record_feature_gate_hit(
    tenant: Tenant,
    *,
    account_id: int,
    feature_key: str,
    quantity: int,
    reason: str,
    now: datetime.datetime | None = None,
) -> None:
    """A denied check or a use of a locked feature, stored as an ordinary event for trigger rules."""
    now = now or timezone.now()
    properties = {"feature": feature_key, "quantity": quantity, "reason": reason}
    encoded = json.dumps(properties, separators=(",", ":"))
    row: _Row = (0, account_id, FEATURE_GATE_HIT_EVENT, now, f"gate:{uuid.uuid4().hex}", properties, encoded)
    write_events(tenant.pk, [row], specs_by_event=meters_by_event(tenant.pk), received_at=now)


# --- Rebuild -------------------------------------------------------------------------------


def rebuild_rollups(tenant: Tenant, *, meter_ids: Iterable[int] | None = None) -> int:
    """Recompute rollups (and unique-count values) of a tenant's meters from raw events.

    Gives the same numbers as the incremental path (tested property-based). Holds the
    tenant's rollup lock exclusively, so no ingest interleaves. Returns rollup rows written.
    """
    vendor = connection.vendor
    meters = Meter.objects.for_tenant(tenant).order_by("id")
    if meter_ids is not None:
        meters = meters.filter(id__in=list(meter_ids))
    meters = list(meters)
    if vendor == "postgresql":
        day_sql = "(occurred_at AT TIME ZONE 'UTC')::date"

        def prop_type(is_number: bool) -> str:
            kinds = "('number')" if is_number else "('number', 'string')"
            return f"jsonb_typeof(properties -> %s) IN {kinds}"

        int_sql = "trunc((properties ->> %s)::numeric)::bigint"
        text_sql = "(properties ->> %s)"
        now_sql = "now()"
    else:
        day_sql = "date(occurred_at)"

        def prop_type(is_number: bool) -> str:
            kinds = "('integer', 'real')" if is_number else "('integer', 'real', 'text')"
            return f"json_type(properties, %s) IN {kinds}"

        int_sql = "CAST(json_extract(properties, %s) AS INTEGER)"
        text_sql = "CAST(json_extract(properties, %s) AS TEXT)"
        now_sql = "CURRENT_TIMESTAMP"

    def path(prop: str) -> str:
        return prop if vendor == "postgresql" else '$."' + prop.replace('"', '\\"') + '"'

    written = 0
    with transaction.atomic(), connection.cursor() as cursor:
        if vendor == "postgresql":
            cursor.execute("SELECT pg_advisory_xact_lock(%s, %s)", [_ADVISORY_LOCK_NAMESPACE, tenant.pk])
        ids = [m.pk for m in meters]
        if not ids:
            return 0
        placeholders = ", ".join(["%s"] * len(ids))
        for table in ("usage_usagerollup", "usage_usagedistinctvalue"):
            cursor.execute(
                f"DELETE FROM {table} WHERE tenant_id = %s AND meter_id IN ({placeholders})",  # noqa: S608 (constants)
                [tenant.pk, *ids],
            )
        insert = "INSERT INTO usage_usagerollup (tenant_id, account_id, meter_id, day, value, event_count, updated_at) "
        for meter in meters:
            base = "FROM usage_event WHERE tenant_id = %s AND event = %s"
            params: list[Any] = [tenant.pk, meter.event_name]
            if meter.aggregation == Aggregation.COUNT or not meter.property:
                cursor.execute(
                    insert
                    + f"SELECT tenant_id, account_id, %s, {day_sql}, COUNT(*), COUNT(*), {now_sql} "
                    + base
                    + f" GROUP BY tenant_id, account_id, {day_sql}",
                    [meter.pk, *params],
                )
            elif meter.aggregation in (Aggregation.SUM, Aggregation.MAX):
                agg = "SUM" if meter.aggregation == Aggregation.SUM else "MAX"
                p = path(meter.property)
                cursor.execute(
                    insert
                    + f"SELECT tenant_id, account_id, %s, {day_sql}, {agg}({int_sql}), COUNT(*), {now_sql} "
                    + base
                    + f" AND {prop_type(True)} GROUP BY tenant_id, account_id, {day_sql}",
                    [meter.pk, p, *params, p],
                )
            else:
                p = path(meter.property)
                cursor.execute(
                    "INSERT INTO usage_usagedistinctvalue (tenant_id, account_id, meter_id, day, value) "
                    f"SELECT DISTINCT tenant_id, account_id, %s, {day_sql}, {text_sql} "
                    + base
                    + f" AND {prop_type(False)}",
                    [meter.pk, p, *params, p],
                )
                cursor.execute(
                    insert + f"SELECT tenant_id, account_id, %s, {day_sql}, COUNT(DISTINCT {text_sql}), COUNT(*), "
                    f"{now_sql} " + base + f" AND {prop_type(False)} GROUP BY tenant_id, account_id, {day_sql}",
                    [meter.pk, p, *params, p],
                )
            written += cursor.rowcount
        refs = list(CustomerAccount.objects.for_tenant(tenant).values_list("external_id", flat=True))
        transaction.on_commit(lambda: cache.invalidate([cache.USAGE], tenant.pk, refs))
    return written
