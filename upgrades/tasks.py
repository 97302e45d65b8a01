"""Celery finds tasks in `<app>.tasks`; the upgrades app's live in its sub-domain packages."""

from upgrades.analytics.tasks import refresh_dashboards  # noqa: F401
from upgrades.console.tasks import sweep_console_tasks  # noqa: F401
from upgrades.offers.tasks import build_offer, build_offers_batch, sweep_offer_signals  # noqa: F401
from upgrades.offers.tasks_lifecycle import expire_offers  # noqa: F401
from upgrades.offers.tasks_messages import send_lifecycle_messages, send_lifecycle_messages_for_tenant  # noqa: F401
from upgrades.offers.tasks_trials import end_due_trials, record_trial_wins  # noqa: F401
from upgrades.rules.tasks import (  # noqa: F401
    daily_sweep,
    evaluate_dirty_accounts,
    evaluate_time_based_rules,
    sweep_dirty_accounts,
)
