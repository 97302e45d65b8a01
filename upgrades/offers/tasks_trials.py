"""Celery tasks of trials (beat sweeps): each calls one service; safe to run twice or concurrently.

The sunset and the early-win tallies are due-time checks over `Trial.ends_at` / `starts_at` run by
beat, never long countdowns (a countdown past the broker's visibility timeout is redelivered).
Listed in upgrades/tasks.py so Celery's autodiscovery finds them.
"""

from __future__ import annotations

from celery import shared_task

SWEEP_LIMITS = {"soft_time_limit": 240, "time_limit": 300}


@shared_task(acks_late=True, **SWEEP_LIMITS)
def end_due_trials() -> int:
    """Beat: sunset every trial whose end has come (or whose grant was ended early)."""
    from upgrades.offers.services.trials import end_due_trials as sweep

    return sweep()


@shared_task(acks_late=True, **SWEEP_LIMITS)
def record_trial_wins() -> int:
    """Beat: refresh the early wins of every trial in progress."""
    from upgrades.offers.services.trials_wins import record_wins_for_active_trials

    return record_wins_for_active_trials()
