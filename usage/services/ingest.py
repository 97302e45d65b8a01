"""Event ingest: validate a parsed batch in one tight loop (no per-event serializer), answer
each event, and hand the valid ones to `writes.write_events`.

Invalid events are answered with reasons and never written.
"""

from __future__ import annotations

import datetime
import json
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from accounts.models import Tenant, external_id_validator
from accounts.services import Actor
from catalog.models import Aggregation
from usage.services.accounts import _resolve_accounts
from usage.services.values import MAX_METER_VALUE
from usage.services.writes import MeterSpec, _Row, meters_by_event, write_events

UTC = datetime.UTC
MAX_EVENTS_PER_BATCH = 1000
MAX_BATCH_BYTES: int = getattr(settings, "USAGE_MAX_BATCH_BYTES", 2 * 1024 * 1024)
MAX_PROPERTIES_BYTES = 8 * 1024
MAX_KEY_LENGTH = 255
MAX_EVENT_NAME_LENGTH = 100
MAX_DISTINCT_VALUE_LENGTH = 200
# Clocks drift: a few minutes ahead is a skewed clock, more is a bug in the sender.
MAX_FUTURE_SKEW = datetime.timedelta(minutes=5)
# external_id_validator.regex is lazy (a proxy per access): compile it once for the hot loop.
_EXTERNAL_ID = re.compile(external_id_validator.regex.pattern)
# One encoder: json.dumps(..., separators=...) would build a new JSONEncoder per event.
_encode_properties = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False).encode
_EVENT_NAME_CHARS = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_.:/-")

ACCEPTED = "accepted"
DUPLICATE = "duplicate"
REJECTED = "rejected"


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


def _accounts_to_resolve(valid: Sequence[tuple]) -> dict[str, bool]:
    """External ids of valid events -> whether an unknown one may be auto-created.

    Only the first event of each idempotency key may create its account: a later event
    with the same key is answered duplicate and must not leave an account behind.
    """
    wanted: dict[str, bool] = {}
    first_of_key: set[str] = set()
    for item in valid:
        account, key = item[1], item[4]
        is_first = key not in first_of_key
        first_of_key.add(key)
        wanted[account] = wanted.get(account, False) or is_first
    return wanted


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
    # Events that passed every check: (index, account, event, occurred_at, key, properties, properties_json).
    valid: list[tuple[int, str, str, datetime.datetime, str, dict, str]] = []
    specs_by_event = meters_by_event(tenant.pk)
    fromisoformat = datetime.datetime.fromisoformat
    id_regex = _EXTERNAL_ID

    # The tight loop: plain type checks, no serializer objects. Every check runs before any
    # account is resolved, so a rejected event never creates one (nothing half-written).
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
        valid.append((index, account, name, occurred_at, key, properties, encoded))  # type: ignore[arg-type]

    rows: list[_Row] = []
    accounts: dict[str, int] = {}
    # One transaction: accounts created for this batch exist only if its events are stored.
    with transaction.atomic():
        if valid:
            accounts = _resolve_accounts(tenant, _accounts_to_resolve(valid), actor=actor)
        seen_keys: set[str] = set()
        for index, account, name, occurred_at, key, properties, encoded in valid:
            if key in seen_keys:
                # The same key twice in one batch: the first stored occurrence is the event.
                results[index] = {"index": index, "status": DUPLICATE}
                continue
            account_id = accounts.get(account)
            if account_id is None:
                results[index] = {
                    "index": index,
                    "status": REJECTED,
                    "errors": {"account": [f"Unknown account {account!r}."]},
                }
                continue
            seen_keys.add(key)
            rows.append((index, account_id, name, occurred_at, key, properties, encoded))
        new_keys: set[str] = set()
        touched: set[int] = set()
        if rows:
            new_keys, touched = write_events(
                tenant.pk,
                rows,
                specs_by_event=specs_by_event,
                received_at=now,
                external_ids={account_id: external_id for external_id, account_id in accounts.items()},
            )
    for row in rows:
        results[row[0]] = {"index": row[0], "status": ACCEPTED if row[4] in new_keys else DUPLICATE}

    outcome = IngestResult(results=results, touched_account_ids=touched)
    for item in results:
        status = item["status"]
        if status == ACCEPTED:
            outcome.accepted += 1
        elif status == DUPLICATE:
            outcome.duplicates += 1
        else:
            outcome.rejected += 1
    return outcome
