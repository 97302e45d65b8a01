"""MRR movements, NRR and GRR against hand-worked frames, and the identity as a property."""

from __future__ import annotations

import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from upgrades.analytics.revenue import AMOUNTS, periods_as_dicts, revenue_periods

P = lambda s: pd.Period(s, freq="M")  # noqa: E731
_ids = iter(range(1, 10**9))


def change(account, when, mrr, currency="USD", status="active", tier="basic"):
    return {
        "id": next(_ids),
        "account_id": account,
        "effective_at": pd.Timestamp(when, tz="UTC"),
        "mrr_after": mrr,
        "currency": currency,
        "status": status,
        "tier": tier,
    }


def table(rows, start="2026-01", end="2026-06", **kwargs):
    frame = pd.DataFrame(rows)
    return {
        (r["period"], r["currency"], r.get("group")): r
        for r in periods_as_dicts(revenue_periods(frame, P(start), P(end), **kwargs))
    }


def test_new_expansion_contraction_churn_reactivation_by_hand():
    rows = [
        change(1, "2026-01-10", 1000),
        change(1, "2026-02-10", 3000, tier="pro"),  # upgrade
        change(2, "2026-02-03", 5000),
        change(2, "2026-03-20", 2000),  # downgrade
        change(1, "2026-03-10", 0, status="canceled"),  # churn
        change(1, "2026-05-01", 500),  # reactivation
    ]
    t = table(rows)
    jan, feb, mar, apr, may = (t[(m, "USD", None)] for m in ("2026-01", "2026-02", "2026-03", "2026-04", "2026-05"))
    assert (jan["mrr_start"], jan["new"], jan["mrr_end"]) == (0, 1000, 1000)
    assert (feb["new"], feb["expansion"], feb["mrr_end"]) == (5000, 2000, 8000)
    assert (mar["contraction"], mar["churn"], mar["mrr_end"]) == (3000, 3000, 2000)
    assert mar["nrr"] == pytest.approx(2000 / 8000) and mar["grr"] == pytest.approx(2000 / 8000)
    assert feb["nrr"] == pytest.approx(3.0) and feb["grr"] == 1.0
    assert apr["mrr_start"] == apr["mrr_end"] == 2000 and apr["nrr"] == 1.0
    assert (may["reactivation"], may["new"], may["mrr_end"]) == (500, 0, 2500)


def test_mid_month_changes_net_out_and_month_end_counts():
    rows = [
        change(1, "2026-01-02", 1000),
        change(1, "2026-02-03", 4000),  # up, then down again the same month
        change(1, "2026-02-20", 1500),
        change(2, "2026-02-04", 700),  # paid and cancelled within February: never a month-end customer
        change(2, "2026-02-25", 0, status="canceled"),
    ]
    feb = table(rows)[("2026-02", "USD", None)]
    assert (feb["expansion"], feb["contraction"], feb["new"], feb["churn"]) == (500, 0, 0, 0)
    assert feb["mrr_end"] == 1500


def test_trials_and_free_plans_are_not_mrr():
    rows = [
        change(1, "2026-01-05", 2000, status="trialing"),  # a trialing licence counts 0 whatever its price
        change(1, "2026-02-05", 2000, status="active"),  # converts: new in February, not January
        change(2, "2026-01-05", 0, tier="free"),  # a free plan is not a customer
    ]
    t = table(rows)
    assert t[("2026-01", "USD", None)]["mrr_end"] == 0
    assert t[("2026-01", "USD", None)]["customers_end"] == 0
    assert t[("2026-02", "USD", None)]["new"] == 2000


def test_currencies_are_reported_apart_and_never_added():
    rows = [
        change(1, "2026-01-05", 1000, "USD"),
        change(2, "2026-01-05", 900, "EUR"),
        change(3, "2026-01-05", 800, "EUR"),
        change(3, "2026-02-05", 1200, "GBP"),  # moved currency: churn in EUR, reactivation... no: it paid before
    ]
    t = table(rows)
    assert t[("2026-01", "EUR", None)]["mrr_end"] == 1700
    assert t[("2026-01", "USD", None)]["mrr_end"] == 1000
    feb_eur, feb_gbp = t[("2026-02", "EUR", None)], t[("2026-02", "GBP", None)]
    assert (feb_eur["churn"], feb_eur["mrr_end"]) == (800, 900)
    assert (feb_gbp["reactivation"], feb_gbp["new"], feb_gbp["mrr_end"]) == (1200, 0, 1200)
    grouped = table(rows, group_by="currency")
    assert grouped[("2026-01", "EUR", "EUR")]["mrr_end"] == 1700


def test_history_before_the_range_sets_the_opening_mrr():
    rows = [change(1, "2025-03-01", 1000), change(1, "2025-09-01", 1200), change(1, "2026-02-01", 1500)]
    t = table(rows)
    jan, feb = t[("2026-01", "USD", None)], t[("2026-02", "USD", None)]
    assert (jan["mrr_start"], jan["mrr_end"], jan["new"]) == (1200, 1200, 0)
    assert feb["expansion"] == 300


def test_changes_after_the_range_are_ignored():
    rows = [change(1, "2026-01-01", 1000), change(1, "2026-08-01", 0, status="canceled")]
    t = table(rows)
    assert t[("2026-06", "USD", None)]["mrr_end"] == 1000


def test_by_cohort_tier_and_segment():
    rows = [
        change(1, "2026-01-10", 1000, tier="basic"),
        change(1, "2026-02-10", 3000, tier="pro"),
        change(2, "2026-02-05", 2000, tier="pro"),
    ]
    accounts = pd.DataFrame({"account_id": [1, 2], "segment": ["smb", ""]})
    cohort = table(rows, group_by="cohort")
    assert cohort[("2026-02", "USD", "2026-01")]["expansion"] == 2000
    assert cohort[("2026-02", "USD", "2026-02")]["new"] == 2000
    tier = table(rows, group_by="tier")
    # The tier at the start of the month carries the upgrade.
    assert tier[("2026-02", "USD", "basic")]["expansion"] == 2000
    assert tier[("2026-02", "USD", "pro")]["new"] == 2000
    segment = table(rows, group_by="segment", accounts=accounts)
    assert segment[("2026-02", "USD", "smb")]["mrr_end"] == 3000
    assert segment[("2026-02", "USD", "none")]["mrr_end"] == 2000


def test_empty_history_answers_no_periods():
    assert revenue_periods(pd.DataFrame(), P("2026-01"), P("2026-02")).empty


months = st.sampled_from([f"2025-{m:02d}-{d:02d}" for m in range(1, 13) for d in (1, 15, 28)])
event = st.tuples(
    st.integers(1, 6),
    months,
    st.integers(0, 10**7),
    st.sampled_from(["USD", "EUR"]),
    st.sampled_from(["active", "active", "trialing", "canceled"]),
)


@settings(max_examples=60, deadline=None)
@given(st.lists(event, min_size=1, max_size=40), st.sampled_from([None, "cohort", "tier", "currency"]))
def test_movements_add_up_to_the_mrr_change_to_the_cent(events, group_by):
    rows = [change(a, w, m, c, s) for a, w, m, c, s in events]
    result = revenue_periods(pd.DataFrame(rows), P("2025-02"), P("2025-12"), group_by=group_by)
    for r in periods_as_dicts(result):
        assert all(r[k] >= 0 for k in AMOUNTS)
        moved = r["new"] + r["expansion"] + r["reactivation"] - r["contraction"] - r["churn"]
        assert r["mrr_end"] - r["mrr_start"] == moved
    if group_by is None:
        # Month to month the totals chain: this month's start is last month's end.
        for _currency, part in result.groupby("currency"):
            assert list(part["mrr_start"])[1:] == list(part["mrr_end"])[:-1]
