"""Shared by every step of a plan change: the row lock and how a Stripe failure reaches the caller."""

from __future__ import annotations

from accounts.models import Tenant
from billing.errors import BillingErrorCode, BillingUnavailable, InvalidInput
from billing.models import PlanChange
from billing.stripe_client import StripeError


def unavailable(exc: StripeError) -> BillingUnavailable:
    return BillingUnavailable(
        "Stripe could not be reached; nothing was changed. Try again shortly.", details={"stripe": exc.message}
    )


def rejected(exc: StripeError) -> InvalidInput:
    return InvalidInput(
        "Stripe refused the request.",
        code=BillingErrorCode.STRIPE_REJECTED,
        details={"stripe": exc.message, "stripe_code": exc.code},
    )


def _lock(tenant: Tenant, plan_change_id: int) -> PlanChange:
    return (
        PlanChange.objects.for_tenant(tenant)
        .select_for_update(of=("self",))
        .select_related("license", "target_price", "target_price__tier", "from_price")
        .get(pk=plan_change_id)
    )
