"""Reads for billing. Every query starts from `for_tenant`."""

from __future__ import annotations

from collections.abc import Iterable

from django.db.models import QuerySet, Sum
from django.utils import timezone

from accounts.models import CustomerAccount, Tenant
from billing.errors import NotFound
from billing.models import (
    License,
    LicenseChange,
    LicenseGrant,
    LicenseStatus,
    PlanChange,
    PlanChangeItem,
    PlanChangeState,
    StripeAccount,
    StripePrice,
)
from billing.stripe_client import ItemChange
from catalog.models import AddOn, DiscountPolicy, GovernanceState, Price, Tier

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


def latest_tier_price(tenant: Tenant, *, tier: Tier, interval: str, currency: str) -> Price | None:
    """What the tier sells at now on `interval` in `currency`: its newest published price (None: not sold so)."""
    return (
        Price.objects.for_tenant(tenant)
        .filter(tier=tier, interval=interval, currency=currency, state=GovernanceState.PUBLISHED)
        .order_by("-version", "-id")
        .first()
    )


def latest_addon_prices(tenant: Tenant, *, addons: Iterable[AddOn], interval: str) -> list[Price]:
    """The price each add-on sells at now on `interval`: its newest published version (none: left out).

    The one answer to "what does this add-on cost", for provisioning, quoting (the current side of a
    change) and renewal alike; in the add-ons' own order.
    """
    addon_list = list(addons)
    latest: dict[int, Price] = {}
    for price in (
        Price.objects.for_tenant(tenant)
        .filter(addon__in=[a.pk for a in addon_list], interval=interval, state=GovernanceState.PUBLISHED)
        .order_by("addon_id", "-version", "-id")
    ):
        latest.setdefault(price.addon_id, price)
    return [latest[a.pk] for a in addon_list if a.pk in latest]


def license_addon_prices(tenant: Tenant, license: License) -> list[Price]:
    """What the licence's add-ons cost now on its interval (see `latest_addon_prices`)."""
    return latest_addon_prices(tenant, addons=license.addons.order_by("pk"), interval=license.interval)


def current_discount_policy(tenant: Tenant) -> DiscountPolicy | None:
    """The tenant's discount policy in force: the one catalog publishes (catalog.selectors decides which)."""
    from catalog.selectors import get_discount_policy

    return get_discount_policy(tenant)


def plan_change_items(tenant: Tenant, plan_change: PlanChange) -> list[ItemChange]:
    """The subscription items the change sends to Stripe, in order, exactly as stored with the quote."""
    return [
        ItemChange(
            item_id=row.item_id or None,
            price_id=row.stripe_price_id or None,
            quantity=row.quantity,
            deleted=row.deleted,
        )
        for row in PlanChangeItem.objects.for_tenant(tenant).filter(plan_change=plan_change).order_by("position")
    ]


def stripe_account_for(tenant: Tenant) -> StripeAccount | None:
    return StripeAccount.objects.for_tenant(tenant).first()


def stripe_price_for(tenant: Tenant, price_id: int) -> StripePrice | None:
    return StripePrice.objects.for_tenant(tenant).filter(price_id=price_id).first()


def count_license_holders(tenant: Tenant, tier_ids: list[int]) -> int:
    """Active licences holding any of these tier rows (registered with catalog.hooks for retirement checks)."""
    return License.objects.for_tenant(tenant).filter(tier_id__in=tier_ids, status__in=HOLDING_STATUSES).count()


def mrr_of_license_holders(tenant: Tenant, tier_ids: list[int]) -> dict[str, int]:
    """MRR per currency of the licences `count_license_holders` counts (catalog's review shows it)."""
    rows = License.objects.for_tenant(tenant).filter(tier_id__in=tier_ids, status__in=HOLDING_STATUSES)
    return {
        c: int(m or 0)
        for c, m in rows.order_by().values("currency").annotate(m=Sum("mrr")).values_list("currency", "m")
    }
