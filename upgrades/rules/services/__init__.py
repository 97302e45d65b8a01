"""Writes of trigger rules: governance, evaluation (signals), signal lifecycle, scores, dirty marks."""

from upgrades.rules.services.evaluation import (
    EvaluationReport,
    Fired,
    evaluate_dirty_accounts,
    evaluate_rules,
    mark_accounts_dirty,
)
from upgrades.rules.services.governance import (
    TRANSITIONS,
    approve_rule,
    create_rule,
    four_eyes_refusal,
    retire_rule,
    return_rule_to_draft,
    submit_rule,
    update_rule,
    validate_condition,
)
from upgrades.rules.services.lifecycle import (
    dismiss_signal,
    dismiss_signals_by_engine,
    expire_stale_signals,
    mark_signal_acted_on,
    mark_signals_acted_on,
)
from upgrades.rules.services.scores import recompute_scores

__all__ = [
    "TRANSITIONS",
    "EvaluationReport",
    "Fired",
    "approve_rule",
    "create_rule",
    "dismiss_signal",
    "dismiss_signals_by_engine",
    "evaluate_dirty_accounts",
    "evaluate_rules",
    "expire_stale_signals",
    "four_eyes_refusal",
    "mark_accounts_dirty",
    "mark_signal_acted_on",
    "mark_signals_acted_on",
    "recompute_scores",
    "retire_rule",
    "return_rule_to_draft",
    "submit_rule",
    "update_rule",
    "validate_condition",
]
