"""The customer's (or staff's) decisions on a quote: confirm it, retry a failed payment, or cancel it."""

from __future__ import annotations

from django.db import IntegrityError, transaction
from django.utils import timezone

from accounts.models import Tenant
from accounts.services import Actor, record_audit
from billing.errors import BillingErrorCode, Conflict, stripe_errors_translated
from billing.models import License, LicenseStatus, PlanChange, PlanChangeKind, PlanChangeState
from billing.services.plan_changes.common import _lock, quote_conflict
from billing.services.plan_changes.discounts import restore_subscription_discount
from billing.services.stripe_accounts import stripe_for


def _refuse_if_license_moved(tenant: Tenant, plan_change: PlanChange, *, active_only: bool) -> None:
    """Confirm and retry go ahead only on the licence the quote was made from, and only while it is not held.

    The licence row is locked, so a settlement or a hold cannot slip in between this check and the write.
    """
    license = License.objects.for_tenant(tenant).select_for_update().get(pk=plan_change.license_id)
    conflict = quote_conflict(plan_change, license)
    if conflict is not None:
        code, message = conflict
        raise Conflict(
            message,
            code=BillingErrorCode.QUOTE_STALE
            if code == BillingErrorCode.QUOTE_STALE
            else BillingErrorCode.LICENSE_NOT_ACTIVE,
        )
    if active_only and license.status not in (LicenseStatus.ACTIVE, LicenseStatus.TRIALING):
        raise Conflict("Only an active licence can change plan.", code=BillingErrorCode.LICENSE_NOT_ACTIVE)


@transaction.atomic
def confirm_plan_change(tenant: Tenant, *, plan_change: PlanChange, actor: Actor) -> PlanChange:
    """The customer said yes: commit the change, then (on commit) hand it to Stripe."""
    plan_change = _lock(tenant, plan_change.pk)
    if plan_change.state != PlanChangeState.QUOTED:
        if plan_change.state in (
            PlanChangeState.PENDING,
            PlanChangeState.SCHEDULED,
            PlanChangeState.SUBMITTED,
            PlanChangeState.SETTLED,
        ):
            return plan_change  # confirming twice is the same as once
        raise Conflict(
            f"This change is {plan_change.get_state_display().lower()}.", code=BillingErrorCode.INVALID_STATE
        )
    if plan_change.quote_expires_at <= timezone.now():
        raise Conflict("The quote has expired; ask for a new one.", code=BillingErrorCode.QUOTE_EXPIRED)
    _refuse_if_license_moved(tenant, plan_change, active_only=True)
    scheduled = plan_change.effective_at is not None
    plan_change.state = PlanChangeState.SCHEDULED if scheduled else PlanChangeState.PENDING
    plan_change.idempotency_key = f"tw-{tenant.pk}-plan-change-{plan_change.pk}"
    try:
        with transaction.atomic():
            plan_change.save(update_fields=["state", "idempotency_key", "updated_at"])
    except IntegrityError as exc:  # the one-in-flight constraint: another change was confirmed first
        raise Conflict(
            "Another change for this licence is in progress.", code=BillingErrorCode.CHANGE_IN_FLIGHT
        ) from exc
    record_audit(
        tenant,
        actor=actor,
        action="plan_change.confirmed",
        obj=plan_change,
        after={"state": plan_change.state, "idempotency_key": plan_change.idempotency_key},
    )
    if not scheduled:
        _enqueue_submit(tenant.pk, plan_change.pk)
    return plan_change


def _enqueue_submit(tenant_id: int, plan_change_id: int) -> None:
    from billing import tasks

    transaction.on_commit(lambda: tasks.submit_plan_change.delay(tenant_id, plan_change_id))


def _enqueue_resubmit(tenant_id: int, plan_change_id: int) -> None:
    from billing import tasks

    transaction.on_commit(lambda: tasks.retry_plan_change_payment.delay(tenant_id, plan_change_id))


@transaction.atomic
def retry_plan_change(tenant: Tenant, *, plan_change: PlanChange, actor: Actor) -> PlanChange:
    """After the customer fixed their card: try the payment again (the same invoice; never a second one)."""
    plan_change = _lock(tenant, plan_change.pk)
    if plan_change.state != PlanChangeState.FAILED:
        if plan_change.state in (PlanChangeState.PENDING, PlanChangeState.SUBMITTED, PlanChangeState.SETTLED):
            return plan_change
        raise Conflict(
            f"This change is {plan_change.get_state_display().lower()}.", code=BillingErrorCode.INVALID_STATE
        )
    if plan_change.failure_code == "quote_expired":
        raise Conflict("Stripe discarded this change; ask for a new quote.", code=BillingErrorCode.QUOTE_EXPIRED)
    _refuse_if_license_moved(tenant, plan_change, active_only=False)
    plan_change.state = PlanChangeState.PENDING
    plan_change.payment_attempts += 1
    try:
        with transaction.atomic():
            plan_change.save(update_fields=["state", "payment_attempts", "updated_at"])
    except IntegrityError as exc:
        raise Conflict(
            "Another change for this licence is in progress.", code=BillingErrorCode.CHANGE_IN_FLIGHT
        ) from exc
    record_audit(
        tenant,
        actor=actor,
        action="plan_change.retried",
        obj=plan_change,
        after={"payment_attempt": plan_change.payment_attempts},
    )
    _enqueue_resubmit(tenant.pk, plan_change.pk)
    return plan_change


def cancel_plan_change(tenant: Tenant, *, plan_change: PlanChange, actor: Actor, reason: str = "") -> PlanChange:
    """Withdraw a quote, a scheduled downgrade or a failed change (voiding its unpaid invoice in Stripe)."""
    plan_change = PlanChange.objects.for_tenant(tenant).get(pk=plan_change.pk)
    if plan_change.state in (PlanChangeState.PENDING, PlanChangeState.SUBMITTED):
        raise Conflict("The change is with Stripe right now; wait for its result.", code=BillingErrorCode.INVALID_STATE)
    if plan_change.state in (PlanChangeState.SETTLED, PlanChangeState.CANCELED):
        return plan_change
    if plan_change.state == PlanChangeState.FAILED and plan_change.stripe_invoice_id:
        with stripe_errors_translated():
            void_unpaid_stripe_objects(tenant, plan_change)
    with transaction.atomic():
        locked = _lock(tenant, plan_change.pk)
        if locked.state in (PlanChangeState.SETTLED, PlanChangeState.CANCELED):
            return locked
        locked.state = PlanChangeState.CANCELED
        locked.failure_message = (reason or locked.failure_message)[:300]
        locked.save(update_fields=["state", "failure_message", "updated_at"])
        record_audit(tenant, actor=actor, action="plan_change.canceled", obj=locked, after={"reason": reason})
    return locked


def void_unpaid_stripe_objects(tenant: Tenant, plan_change: PlanChange) -> None:
    """Void the change's open invoice and end its never-paid first subscription, each once (keyed by the change).

    Raises the gateway's errors; the caller translates them (or lets a task retry).
    """
    gateway = stripe_for(tenant)
    if plan_change.stripe_invoice_id:
        invoice = gateway.retrieve_invoice(plan_change.stripe_invoice_id)
        if invoice.status == "open":
            gateway.void_invoice(invoice.id or "", idempotency_key=f"{plan_change.idempotency_key}-void")
    if plan_change.kind == PlanChangeKind.NEW and plan_change.stripe_subscription_id:
        subscription = gateway.retrieve_subscription(plan_change.stripe_subscription_id)
        if subscription.status == "incomplete":  # never paid: nothing of the customer's ends with it
            gateway.cancel_subscription(subscription.id, idempotency_key=f"{plan_change.idempotency_key}-cancel")
    if plan_change.attempts:  # it put its own coupon on the subscription: the earlier discount comes back
        restore_subscription_discount(tenant, gateway, plan_change)
