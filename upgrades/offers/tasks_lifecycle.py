"""Celery tasks of the offer lifecycle: the expiry sweep (beat). Safe to run twice (state checks under row locks)."""

from __future__ import annotations

from celery import shared_task

LIMITS = {"soft_time_limit": 240, "time_limit": 300}


@shared_task(acks_late=True, **LIMITS)
def expire_offers() -> int:
    """Beat: offers past their expiry close as expired, tenant by tenant (row-level security)."""
    from upgrades.offers.services.expiry import expire_offers as sweep

    return sweep()
