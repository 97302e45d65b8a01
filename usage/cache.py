"""Cached entitlement answers with version tokens, so a stale answer can't survive a change.

Entries are keyed by (tenant id, the account's external id), the vendor's own handle, so
a warm check reads no table at all. Two parts are cached per account, because they change
at different rates:
- the *plan* (licence + add-ons + grants applied to the catalog): changes on licence change;
- the *usage* (current meter values): changes on every ingest that touches a meter.

Each part has a version token (a random string) under its own key, and every entry stores
the token it was computed under. A reader fetches tokens and entries in one round trip
and uses an entry only when its token is current and its `valid_until` hasn't passed.
Invalidation replaces the token *after commit*; a reader racing a change either read the
old token (its entry is stored under the old token and never used again) or the new one
(and then also sees the committed rows). Deleting entries instead would let a racing
reader put a stale answer back.

`valid_until` handles what no event announces: a grant's natural expiry, a billing period
or calendar month rolling over.

The cache is an optimisation, never a dependency: with Redis unreachable a lookup is a
miss (answers come from PostgreSQL), a store is skipped, and an invalidation that fails
after commit never fails the request that committed. It is recorded durably instead
(`PendingInvalidation`, written by the failing process) and `retry_pending_invalidations`
(beat, every 30 s) replaces the tokens once Redis answers again; any later write to the
same account (even a duplicate-only retry of the batch) also replaces them.
"""

from __future__ import annotations

import datetime
import logging
import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from django.core.cache import cache
from django.db import DatabaseError, transaction
from django.utils import timezone

PLAN = "plan"
USAGE = "usage"
ENTRY_TTL_SECONDS = 3600
KINDS = (PLAN, USAGE)
logger = logging.getLogger(__name__)


def _version_key(kind: str, tenant_id: int, ref: str) -> str:
    return f"tw:usage:{kind}:ver:{tenant_id}:{ref}"


def _entry_key(kind: str, tenant_id: int, ref: str) -> str:
    return f"tw:usage:{kind}:entry:{tenant_id}:{ref}"


@dataclass
class Lookup:
    """What one round trip found: current tokens and any entries still valid under them."""

    tenant_id: int
    ref: str
    plan_version: str | None  # None: the cache is unreachable (compute, and don't store)
    usage_version: str | None
    plan: Any | None
    usage: Any | None


def lookup(tenant_id: int, ref: str, *, now: datetime.datetime) -> Lookup:
    try:
        return _lookup(tenant_id, ref, now=now)
    except Exception:  # noqa: BLE001 - any cache failure is a miss: the answer comes from PostgreSQL
        logger.warning("usage cache unreachable: answering from the database", exc_info=True)
        return Lookup(tenant_id, ref, None, None, None, None)


def _lookup(tenant_id: int, ref: str, *, now: datetime.datetime) -> Lookup:
    keys = [
        _version_key(PLAN, tenant_id, ref),
        _version_key(USAGE, tenant_id, ref),
        _entry_key(PLAN, tenant_id, ref),
        _entry_key(USAGE, tenant_id, ref),
    ]
    found = cache.get_many(keys)
    versions = []
    for key in keys[:2]:
        token = found.get(key)
        if token is None:
            token = uuid.uuid4().hex
            # add(), not set(): never overwrite a token an invalidation just wrote.
            if not cache.add(key, token, timeout=None):
                token = cache.get(key) or token
        versions.append(token)
    entries = []
    for version, key in zip(versions, keys[2:], strict=True):
        entry = found.get(key)
        if entry is not None:
            stored_version, valid_until, value = entry
            expired = valid_until is not None and now >= valid_until
            entry = None if stored_version != version or expired else value
        entries.append(entry)
    return Lookup(tenant_id, ref, versions[0], versions[1], entries[0], entries[1])


def store(
    kind: str,
    tenant_id: int,
    ref: str,
    *,
    version: str | None,
    value: Any,
    valid_until: datetime.datetime | None,
    now: datetime.datetime,
) -> None:
    if version is None:
        return  # the lookup found the cache unreachable
    timeout = ENTRY_TTL_SECONDS
    if valid_until is not None:
        timeout = max(1, min(timeout, int((valid_until - now).total_seconds()) + 1))
    try:
        cache.set(_entry_key(kind, tenant_id, ref), (version, valid_until, value), timeout=timeout)
    except Exception:  # noqa: BLE001 - a lost store is only a later miss
        logger.warning("usage cache unreachable: answer not stored", exc_info=True)


def _replace_tokens(kinds: Iterable[str], tenant_id: int, refs: Iterable[str]) -> None:
    tokens = {}
    for ref in set(refs):
        for kind in kinds:
            tokens[_version_key(kind, tenant_id, ref)] = uuid.uuid4().hex
    if tokens:
        cache.set_many(tokens, timeout=None)


def invalidate(kinds: Iterable[str], tenant_id: int, refs: Iterable[str]) -> bool:
    """Give the accounts new tokens. Call after commit (transaction.on_commit). Never raises.

    On failure (Redis down) the accounts are recorded as pending and the error logged; the
    beat sweep retries them. Returns whether the tokens were replaced now.
    """
    refs = sorted(set(refs))
    if not refs:
        return True
    try:
        _replace_tokens(kinds, tenant_id, refs)
        return True
    except Exception:  # noqa: BLE001 - the caller already committed: record, log and carry on
        logger.error(
            "usage cache invalidation failed; recorded for retry",
            exc_info=True,
            extra={"tenant_id": tenant_id, "accounts": len(refs)},
        )
        _record_pending(tenant_id, refs)
        return False


def invalidate_on_commit(kinds: Iterable[str], tenant_id: int, refs: Iterable[str]) -> None:
    """Invalidate the accounts once the current transaction commits (nothing if it rolls back)."""
    kinds, refs = tuple(kinds), sorted(set(refs))
    if refs:
        transaction.on_commit(lambda: invalidate(kinds, tenant_id, refs))


def _record_pending(tenant_id: int, refs: list[str]) -> None:
    from usage.models import PendingInvalidation

    now = timezone.now()
    try:
        with transaction.atomic():
            # created_at moves forward on a repeat failure: the sweep keeps what failed after it started.
            PendingInvalidation.objects.bulk_create(
                [PendingInvalidation(tenant_id=tenant_id, ref=ref, created_at=now) for ref in refs],
                update_conflicts=True,
                unique_fields=["tenant", "ref"],
                update_fields=["created_at"],
            )
    except DatabaseError:
        # Both stores down: entries still expire (ENTRY_TTL_SECONDS); say so loudly.
        logger.critical(
            "usage cache invalidation could not be recorded; answers may be stale up to %s s",
            ENTRY_TTL_SECONDS,
            exc_info=True,
            extra={"tenant_id": tenant_id, "accounts": refs[:50]},
        )


def retry_pending_invalidations(tenant_id: int) -> int:
    """Replace the tokens of a tenant's accounts whose invalidation failed; returns how many cleared.

    Safe to run twice and concurrently: a row is deleted only if it was recorded before this
    run replaced the tokens, so a failure recorded meanwhile stays for the next run.
    """
    from usage.models import PendingInvalidation

    started = timezone.now()
    refs = list(
        PendingInvalidation.objects.for_tenant(tenant_id)
        .filter(created_at__lte=started)
        .order_by("ref")
        .values_list("ref", flat=True)[:5000]
    )
    if not refs:
        return 0
    try:
        _replace_tokens(KINDS, tenant_id, refs)
    except Exception:  # noqa: BLE001 - still down: the rows stay for the next run
        logger.warning("usage cache still unreachable; %s invalidations pending", len(refs), exc_info=True)
        return 0
    cleared, _ = (
        PendingInvalidation.objects.for_tenant(tenant_id).filter(ref__in=refs, created_at__lte=started).delete()
    )
    return cleared
