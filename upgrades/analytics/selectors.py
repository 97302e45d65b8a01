"""Reads for analytics: one tenant's licence-change history as a pandas frame (never another tenant's)."""

from __future__ import annotations

import pandas as pd
from django.db.models.fields.json import KT

from accounts.models import CustomerAccount, Tenant
from billing.models import LicenseChange

CHANGE_COLUMNS = ["id", "account_id", "effective_at", "mrr_after", "currency", "status", "tier"]


def license_changes_frame(tenant: Tenant, *, until=None) -> pd.DataFrame:
    """Every LicenseChange of `tenant` (optionally effective before `until`), oldest first."""
    queryset = LicenseChange.objects.filter(tenant=tenant)
    if until is not None:
        queryset = queryset.filter(effective_at__lt=until)
    rows = (
        queryset.annotate(status=KT("to_state__status"), tier=KT("to_state__tier"))
        .order_by("effective_at", "id")
        .values_list(*CHANGE_COLUMNS)
    )
    frame = pd.DataFrame.from_records(list(rows), columns=CHANGE_COLUMNS)
    frame["status"] = frame["status"].fillna("")
    frame["tier"] = frame["tier"].fillna("")
    if not frame.empty:
        frame["effective_at"] = pd.to_datetime(frame["effective_at"], utc=True)
    return frame


def accounts_frame(tenant: Tenant) -> pd.DataFrame:
    rows = CustomerAccount.objects.filter(tenant=tenant).values_list("id", "segment", "created_at")
    return pd.DataFrame.from_records(list(rows), columns=["account_id", "segment", "created_at"])
