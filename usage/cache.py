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
"""

from __future__ import annotations

import datetime
import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from django.core.cache import cache

PLAN = "plan"
USAGE = "usage"
ENTRY_TTL_SECONDS = 3600


def _version_key(kind: str, tenant_id: int, ref: str) -> str:
    return f"tw:usage:{kind}:ver:{tenant_id}:{ref}"


def _entry_key(kind: str, tenant_id: int, ref: str) -> str:
    return f"tw:usage:{kind}:entry:{tenant_id}:{ref}"


@dataclass
class Lookup:
    """What one round trip found: current tokens and any entries still valid under them."""

    tenant_id: int
    ref: str
    plan_version: str
    usage_version: str
    plan: Any | None
    usage: Any | None


def lookup(tenant_id: int, ref: str, *, now: datetime.datetime) -> Lookup:
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
    version: str,
    value: Any,
    valid_until: datetime.datetime | None,
    now: datetime.datetime,
) -> None:
    timeout = ENTRY_TTL_SECONDS
    if valid_until is not None:
        timeout = max(1, min(timeout, int((valid_until - now).total_seconds()) + 1))
    cache.set(_entry_key(kind, tenant_id, ref), (version, valid_until, value), timeout=timeout)


def invalidate(kinds: Iterable[str], tenant_id: int, refs: Iterable[str]) -> None:
    """Give the accounts new tokens. Call after commit (transaction.on_commit)."""
    tokens = {}
    for ref in set(refs):
        for kind in kinds:
            tokens[_version_key(kind, tenant_id, ref)] = uuid.uuid4().hex
    if tokens:
        cache.set_many(tokens, timeout=None)
