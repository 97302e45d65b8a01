"""Celery task of the console: the task sweep (beat). Idempotent (one task per signal and per talk request)."""

from __future__ import annotations

from celery import shared_task

LIMITS = {"soft_time_limit": 240, "time_limit": 300}


@shared_task(acks_late=True, **LIMITS)
def sweep_console_tasks() -> int:
    """Beat: open signals and "talk to a person" requests become tasks for the account's CSM, tenant by tenant."""
    from accounts.tenancy import each_tenant
    from upgrades.console.services.tasks import tasks_from_signals, tasks_from_talk_requests

    made = 0
    for tenant in each_tenant():
        made += tasks_from_signals(tenant) + tasks_from_talk_requests(tenant)
    return made
