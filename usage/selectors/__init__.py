"""Reads of the usage app: effective entitlements, current usage, the check answer, event queries.

Effective entitlements of an account = its licence's tier + add-ons + active grants
(trials, CSM grants) applied to the catalog; no active licence -> the tenant's published
free tier. The catalog combines a tier with add-ons (`catalog.selectors.entitlements_for`:
add-on packs add to the tier's limit); a granted tier overlays the licence tier, so per
feature the more generous of the two applies (a trial never takes anything away).

Usage comes from daily rollups, never raw events. Windows are UTC days: a calendar month,
the licence's billing period (from the UTC day it started up to the day it ends), or the
last N days including today.

Modules, by sub-domain (a package since the module passed ~400 lines, STYLE.md):
- `states`: plan, usage and answer types; a feature's state from its rule and usage
- `entitlements`: the effective plan (licence + add-ons + grants), the cached per-account answer, the check
- `windows`: meter windows and values from rollups
- `events`: raw event queries
- `standings`: the staff account list's standings for many accounts in a fixed number of queries
- `overview`: one account's staff page (entitlements table, grants, events, usage charts)
Only the names other modules use are re-exported here; the rest live in their module.
"""

from __future__ import annotations

from usage.selectors.entitlements import check_entitlement, compute_plan, get_account_entitlements
from usage.selectors.events import list_events
from usage.selectors.overview import account_usage_overview
from usage.selectors.standings import AccountStanding, Standing, account_standings
from usage.selectors.states import ENTITLED_STATUSES, EntitlementState

__all__ = [
    "AccountStanding",
    "ENTITLED_STATUSES",
    "EntitlementState",
    "Standing",
    "account_standings",
    "account_usage_overview",
    "check_entitlement",
    "compute_plan",
    "get_account_entitlements",
    "list_events",
]
