"""The first paid subscription, bought from a free (or unbilled) licence: one per plan change, ever."""

from __future__ import annotations

from accounts.models import Tenant
from accounts.services import Actor
from billing.errors import BillingErrorCode, Conflict, stripe_errors_translated
from billing.models import License, PlanChange, PlanChangeKind, PlanChangeState
from billing.services.licenses import set_stripe_customer
from billing.services.plan_changes.confirmation import cancel_plan_change
from billing.services.plan_changes.discounts import plan_change_coupon
from billing.services.plan_changes.settlement import reconcile_plan_change
from billing.services.stripe_accounts import stripe_for
from billing.stripe_client import ItemChange, ItemTarget, StripeGateway, Subscription

PLAN_CHANGE_METADATA_KEY = "tierwise_plan_change"


def _ensure_customer(tenant: Tenant, gateway: StripeGateway, license: License) -> str:
    account = license.account
    contact = account.contacts.order_by("pk").first()
    customer = gateway.create_customer(
        email=contact.email if contact else "",
        name=account.name,
        metadata={"tierwise_account": account.external_id},
        idempotency_key=f"tw-{tenant.pk}-customer-{account.pk}",
    )
    set_stripe_customer(tenant, license=license, customer_id=customer.id)
    return license.stripe_customer_id


def _create_subscription(
    gateway: StripeGateway, plan_change: PlanChange, license: License, changes: list[ItemChange]
) -> Subscription:
    """The first paid subscription (from a free licence): one per plan change, ever.

    The create call carries the plan change's own idempotency key, so a retried task replays
    Stripe's first answer; past Stripe's 24 h replay window the subscription is found again by
    the plan change id in its metadata. `allow_incomplete`: a declined first payment leaves the
    subscription incomplete with its invoice open, and a retry pays that invoice.
    """
    if plan_change.stripe_subscription_id:
        return gateway.retrieve_subscription(plan_change.stripe_subscription_id)
    if plan_change.attempts > 0 or plan_change.payment_attempts > 0:
        existing = gateway.find_subscription(
            customer_id=license.stripe_customer_id,
            metadata_key=PLAN_CHANGE_METADATA_KEY,
            metadata_value=str(plan_change.pk),
        )
        if existing is not None:
            return existing
    return gateway.create_subscription(
        customer_id=license.stripe_customer_id,
        idempotency_key=plan_change.idempotency_key,
        items=[ItemTarget(c.price_id or "", c.quantity or 1) for c in changes if not c.deleted],
        metadata={"tierwise_account": license.account.external_id, PLAN_CHANGE_METADATA_KEY: str(plan_change.pk)},
        payment_behavior="allow_incomplete",
        coupon_id=plan_change_coupon(plan_change.tenant, gateway, plan_change),
    )


def _supersede_unpaid_new_subscriptions(tenant: Tenant, *, license: License, actor: Actor) -> None:
    """A new quote replaces an earlier first purchase whose payment failed: its open invoice is voided and its
    incomplete subscription ended, so the customer cannot end up paying for two subscriptions."""
    for earlier in PlanChange.objects.for_tenant(tenant).filter(
        license=license, kind=PlanChangeKind.NEW, state=PlanChangeState.FAILED
    ):
        if not earlier.stripe_subscription_id and earlier.attempts and license.stripe_customer_id:
            # It failed without an answer (Stripe unreachable): its create call may have gone through after all.
            with stripe_errors_translated():
                found = stripe_for(tenant).find_subscription(
                    customer_id=license.stripe_customer_id,
                    metadata_key=PLAN_CHANGE_METADATA_KEY,
                    metadata_value=str(earlier.pk),
                )
            if found is not None:
                PlanChange.objects.filter(pk=earlier.pk, stripe_subscription_id="").update(
                    stripe_subscription_id=found.id, stripe_invoice_id=found.latest_invoice_id or ""
                )
                earlier = reconcile_plan_change(tenant, plan_change_id=earlier.pk, via="reconcile")
                if earlier.state == PlanChangeState.SETTLED:
                    raise Conflict(
                        "An earlier purchase for this licence went through; ask for a new quote.",
                        code=BillingErrorCode.CHANGE_IN_FLIGHT,
                    )
        cancel_plan_change(tenant, plan_change=earlier, actor=actor, reason="Superseded by a new quote")
