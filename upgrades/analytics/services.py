"""Revenue metrics for one tenant: the figures the API, the pages and the CSV exports share."""

from __future__ import annotations

import pandas as pd

from accounts.models import Tenant
from upgrades.analytics import selectors
from upgrades.analytics.revenue import periods_as_dicts, revenue_periods, revenue_tables


def revenue_metrics(tenant: Tenant, *, start: pd.Period, end: pd.Period, group_by: str | None = None) -> list[dict]:
    """MRR movements, NRR and GRR per month (and currency, and group) from `start` to `end` inclusive."""
    until = (end + 1).to_timestamp().tz_localize("UTC")
    changes = selectors.license_changes_frame(tenant, until=until.to_pydatetime())
    accounts = selectors.accounts_frame(tenant) if group_by == "segment" else None
    table = revenue_periods(changes, start, end, group_by=group_by, accounts=accounts)
    return periods_as_dicts(table)


def revenue_report(
    tenant: Tenant, *, start: pd.Period, end: pd.Period, group_bys: tuple[str | None, ...]
) -> dict[str | None, list[dict]]:
    """Several groupings at once: the history is read and worked out once."""
    until = (end + 1).to_timestamp().tz_localize("UTC")
    changes = selectors.license_changes_frame(tenant, until=until.to_pydatetime())
    accounts = selectors.accounts_frame(tenant) if "segment" in group_bys else None
    tables = revenue_tables(changes, start, end, group_bys=group_bys, accounts=accounts)
    return {group_by: periods_as_dicts(table) for group_by, table in tables.items()}
