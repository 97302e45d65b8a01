"""MRR movements, NRR and GRR from a frame of licence changes (pure pandas; no database here).

Input frame `changes` (one row per LicenseChange): account_id, effective_at (aware), mrr_after (minor units),
currency, status (the licence status after the change), tier (the tier key after the change).
Input frame `accounts` (optional): account_id, segment.

Definitions (upgrades/analytics/definitions.py): each account's MRR at the end of each month is the
mrr_after of its latest change; a month's movements compare the end of the previous month with the end
of this one, so mid-month changes net out and the identity holds exactly for every account, hence for
every sum of accounts.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

GROUP_BY = ("segment", "tier", "cohort", "currency")
AMOUNTS = ("mrr_start", "mrr_end", "new", "expansion", "contraction", "churn", "reactivation")
COUNTS = ("customers_start", "customers_end", "customers_expanded")
NOT_MRR_STATUSES = ("trialing",)


@dataclass(frozen=True)
class MonthlyState:
    """Account x month matrices at each month's end (months ascending, the first one before the range)."""

    months: pd.PeriodIndex
    mrr: pd.DataFrame  # int64, 0 where not paying
    currency: pd.DataFrame  # object
    tier: pd.DataFrame  # object
    first_paid: pd.Series  # Period (month) of the first change with MRR > 0, per account


def _month(series: pd.Series) -> pd.Series:
    return series.dt.tz_convert("UTC").dt.tz_localize(None).dt.to_period("M")


def monthly_state(changes: pd.DataFrame, start: pd.Period, end: pd.Period) -> MonthlyState:
    """MRR, currency and tier of every account at the end of each month from `start - 1` to `end`."""
    months = pd.period_range(start - 1, end, freq="M")
    frame = changes.loc[:, ["account_id", "effective_at", "mrr_after", "currency", "status", "tier"]].copy()
    frame["effective_at"] = pd.to_datetime(frame["effective_at"], utc=True)
    frame["month"] = _month(frame["effective_at"])
    paying = (frame["mrr_after"] > 0) & ~frame["status"].isin(NOT_MRR_STATUSES)
    frame["mrr"] = np.where(paying, frame["mrr_after"], 0).astype("int64")
    first_paid = frame.loc[paying].groupby("account_id")["month"].min()
    frame = frame.loc[frame["month"] <= end]
    # Changes before the range collapse onto its opening month (only the latest one matters).
    frame.loc[frame["month"] < months[0], "month"] = months[0]
    if "id" in changes.columns:
        frame["id"] = changes.loc[frame.index, "id"]
        frame = frame.sort_values(["account_id", "effective_at", "id"], kind="stable")
    else:
        frame = frame.sort_values(["account_id", "effective_at"], kind="stable")
    last = frame.groupby(["account_id", "month"], sort=False)[["mrr", "currency", "tier"]].last()

    def wide(column: str, fill: object) -> pd.DataFrame:
        table = last[column].unstack("month").reindex(columns=months)
        return table.ffill(axis=1).fillna(fill)

    mrr = wide("mrr", 0).astype("int64")
    return MonthlyState(
        months=months, mrr=mrr, currency=wide("currency", ""), tier=wide("tier", ""), first_paid=first_paid
    )


def _account_months(state: MonthlyState) -> pd.DataFrame:
    """One row per (account, currency, month) with MRR at the start and the end of the month."""
    months = state.months
    mrr, cur, tier = state.mrr.to_numpy(), state.currency.to_numpy(), state.tier.to_numpy()
    accounts = state.mrr.index.to_numpy()
    n_accounts, n_months = mrr.shape[0], len(months) - 1
    start, end = mrr[:, :-1].ravel(), mrr[:, 1:].ravel()
    cur_s, cur_e = cur[:, :-1].ravel(), cur[:, 1:].ravel()
    tier_s, tier_e = tier[:, :-1].ravel(), tier[:, 1:].ravel()
    account = np.repeat(accounts, n_months)
    period = np.tile(np.arange(1, n_months + 1), n_accounts)
    same = (cur_s == cur_e) | (start == 0) | (end == 0)
    # The side of the start currency (the whole row when the currency did not change).
    side_a = pd.DataFrame(
        {
            "account_id": account,
            "month": period,
            "currency": np.where(start > 0, cur_s, cur_e),
            "tier": np.where(start > 0, tier_s, tier_e),
            "start": start,
            "end": np.where(same, end, 0),
        }
    )
    # A currency switch: the new currency's side starts at 0.
    switch = ~same
    side_b = pd.DataFrame(
        {
            "account_id": account[switch],
            "month": period[switch],
            "currency": cur_e[switch],
            "tier": tier_e[switch],
            "start": 0,
            "end": end[switch],
        }
    )
    rows = pd.concat([side_a, side_b], ignore_index=True)
    rows = rows.loc[(rows["start"] > 0) | (rows["end"] > 0)].reset_index(drop=True)
    rows["ordinal"] = months.asi8[rows["month"].to_numpy()]
    rows["period"] = np.asarray([str(m) for m in months], dtype=object)[rows["month"].to_numpy()]
    return rows


def _classify(rows: pd.DataFrame, first_paid: pd.Series) -> pd.DataFrame:
    start, end = rows["start"].to_numpy(), rows["end"].to_numpy()
    never = np.iinfo(np.int64).max
    ordinals = pd.Series(pd.PeriodIndex(first_paid.to_numpy(), freq="M").asi8, index=first_paid.index)
    first_ordinal = rows["account_id"].map(ordinals).fillna(never).to_numpy(dtype="int64")
    period_ordinal = rows["ordinal"].to_numpy()
    arrived = (start == 0) & (end > 0)
    staying = (start > 0) & (end > 0)
    rows["new"] = np.where(arrived & (first_ordinal >= period_ordinal), end, 0)
    rows["reactivation"] = np.where(arrived & (first_ordinal < period_ordinal), end, 0)
    rows["expansion"] = np.where(staying & (end > start), end - start, 0)
    rows["contraction"] = np.where(staying & (end < start), start - end, 0)
    rows["churn"] = np.where((start > 0) & (end == 0), start, 0)
    rows["mrr_start"], rows["mrr_end"] = start, end
    rows["customers_start"] = (start > 0).astype("int64")
    rows["customers_end"] = (end > 0).astype("int64")
    rows["customers_expanded"] = (rows["expansion"].to_numpy() > 0).astype("int64")
    return rows


def revenue_periods(
    changes: pd.DataFrame,
    start: pd.Period,
    end: pd.Period,
    *,
    group_by: str | None = None,
    accounts: pd.DataFrame | None = None,
) -> pd.DataFrame:
    """One row per (period, currency[, group]) with every amount of definitions.FIELDS, NRR and GRR."""
    if group_by is not None and group_by not in GROUP_BY:
        raise ValueError(f"group_by must be one of {GROUP_BY}")
    columns = ["period", "currency", *(["group"] if group_by else []), *AMOUNTS, *COUNTS, "nrr", "grr"]
    if changes.empty:
        return pd.DataFrame(columns=columns)
    state = monthly_state(changes, start, end)
    rows = _classify(_account_months(state), state.first_paid)
    keys = ["period", "currency"]
    if group_by == "segment":
        segments = accounts.set_index("account_id")["segment"] if accounts is not None else pd.Series(dtype=object)
        rows["group"] = rows["account_id"].map(segments).replace("", np.nan).fillna("none")
    elif group_by == "cohort":
        rows["group"] = rows["account_id"].map(state.first_paid).map(lambda p: str(p) if pd.notna(p) else "none")
    elif group_by == "tier":
        rows["group"] = rows["tier"].replace("", "none")
    elif group_by == "currency":
        rows["group"] = rows["currency"]
    if group_by:
        keys.append("group")
    table = rows.groupby(keys, sort=True)[[*AMOUNTS, *COUNTS]].sum().reset_index()
    if not group_by:
        # Every month of the range appears for every currency seen, even a month without any customer.
        currencies = sorted(table["currency"].unique())
        full = pd.MultiIndex.from_product([[str(m) for m in state.months[1:]], currencies], names=keys)
        table = table.set_index(keys).reindex(full, fill_value=0).reset_index()
    base = table["mrr_start"].astype("float64")
    with np.errstate(divide="ignore", invalid="ignore"):
        kept = base - table["contraction"] - table["churn"]
        table["grr"] = np.where(base > 0, (kept / base).round(4), np.nan)
        table["nrr"] = np.where(base > 0, ((kept + table["expansion"]) / base).round(4), np.nan)
    for column in (*AMOUNTS, *COUNTS):
        table[column] = table[column].astype("int64")
    return table.loc[:, columns].reset_index(drop=True)


def periods_as_dicts(table: pd.DataFrame) -> list[dict]:
    """The API's / page's rows: ints as int, ratios as float or None."""
    out = []
    for record in table.to_dict("records"):
        row = {key: (int(v) if key in AMOUNTS or key in COUNTS else v) for key, v in record.items()}
        for ratio in ("nrr", "grr"):
            value = record.get(ratio)
            row[ratio] = None if value is None or (isinstance(value, float) and np.isnan(value)) else float(value)
        out.append(row)
    return out
