"""Event queries (for trigger rules, the console and analytics)."""

from __future__ import annotations

import datetime
from collections.abc import Iterable

from django.db.models import Count
from django.db.models.query import QuerySet

from accounts.models import CustomerAccount, Tenant
from usage.models import Event


def list_events(
    tenant: Tenant,
    *,
    account: CustomerAccount | None = None,
    event: str | None = None,
    since: datetime.datetime | None = None,
    until: datetime.datetime | None = None,
) -> QuerySet[Event]:
    """Raw events, newest first. Give `since` so PostgreSQL prunes partitions."""
    qs = Event.objects.for_tenant(tenant).order_by("-occurred_at", "-id")
    if account is not None:
        qs = qs.filter(account=account)
    if event:
        qs = qs.filter(event=event)
    if since is not None:
        qs = qs.filter(occurred_at__gte=since)
    if until is not None:
        qs = qs.filter(occurred_at__lt=until)
    return qs


def count_events(
    tenant: Tenant,
    *,
    event: str,
    since: datetime.datetime,
    until: datetime.datetime | None = None,
    account_ids: Iterable[int] | None = None,
) -> dict[int, int]:
    """Events named `event` per account in [since, until): e.g. gate hits in the last 14 days."""
    qs = Event.objects.for_tenant(tenant).filter(event=event, occurred_at__gte=since)
    if until is not None:
        qs = qs.filter(occurred_at__lt=until)
    if account_ids is not None:
        qs = qs.filter(account_id__in=list(account_ids))
    return dict(qs.values("account_id").annotate(n=Count("id")).values_list("account_id", "n"))
