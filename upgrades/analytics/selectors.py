"""Reads for analytics: one tenant's licence-change history as a pandas frame (never another tenant's)."""

from __future__ import annotations

import pandas as pd
from django.db import connection

from accounts.models import CustomerAccount, Tenant
from billing.models import LicenseChange

CHANGE_COLUMNS = ["id", "account_id", "effective_at", "mrr_after", "currency", "status", "tier"]


def license_changes_frame(tenant: Tenant, *, until=None) -> pd.DataFrame:
    """Every LicenseChange of `tenant` (optionally effective before `until`), oldest first.

    One raw SELECT (the table is large): times come back as epoch microseconds, not Python datetimes.
    Row-level security still holds (the tenant context), and the WHERE names the tenant too.
    """
    if connection.vendor != "postgresql":
        return _license_changes_frame_orm(tenant, until=until)
    assert LicenseChange._meta.db_table == "billing_licensechange"
    sql = (
        "SELECT id, account_id, (extract(epoch FROM effective_at) * 1000000)::bigint, mrr_after, currency, "
        "coalesce(to_state->>'status', ''), coalesce(to_state->>'tier', '') FROM billing_licensechange "
        "WHERE tenant_id = %s"
    )
    params: list = [tenant.pk]
    if until is not None:
        sql += " AND effective_at < %s"
        params.append(until)
    with connection.cursor() as cursor:
        cursor.execute(sql + " ORDER BY effective_at, id", params)
        frame = pd.DataFrame.from_records(cursor.fetchall(), columns=CHANGE_COLUMNS)
    frame["effective_at"] = pd.to_datetime(frame["effective_at"].astype("int64"), unit="us", utc=True)
    return frame


def _license_changes_frame_orm(tenant: Tenant, *, until=None) -> pd.DataFrame:
    """The same frame through the ORM, for the embedded SQLite default (small data, no PostgreSQL SQL)."""
    changes = LicenseChange.objects.for_tenant(tenant)
    if until is not None:
        changes = changes.filter(effective_at__lt=until)
    rows = [
        (pk, account_id, at, mrr, currency, (state or {}).get("status", ""), (state or {}).get("tier", ""))
        for pk, account_id, at, mrr, currency, state in changes.order_by("effective_at", "id").values_list(
            "id", "account_id", "effective_at", "mrr_after", "currency", "to_state"
        )
    ]
    frame = pd.DataFrame.from_records(rows, columns=CHANGE_COLUMNS)
    frame["effective_at"] = pd.to_datetime(frame["effective_at"], utc=True)
    return frame


def accounts_frame(tenant: Tenant) -> pd.DataFrame:
    rows = CustomerAccount.objects.filter(tenant=tenant).values_list("id", "segment", "created_at")
    return pd.DataFrame.from_records(list(rows), columns=["account_id", "segment", "created_at"])
