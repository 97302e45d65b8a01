"""Usage events, idempotency keys and rollups.

Storage shape (see usage/migrations/0001_initial.py):
- `Event` is append-only. On PostgreSQL it is a table partitioned by month on
  `occurred_at`, with primary key (id, occurred_at) because a partitioned table's unique
  keys must include the partition key. Django sees `id` as the primary key; it is unique
  in practice (one identity sequence feeds every partition).
- That is also why idempotency can't be enforced on the events table itself: a unique
  (tenant, idempotency_key) there would have to include `occurred_at`, and a retry with a
  different timestamp would slip through. `IngestKey` is the separate, unpartitioned
  arbiter: one `INSERT ... ON CONFLICT DO NOTHING RETURNING` decides which events of a
  batch are new, so two racing identical batches count once.
- `UsageRollup` holds one number per account x meter x UTC day, upserted in the same
  transaction as the events, so reading current usage sums at most a period's days
  and never scans raw events. `UsageDistinctValue` backs unique-count meters (a daily
  unique count can't be summed into a monthly one).
"""

from __future__ import annotations

from django.db import models
from django.utils import timezone

from accounts.models import CustomerAccount
from accounts.tenancy import AppendOnly, TenantOwned

# Written by entitlement checks that deny, and accepted from vendors who send their own.
FEATURE_GATE_HIT_EVENT = "feature_gate_hit"


class Event(AppendOnly, TenantOwned):
    """One thing that happened in the vendor's product: metered usage, or any other signal
    (onboarding milestone, support ticket, survey answer, seat change, feature-gate hit)."""

    id = models.BigAutoField(primary_key=True)
    account = models.ForeignKey("accounts.CustomerAccount", on_delete=models.CASCADE, related_name="+")
    event = models.CharField(max_length=100)
    occurred_at = models.DateTimeField()
    received_at = models.DateTimeField(default=timezone.now)
    idempotency_key = models.CharField(max_length=255)
    properties = models.JSONField(default=dict, blank=True)

    class Meta:
        indexes = [models.Index(fields=["tenant", "account", "event", "occurred_at"], name="usage_event_lookup")]

    def __str__(self) -> str:
        return f"{self.event} @ {self.occurred_at:%Y-%m-%d %H:%M:%S}"


class IngestKey(TenantOwned):
    """The idempotency arbiter: a (tenant, key) row exists iff an event with that key was stored."""

    pk = models.CompositePrimaryKey("tenant_id", "key")
    # The primary key leads with tenant_id, so no second index. No database-level FK either:
    # its per-row check would share-lock the tenant row 1,000 times a batch, from every
    # concurrent ingest. Tenant deletion still cascades here through the ORM.
    tenant = models.ForeignKey(
        "accounts.Tenant",
        on_delete=models.CASCADE,
        related_name="+",
        editable=False,
        db_index=False,
        db_constraint=False,
    )
    key = models.CharField(max_length=255)
    created_at = models.DateTimeField(default=timezone.now)

    def __str__(self) -> str:
        return self.key


class UsageRollup(TenantOwned):
    """One meter's number for one account on one UTC day.

    `value` is the count (count meters), the sum (sum meters), the maximum (max meters)
    or the day's distinct count (unique-count meters; periods use UsageDistinctValue).
    The natural key is the primary key and the only index: every ingest upserts here.
    """

    pk = models.CompositePrimaryKey("tenant_id", "account_id", "meter_id", "day")
    tenant = models.ForeignKey(
        "accounts.Tenant", on_delete=models.CASCADE, related_name="+", editable=False, db_index=False
    )
    account = models.ForeignKey("accounts.CustomerAccount", on_delete=models.CASCADE, related_name="+", db_index=False)
    meter = models.ForeignKey("catalog.Meter", on_delete=models.CASCADE, related_name="+", db_index=False)
    day = models.DateField()
    value = models.BigIntegerField(default=0)
    event_count = models.BigIntegerField(default=0)
    updated_at = models.DateTimeField(default=timezone.now)

    def __str__(self) -> str:
        return f"{self.meter_id}/{self.account_id} {self.day}: {self.value}"


class UsageDistinctValue(TenantOwned):
    """A property value seen by a unique-count meter for an account on a day."""

    pk = models.CompositePrimaryKey("tenant_id", "account_id", "meter_id", "day", "value")
    tenant = models.ForeignKey(
        "accounts.Tenant", on_delete=models.CASCADE, related_name="+", editable=False, db_index=False
    )
    account = models.ForeignKey("accounts.CustomerAccount", on_delete=models.CASCADE, related_name="+", db_index=False)
    meter = models.ForeignKey("catalog.Meter", on_delete=models.CASCADE, related_name="+", db_index=False)
    day = models.DateField()
    value = models.CharField(max_length=200)


class UsageAccount(CustomerAccount):
    """A customer account seen from usage: the staff page of its entitlements, usage and events.

    A proxy (no table), so the admin can show a read-only page per account beside the
    accounts app's editable one; accounts never imports usage.
    """

    class Meta:
        proxy = True
        verbose_name = "usage & entitlements"
        verbose_name_plural = "usage & entitlements"


class PendingInvalidation(TenantOwned):
    """An account whose cached answers could not be invalidated after a commit (Redis down).

    Written only on failure (the happy path costs nothing); `usage.cache.retry_pending_invalidations`
    (beat) replaces its tokens once the cache answers and deletes the row. `ref` is the external
    id, as cache keys are.
    """

    pk = models.CompositePrimaryKey("tenant_id", "ref")
    tenant = models.ForeignKey(
        "accounts.Tenant", on_delete=models.CASCADE, related_name="+", editable=False, db_index=False
    )
    ref = models.CharField(max_length=255)
    created_at = models.DateTimeField(default=timezone.now)

    def __str__(self) -> str:
        return self.ref
