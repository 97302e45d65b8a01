"""Task bodies that send a confirmed change (or its payment retry) to Stripe, then reconcile its answer."""

from __future__ import annotations

from django.db import transaction
from django.utils import timezone

from accounts.models import Tenant
from billing.models import PlanChange, PlanChangeState
from billing.selectors import plan_change_items
from billing.services.plan_changes.common import _lock
from billing.services.plan_changes.discounts import put_discount_on_subscription
from billing.services.plan_changes.first_purchase import _create_subscription
from billing.services.plan_changes.settlement import (
    abandon_if_license_moved,
    mark_plan_change_failed,
    reconcile_plan_change,
)
from billing.services.stripe_accounts import stripe_for
from billing.stripe_client import StripeDeclined, StripeRejected, StripeUnavailable


def submit_plan_change(tenant: Tenant, *, plan_change_id: int) -> PlanChange:
    """Send the confirmed change to Stripe (task body). Safe to run again: same key, same body, same answer.

    Raises StripeUnavailable for the task to retry; every other outcome is written down.
    """
    plan_change = PlanChange.objects.for_tenant(tenant).select_related("license", "target_price").get(pk=plan_change_id)
    if plan_change.state not in (PlanChangeState.PENDING, PlanChangeState.SUBMITTED):
        return plan_change
    gateway = stripe_for(tenant)
    changes = plan_change_items(tenant, plan_change)
    license = plan_change.license
    try:
        # Held, ended or changed since the quote: nothing is sent (or anything Stripe holds is voided).
        abandoned = abandon_if_license_moved(tenant, plan_change)
        if abandoned is not None:
            return abandoned
        PlanChange.objects.filter(pk=plan_change.pk).update(attempts=plan_change.attempts + 1)
        if license.stripe_subscription_id:
            put_discount_on_subscription(tenant, gateway, plan_change)  # its invoice is drawn up with the coupon
            subscription = gateway.change_subscription(
                subscription_id=license.stripe_subscription_id,
                changes=changes,
                proration_date=plan_change.proration_date,
                proration_behavior="always_invoice",
                idempotency_key=plan_change.idempotency_key,
            )
        else:
            subscription = _create_subscription(gateway, plan_change, license, changes)
    except StripeUnavailable as exc:
        _note_failure(tenant, plan_change.pk, code="stripe_unavailable", message=exc.message, final=False)
        raise
    except StripeDeclined as exc:
        return mark_plan_change_failed(tenant, plan_change_id=plan_change.pk, code=exc.code, message=exc.message)
    except StripeRejected as exc:
        return mark_plan_change_failed(
            tenant, plan_change_id=plan_change.pk, code=exc.code or "stripe_rejected", message=exc.message
        )
    with transaction.atomic():
        locked = _lock(tenant, plan_change.pk)
        if locked.state in (PlanChangeState.PENDING, PlanChangeState.SUBMITTED):
            locked.state = PlanChangeState.SUBMITTED
            locked.stripe_invoice_id = subscription.latest_invoice_id or ""
            locked.stripe_subscription_id = subscription.id
            locked.save(update_fields=["state", "stripe_invoice_id", "stripe_subscription_id", "updated_at"])
        # The licence learns its new subscription id only at settlement: an unpaid (incomplete) first
        # subscription is not the licence's, and its expiry must not end the free plan.
    return reconcile_plan_change(tenant, plan_change_id=plan_change.pk, via="sync")


def _note_failure(tenant: Tenant, plan_change_id: int, *, code: str, message: str, final: bool) -> None:
    PlanChange.objects.for_tenant(tenant).filter(pk=plan_change_id).update(
        failure_code=code[:64], failure_message=message[:300], updated_at=timezone.now()
    )
    if final:
        mark_plan_change_failed(tenant, plan_change_id=plan_change_id, code=code, message=message)


def give_up_plan_change(tenant: Tenant, *, plan_change_id: int, message: str) -> PlanChange:
    """The task's retries are spent (Stripe unreachable): fail visibly; a retry later reuses the same key."""
    return mark_plan_change_failed(tenant, plan_change_id=plan_change_id, code="stripe_unavailable", message=message)


def retry_plan_change_payment(tenant: Tenant, *, plan_change_id: int) -> PlanChange:
    """Task body for a retry: pay the open invoice of the pending update, or re-send the first call."""
    plan_change = PlanChange.objects.for_tenant(tenant).get(pk=plan_change_id)
    if plan_change.state != PlanChangeState.PENDING:
        return plan_change
    if not plan_change.stripe_invoice_id:
        return submit_plan_change(tenant, plan_change_id=plan_change.pk)
    gateway = stripe_for(tenant)
    try:
        abandoned = abandon_if_license_moved(tenant, plan_change)
        if abandoned is not None:
            return abandoned
        invoice = gateway.retrieve_invoice(plan_change.stripe_invoice_id)
        if invoice.status == "open":
            gateway.pay_invoice(
                invoice.id or "", idempotency_key=f"{plan_change.idempotency_key}-pay-{plan_change.payment_attempts}"
            )
    except StripeDeclined as exc:
        return mark_plan_change_failed(tenant, plan_change_id=plan_change.pk, code=exc.code, message=exc.message)
    except StripeRejected as exc:
        return mark_plan_change_failed(
            tenant, plan_change_id=plan_change.pk, code=exc.code or "stripe_rejected", message=exc.message
        )
    PlanChange.objects.filter(pk=plan_change.pk, state=PlanChangeState.PENDING).update(
        state=PlanChangeState.SUBMITTED, updated_at=timezone.now()
    )
    return reconcile_plan_change(tenant, plan_change_id=plan_change.pk, via="retry")
