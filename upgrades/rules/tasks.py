"""Celery tasks of trigger rules: take ids, call one service, safe to run twice (signals are
deduplicated by an arbitrated insert; dirty marks are deleted only up to the run's start)."""

from __future__ import annotations

import logging

from celery import shared_task

log = logging.getLogger(__name__)

LIMITS = {"soft_time_limit": 240, "time_limit": 300}


@shared_task(acks_late=True, **LIMITS)
def evaluate_dirty_accounts(tenant_id: int) -> int:
    """Evaluate one tenant's dirty accounts; returns how many signals fired."""
    from accounts.models import Tenant
    from upgrades.rules import services

    tenant = Tenant.objects.filter(pk=tenant_id).first()
    if tenant is None:
        return 0
    return len(services.evaluate_dirty_accounts(tenant).fired)


@shared_task(acks_late=True, **LIMITS)
def sweep_dirty_accounts() -> int:
    """Beat, every 30 s: one evaluation task per tenant with dirty accounts (debounce = the beat period)."""
    from upgrades.rules import selectors

    tenant_ids = selectors.tenants_with_dirty_accounts()
    for tenant_id in tenant_ids:
        evaluate_dirty_accounts.delay(tenant_id)
    return len(tenant_ids)


@shared_task(acks_late=True, **LIMITS)
def evaluate_time_based_rules(tenant_id: int) -> int:
    from accounts.models import Tenant
    from upgrades.rules import services

    tenant = Tenant.objects.filter(pk=tenant_id).first()
    if tenant is None:
        return 0
    return len(services.evaluate_rules(tenant).fired)


@shared_task(acks_late=True, **LIMITS)
def daily_sweep() -> int:
    """Beat, daily: every tenant's live rules over all its accounts (trial ends, renewals, inactivity
    and usage falls change with time alone, without any new event)."""
    from upgrades.rules import selectors

    tenant_ids = selectors.tenants_with_live_rules()
    for tenant_id in tenant_ids:
        evaluate_time_based_rules.delay(tenant_id)
    for tenant_id in selectors.tenants_with_stale_signals():  # also where no rule is live any more
        expire_stale_signals.delay(tenant_id)
    return len(tenant_ids)


@shared_task(acks_late=True, **LIMITS)
def expire_stale_signals(tenant_id: int) -> int:
    """Open signals past their age expire (idempotent: a rerun finds none left to expire)."""
    from accounts.models import Tenant
    from accounts.tenancy import tenant_context
    from upgrades.rules import services

    tenant = Tenant.objects.filter(pk=tenant_id).first()
    if tenant is None:
        return 0
    with tenant_context(tenant):
        return services.expire_stale_signals(tenant)
