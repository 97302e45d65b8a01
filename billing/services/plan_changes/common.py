"""Shared by every step of a plan change: the row lock, and whether the licence is still what was quoted."""

from __future__ import annotations

from accounts.models import Tenant
from billing.errors import BillingErrorCode
from billing.models import License, LicenseStatus, PlanChange

# What a plan change may no longer go ahead on (the code is stored in `failure_code` when it is abandoned).
LICENSE_HELD = "license_held"
LICENSE_ENDED = "license_ended"


def _lock(tenant: Tenant, plan_change_id: int) -> PlanChange:
    return (
        PlanChange.objects.for_tenant(tenant)
        .select_for_update(of=("self",))
        .select_related("license", "target_price", "target_price__tier", "from_price")
        .get(pk=plan_change_id)
    )


def matches_quote(plan_change: PlanChange, license: License) -> bool:
    """The licence still holds exactly what the quote was made from: price, seats, add-ons and subscription."""
    return (
        license.price_id == plan_change.from_price_id
        and license.seats == plan_change.from_seats
        and license.stripe_subscription_id == plan_change.from_subscription_id
        and set(license.addons.values_list("pk", flat=True))
        == set(plan_change.from_addons.values_list("pk", flat=True))
    )


def quote_conflict(plan_change: PlanChange, license: License) -> tuple[str, str] | None:
    """Why this change may no longer be applied to this licence, as (code, message); None when it may.

    A held licence (suspended or revoked) and an ended one keep what they hold and an MRR of zero until
    restored; a licence that changed since the quote (another change settled, staff edited it) would have
    the quote's arithmetic applied to something it was not made from.
    """
    if license.held_from_status or license.status == LicenseStatus.SUSPENDED:
        return LICENSE_HELD, "The licence is suspended or revoked; restore it before changing its plan."
    if license.status == LicenseStatus.CANCELED:
        return LICENSE_ENDED, "The licence has ended; start a new plan instead."
    if not matches_quote(plan_change, license):
        return (
            BillingErrorCode.QUOTE_STALE.value,
            "The licence changed since this quote was made; ask for a new quote.",
        )
    return None
