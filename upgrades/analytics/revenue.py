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

    months: list[str]  # "YYYY-MM", the opening month first
    ordinals: np.ndarray  # year * 12 + month - 1 of each month
    accounts: np.ndarray  # account ids, one per matrix row
    mrr: np.ndarray  # int64, 0 where not paying
    currency: np.ndarray  # int codes into `currencies`
    tier: np.ndarray  # int codes into `tiers`
    currencies: np.ndarray
    tiers: np.ndarray
    first_paid: np.ndarray  # month ordinal of each account's first change with MRR > 0 (NEVER when none)


NEVER = np.iinfo(np.int64).max


def _ordinal(period: pd.Period) -> int:
    return period.year * 12 + period.month - 1


def _carry_forward(values: np.ndarray, present: np.ndarray, fill) -> np.ndarray:
    """Each cell takes the latest present value at or before its column (`fill` before the first)."""
    columns = np.where(present, np.arange(present.shape[1]), 0)
    np.maximum.accumulate(columns, axis=1, out=columns)
    carried = np.take_along_axis(values, columns, axis=1)
    seen = np.maximum.accumulate(present, axis=1)
    return np.where(seen, carried, fill)


def monthly_state(changes: pd.DataFrame, start: pd.Period, end: pd.Period) -> MonthlyState:
    """MRR, currency and tier of every account at the end of each month from `start - 1` to `end`."""
    periods = pd.period_range(start - 1, end, freq="M")
    first, last = _ordinal(periods[0]), _ordinal(periods[-1])
    when = pd.to_datetime(changes["effective_at"], utc=True)
    month = (when.dt.year * 12 + when.dt.month - 1).to_numpy(dtype="int64")
    mrr_after = changes["mrr_after"].to_numpy(dtype="int64")
    paying = (mrr_after > 0) & ~changes["status"].isin(NOT_MRR_STATUSES).to_numpy()
    mrr = np.where(paying, mrr_after, 0)
    account_codes, accounts = pd.factorize(changes["account_id"], sort=True)
    currency_codes, currencies = pd.factorize(changes["currency"].fillna(""), sort=True)
    tier_codes, tiers = pd.factorize(changes["tier"].fillna(""), sort=True)
    first_paid = np.full(len(accounts), NEVER, dtype="int64")
    earliest = pd.Series(month[paying]).groupby(account_codes[paying]).min()
    first_paid[earliest.index.to_numpy()] = earliest.to_numpy()
    # Changes before the range collapse onto its opening month (only the latest one matters).
    column = np.clip(month, first, None) - first
    order_keys = [when.dt.tz_convert(None).to_numpy(dtype="datetime64[ns]").view("int64"), account_codes]
    if "id" in changes.columns:
        order_keys.insert(0, changes["id"].to_numpy())
    keep = month <= last
    order = np.lexsort(order_keys)  # by account, then time (then id)
    order = order[keep[order]]
    shape = (len(accounts), len(periods))
    values = {name: np.zeros(shape, dtype="int64") for name in ("mrr", "currency", "tier")}
    present = np.zeros(shape, dtype=bool)
    rows, cols = account_codes[order], column[order]
    # Later assignments win: within a cell the latest change is the one kept.
    values["mrr"][rows, cols] = mrr[order]
    values["currency"][rows, cols] = currency_codes[order]
    values["tier"][rows, cols] = tier_codes[order]
    present[rows, cols] = True
    return MonthlyState(
        months=[str(p) for p in periods],
        ordinals=np.array([_ordinal(p) for p in periods], dtype="int64"),
        accounts=np.asarray(accounts),
        mrr=_carry_forward(values["mrr"], present, 0),
        currency=_carry_forward(values["currency"], present, -1),
        tier=_carry_forward(values["tier"], present, -1),
        currencies=np.asarray(currencies, dtype=object),
        tiers=np.asarray(tiers, dtype=object),
        first_paid=first_paid,
    )


def _account_months(state: MonthlyState) -> pd.DataFrame:
    """One row per (account, currency, month) with MRR at the start and the end of the month."""
    mrr, cur, tier = state.mrr, state.currency, state.tier
    n_accounts, n_months = mrr.shape[0], len(state.months) - 1
    start, end = mrr[:, :-1].ravel(), mrr[:, 1:].ravel()
    cur_s, cur_e = cur[:, :-1].ravel(), cur[:, 1:].ravel()
    tier_s, tier_e = tier[:, :-1].ravel(), tier[:, 1:].ravel()
    account = np.repeat(np.arange(n_accounts), n_months)
    period = np.tile(np.arange(1, n_months + 1), n_accounts)
    active = (start > 0) | (end > 0)
    same = (cur_s == cur_e) | (start == 0) | (end == 0)
    switch = active & ~same
    a = active
    # The side of the start currency (the whole row when the currency did not change); a currency switch
    # adds the new currency's side, starting at 0.
    rows = pd.DataFrame(
        {
            "account": np.concatenate([account[a], account[switch]]),
            "month": np.concatenate([period[a], period[switch]]),
            "currency": np.concatenate([np.where(start > 0, cur_s, cur_e)[a], cur_e[switch]]),
            "tier": np.concatenate([np.where(start > 0, tier_s, tier_e)[a], tier_e[switch]]),
            "start": np.concatenate([start[a], np.zeros(switch.sum(), dtype="int64")]),
            "end": np.concatenate([np.where(same, end, 0)[a], end[switch]]),
        }
    )
    rows["ordinal"] = state.ordinals[rows["month"].to_numpy()]
    return rows


def _classify(rows: pd.DataFrame, first_paid: np.ndarray) -> pd.DataFrame:
    start, end = rows["start"].to_numpy(), rows["end"].to_numpy()
    first_ordinal = first_paid[rows["account"].to_numpy()]
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
    return aggregate(state, rows, group_by=group_by, accounts=accounts)


def revenue_tables(
    changes: pd.DataFrame,
    start: pd.Period,
    end: pd.Period,
    *,
    group_bys: tuple[str | None, ...],
    accounts: pd.DataFrame | None = None,
) -> dict[str | None, pd.DataFrame]:
    """Several groupings of one history, the account months worked out once."""
    if changes.empty:
        return {g: revenue_periods(changes, start, end, group_by=g) for g in group_bys}
    state = monthly_state(changes, start, end)
    rows = _classify(_account_months(state), state.first_paid)
    return {g: aggregate(state, rows, group_by=g, accounts=accounts) for g in group_bys}


def aggregate(
    state: MonthlyState, rows: pd.DataFrame, *, group_by: str | None, accounts: pd.DataFrame | None
) -> pd.DataFrame:
    columns = ["period", "currency", *(["group"] if group_by else []), *AMOUNTS, *COUNTS, "nrr", "grr"]
    rows = rows.copy(deep=False)
    # Group on integer codes (fast), then name the groups on the small aggregated table.
    keys = ["month", "currency", *(["group"] if group_by else [])]
    labels: np.ndarray | None = None
    if group_by == "segment":
        segments = accounts.set_index("account_id")["segment"] if accounts is not None else pd.Series(dtype=object)
        named = pd.Series(state.accounts).map(segments).fillna("").replace("", "none").to_numpy(dtype=object)
        codes, labels = pd.factorize(named)
        rows["group"] = codes[rows["account"].to_numpy()]
    elif group_by == "cohort":
        rows["group"] = state.first_paid[rows["account"].to_numpy()]
    elif group_by == "tier":
        rows["group"] = rows["tier"]
    elif group_by == "currency":
        rows["group"] = rows["currency"]
    table = rows.groupby(keys, sort=True)[[*AMOUNTS, *COUNTS]].sum().reset_index()
    if not group_by:
        # Every month of the range appears for every currency seen, even a month without any customer.
        full = pd.MultiIndex.from_product([range(1, len(state.months)), sorted(table["currency"].unique())], names=keys)
        table = table.set_index(keys).reindex(full, fill_value=0).reset_index()
    months = np.asarray(state.months, dtype=object)
    currencies = np.append(state.currencies, "")  # code -1 (never) reads as ""
    table["period"] = months[table["month"].to_numpy()]
    if group_by == "segment":
        table["group"] = np.asarray(labels, dtype=object)[table["group"].to_numpy()]
    elif group_by == "cohort":
        table["group"] = [f"{o // 12:04d}-{o % 12 + 1:02d}" if o != NEVER else "none" for o in table["group"]]
    elif group_by == "tier":
        tiers = np.append(state.tiers, "")
        table["group"] = [name or "none" for name in tiers[table["group"].to_numpy()]]
    table["currency"] = currencies[table["currency"].to_numpy()]
    if group_by == "currency":
        table["group"] = table["currency"]
    table = table.sort_values(["period", "currency", *(["group"] if group_by else [])], kind="stable")
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
