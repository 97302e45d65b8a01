"""Condition kinds of trigger rules and the tree that composes them (see base.py for the three faces)."""

from upgrades.rules.conditions import account_kinds, event_kinds, usage_kinds  # noqa: F401  (registers kinds)
from upgrades.rules.conditions.base import (
    KINDS,
    AccountData,
    Condition,
    ConditionError,
    EvalContext,
    MeterInfo,
    Result,
    RuleCatalog,
    SqlQuery,
)
from upgrades.rules.conditions.tree import All, AnyOf, Not, parse_condition

__all__ = [
    "KINDS",
    "AccountData",
    "All",
    "AnyOf",
    "Condition",
    "ConditionError",
    "EvalContext",
    "MeterInfo",
    "Not",
    "Result",
    "RuleCatalog",
    "SqlQuery",
    "parse_condition",
]
