"""The dashboard's tables as rows of display cells: the page and its CSV export render these same cells."""

from __future__ import annotations

from dataclasses import dataclass

from catalog.money import to_major
from upgrades.analytics import definitions as d

MOVEMENT_COLUMNS = [
    ("mrr_start", "MRR at start", d.MRR_START),
    ("new", "New", d.NEW),
    ("expansion", "Expansion", d.EXPANSION),
    ("contraction", "Contraction", d.CONTRACTION),
    ("churn", "Churn", d.CHURN),
    ("reactivation", "Reactivation", d.REACTIVATION),
    ("mrr_end", "MRR at end", d.MRR_END),
]
RATIO_COLUMNS = [("nrr", "NRR", d.NRR), ("grr", "GRR", d.GRR)]
AMOUNT_KEYS = {key for key, _, _ in MOVEMENT_COLUMNS}


@dataclass(frozen=True)
class Table:
    name: str
    title: str
    definition: str
    columns: list[tuple[str, str, str]]  # key, heading, definition
    source: str  # the snapshot key


def _revenue_columns(extra: list[tuple[str, str, str]]) -> list[tuple[str, str, str]]:
    return [
        ("period", "Month", d.MONTH),
        ("currency", "Currency", d.CURRENCY_RULE),
        *extra,
        *MOVEMENT_COLUMNS,
        *RATIO_COLUMNS,
        ("upgrade_rate", "Upgrade rate", d.UPGRADE_RATE),
    ]


TABLES = {
    "revenue": Table("revenue", "MRR movements by month", d.IDENTITY, _revenue_columns([]), "revenue"),
    "segment": Table(
        "segment", "Retention by segment", d.SEGMENT, _revenue_columns([("group", "Segment", d.SEGMENT)]), "by_segment"
    ),
    "cohort": Table(
        "cohort", "Retention by cohort", d.COHORT, _revenue_columns([("group", "Cohort", d.COHORT)]), "by_cohort"
    ),
    "tier": Table("tier", "Retention by tier", d.TIER, _revenue_columns([("group", "Tier", d.TIER)]), "by_tier"),
    "funnel": Table(
        "funnel", "Offer funnel", d.FUNNEL, [("step", "Step", d.FUNNEL), ("offers", "Offers", d.FUNNEL)], "funnel"
    ),
    "declines": Table(
        "declines",
        "Declines by reason",
        d.FUNNEL,
        [("reason", "Reason", d.FUNNEL), ("declines", "Declines", d.FUNNEL)],
        "declines",
    ),
    "feedback": Table(
        "feedback",
        "Feedback by segment and packaging",
        d.FEEDBACK,
        [
            ("segment", "Segment", d.SEGMENT),
            ("packaging", "Packaging", d.FEEDBACK),
            ("declines", "Declines", d.FEEDBACK),
            ("reasons", "Decline reasons", d.FEEDBACK),
            ("surveys", "Survey answers", d.FEEDBACK),
            ("satisfaction", "Satisfaction", d.FEEDBACK),
            ("perceived_value", "Perceived value", d.FEEDBACK),
            ("friction", "Friction", d.FEEDBACK),
        ],
        "feedback",
    ),
    "adoption": Table(
        "adoption",
        "Adoption of newly unlocked features after an upgrade",
        d.ADOPTION,
        [
            ("feature", "Feature", d.ADOPTION),
            ("upgrades", "Upgrades that unlocked it", d.ADOPTION),
            ("adopted", "Used it after", d.ADOPTION),
            ("used_before", "Used it before", d.ADOPTION),
            ("usage_before", "Usage, 30 days before", d.ADOPTION),
            ("usage_after", "Usage, 30 days after", d.ADOPTION),
        ],
        "adoption",
    ),
    "rules": Table(
        "rules",
        "Rule backtests next to live results",
        d.RULES_VS_LIVE,
        [
            ("rule", "Rule", d.RULES_VS_LIVE),
            ("name", "Name", d.RULES_VS_LIVE),
            ("predicted", "Backtest: would fire", d.RULES_VS_LIVE),
            ("predicted_upgraded", "Backtest: then upgraded", d.RULES_VS_LIVE),
            ("fired", "Live: fired", d.RULES_VS_LIVE),
            ("fired_upgraded", "Live: led to an upgrade", d.RULES_VS_LIVE),
        ],
        "rules",
    ),
}


def _cell(key: str, row: dict) -> str:
    value = row.get(key)
    if key in AMOUNT_KEYS:
        return str(to_major(int(value or 0), row["currency"]))
    if key in ("nrr", "grr"):
        return "" if value is None else f"{value * 100:.1f}%"
    if key == "upgrade_rate":
        base = row.get("customers_start") or 0
        return "" if not base else f"{row.get('customers_expanded', 0) / base * 100:.1f}%"
    return "" if value is None else str(value)


def table_rows(table: Table, snapshot: dict) -> list[list[str]]:
    return [[_cell(key, row) for key, _, _ in table.columns] for row in snapshot.get(table.source, [])]
