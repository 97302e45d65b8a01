"""Celery tasks: load by id, call one service. All idempotent, acks_late, enqueued on commit."""

from __future__ import annotations

import logging

from celery import shared_task

from accounts.models import Tenant
from billing.stripe_client import StripeUnavailable

log = logging.getLogger(__name__)
# One Stripe step per task: a minute is plenty (each call times out after 20 s and retries twice); the hard
# limit stays far below the broker's visibility timeout, so a task is never redelivered while it runs.
# A task killed mid-way leaves its state row as it was, and a rerun sends the same idempotency keys.
STEP_LIMITS = {"soft_time_limit": 60, "time_limit": 90}
# Beat sweeps stop where their soft limit finds them (every row they touch is committed on its own);
# the next run carries on.
SWEEP_LIMITS = {"soft_time_limit": 120, "time_limit": 180}
STRIPE_RETRY = {
    **STEP_LIMITS,
    "autoretry_for": (StripeUnavailable,),
    "retry_backoff": 2,
    "retry_backoff_max": 120,
    "retry_jitter": True,
    "max_retries": 6,
}


@shared_task(acks_late=True, bind=True, **STRIPE_RETRY)
def submit_plan_change(self, tenant_id: int, plan_change_id: int) -> str:
    from billing.services import plan_changes

    tenant = Tenant.objects.get(pk=tenant_id)
    try:
        return plan_changes.submit_plan_change(tenant, plan_change_id=plan_change_id).state
    except StripeUnavailable as exc:
        if self.request.retries >= self.max_retries:
            # Give up visibly; a later retry reuses the same idempotency key, so it cannot charge twice.
            return plan_changes.give_up_plan_change(tenant, plan_change_id=plan_change_id, message=exc.message).state
        raise


@shared_task(acks_late=True, bind=True, **STRIPE_RETRY)
def retry_plan_change_payment(self, tenant_id: int, plan_change_id: int) -> str:
    from billing.services import plan_changes

    tenant = Tenant.objects.get(pk=tenant_id)
    try:
        return plan_changes.retry_plan_change_payment(tenant, plan_change_id=plan_change_id).state
    except StripeUnavailable as exc:
        if self.request.retries >= self.max_retries:
            return plan_changes.give_up_plan_change(tenant, plan_change_id=plan_change_id, message=exc.message).state
        raise


@shared_task(acks_late=True, **STRIPE_RETRY)
def reconcile_plan_change(tenant_id: int, plan_change_id: int) -> str:
    from billing.services import plan_changes

    tenant = Tenant.objects.get(pk=tenant_id)
    return plan_changes.reconcile_plan_change(tenant, plan_change_id=plan_change_id, via="reconcile").state


@shared_task(acks_late=True, **STRIPE_RETRY)
def process_webhook_event(tenant_id: int, event_pk: int) -> str:
    from billing.services import webhooks

    tenant = Tenant.objects.get(pk=tenant_id)
    return webhooks.process_webhook_event(tenant, event_pk=event_pk).state


@shared_task(acks_late=True, **SWEEP_LIMITS)
def sync_stripe_catalog() -> int:
    """Beat: fan out one sync per tenant that has Stripe keys."""
    from accounts.tenancy import each_tenant
    from billing.models import StripeAccount

    count = 0
    for tenant in each_tenant():  # row-level security: each tenant's settings row is read inside that tenant
        if StripeAccount.objects.for_tenant(tenant).exclude(secret_key_encrypted="").exists():
            sync_stripe_catalog_for_tenant.delay(tenant.pk)
            count += 1
    return count


@shared_task(acks_late=True, **STRIPE_RETRY)
def sync_stripe_catalog_for_tenant(tenant_id: int) -> dict:
    from billing.services.catalog_sync import sync_stripe_catalog as sync
    from billing.services.stripe_accounts import stripe_for

    tenant = Tenant.objects.get(pk=tenant_id)
    report = sync(tenant, gateway=stripe_for(tenant))
    return {"created": report.created, "deactivated": report.deactivated, "renamed": report.renamed}


@shared_task(acks_late=True, **SWEEP_LIMITS)
def expire_license_grants() -> int:
    """Beat: end trials and CSM grants past their end (the graceful sunset)."""
    from billing.services.licenses import expire_grants

    return expire_grants()


@shared_task(acks_late=True, **SWEEP_LIMITS)
def apply_due_plan_changes() -> int:
    """Beat: scheduled downgrades reach Stripe before the period end and the licence at it."""
    from billing.services.plan_changes import apply_due_plan_changes as apply

    return apply()


@shared_task(acks_late=True, **SWEEP_LIMITS)
def reconcile_stale_plan_changes() -> int:
    """Beat: changes whose webhook never came or whose task died are looked at again."""
    from billing.services.plan_changes import reconcile_stale_plan_changes as reconcile

    return reconcile()


@shared_task(acks_late=True, **SWEEP_LIMITS)
def retry_webhook_events() -> dict:
    """Beat: Stripe events still `received` or `failed` are processed again with backoff; after 3 days, given up."""
    from billing.services.webhooks import retry_webhook_events as retry

    return retry()


@shared_task(acks_late=True, **SWEEP_LIMITS)
def renew_due_license_terms() -> int:
    """Beat: multi-year commitments that ended renew for another term, with the loyalty discount."""
    from billing.services.licenses import renew_due_terms

    return renew_due_terms()


@shared_task(acks_late=True, **STRIPE_RETRY)
def sync_term_schedule(tenant_id: int, license_id: int) -> str:
    """A ramped term's subscription schedule in Stripe matches the licence (made, redrawn or released)."""
    from billing.services.licenses.term_ramp import sync_term_schedule as sync

    return sync(Tenant.objects.get(pk=tenant_id), license_id=license_id)


@shared_task(acks_late=True, **SWEEP_LIMITS)
def sync_missing_term_schedules() -> int:
    """Beat: ramped terms whose schedule was never recorded (a lost task, Stripe down) are scheduled."""
    from accounts.tenancy import each_tenant
    from billing.services.licenses.term_ramp import licenses_missing_a_schedule

    count = 0
    for tenant in each_tenant():
        for license_id in licenses_missing_a_schedule(tenant):
            sync_term_schedule.delay(tenant.pk, license_id)
            count += 1
    return count
