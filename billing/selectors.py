"""Reads for billing. Every query starts from `for_tenant`."""

from __future__ import annotations

from django.db.models import QuerySet
from django.utils import timezone

from accounts.models import CustomerAccount, Tenant
from billing.errors import NotFound
from billing.models import (
    License,
    LicenseChange,
    LicenseGrant,
    LicenseStatus,
    PlanChange,
    PlanChangeState,
    StripeAccount,
    StripePrice,
)

# Statuses in which a licence grants its entitlements (past_due keeps access while Stripe retries).
HOLDING_STATUSES = (LicenseStatus.ACTIVE, LicenseStatus.TRIALING, LicenseStatus.PAST_DUE)


def get_license_for_tenant(tenant: Tenant, license_id: int) -> License:
    found = License.objects.for_tenant(tenant).select_related("account", "tier", "price").filter(pk=license_id).first()
    if found is None:
        raise NotFound("No such licence.")
    return found


def get_license_for_account(tenant: Tenant, account: CustomerAccount) -> License | None:
    return License.objects.for_tenant(tenant).select_related("tier", "price").filter(account=account).first()


def get_plan_change_for_tenant(tenant: Tenant, plan_change_id: int) -> PlanChange:
    found = (
        PlanChange.objects.for_tenant(tenant)
        .select_related("license", "account", "target_price", "from_price")
        .filter(pk=plan_change_id)
        .first()
    )
    if found is None:
        raise NotFound("No such plan change.")
    return found


def list_plan_changes(
    tenant: Tenant, *, account: CustomerAccount | None = None, state: str | None = None
) -> QuerySet[PlanChange]:
    qs = PlanChange.objects.for_tenant(tenant).select_related("account", "target_price", "from_price")
    if account is not None:
        qs = qs.filter(account=account)
    if state is not None:
        qs = qs.filter(state=state)
    return qs


def open_plan_change(tenant: Tenant, license: License) -> PlanChange | None:
    return (
        PlanChange.objects.for_tenant(tenant)
        .filter(
            license=license, state__in=[PlanChangeState.PENDING, PlanChangeState.SCHEDULED, PlanChangeState.SUBMITTED]
        )
        .first()
    )


def list_license_changes(tenant: Tenant, *, account: CustomerAccount | None = None) -> QuerySet[LicenseChange]:
    qs = LicenseChange.objects.for_tenant(tenant)
    return qs.filter(account=account) if account is not None else qs


def active_grants(tenant: Tenant, account: CustomerAccount, *, at=None) -> QuerySet[LicenseGrant]:
    at = at or timezone.now()
    return (
        LicenseGrant.objects.for_tenant(tenant)
        .select_related("tier", "addon")
        .filter(account=account, starts_at__lte=at, ends_at__gt=at, ended_at__isnull=True)
    )


def stripe_account_for(tenant: Tenant) -> StripeAccount | None:
    return StripeAccount.objects.for_tenant(tenant).first()


def stripe_price_for(tenant: Tenant, price_id: int) -> StripePrice | None:
    return StripePrice.objects.for_tenant(tenant).filter(price_id=price_id).first()


def count_license_holders(tenant: Tenant, tier_ids: list[int]) -> int:
    """Active licences holding any of these tier rows (registered with catalog.hooks for retirement checks)."""
    return License.objects.for_tenant(tenant).filter(tier_id__in=tier_ids, status__in=HOLDING_STATUSES).count()
