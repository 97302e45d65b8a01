"""A new licence for an account that has none."""

from __future__ import annotations

from datetime import datetime

from django.db import transaction
from django.utils import timezone

from accounts.models import CustomerAccount, Tenant
from accounts.services import Actor, record_audit, snapshot
from billing.errors import BillingErrorCode, Conflict, InvalidInput
from billing.models import License, LicenseStatus
from billing.proration import add_interval
from billing.selectors import latest_addon_prices
from billing.services.licenses.money import compute_mrr
from billing.services.licenses.records import LICENSE_AUDIT_FIELDS, _clean, announce, record_change
from catalog.models import AddOn, GovernanceState, Price, Tier

# --- Provisioning ---------------------------------------------------------------------------------


def _check_price(tenant: Tenant, price: Price, *, field: str = "price") -> None:
    if price.tenant_id != tenant.pk or price.tier_id is None:
        raise InvalidInput("Invalid input.", details={field: ["Not a tier price of this tenant."]})
    if price.state != GovernanceState.PUBLISHED:
        raise InvalidInput(
            "Invalid input.",
            code=BillingErrorCode.PRICE_NOT_PUBLISHED,
            details={field: ["Only published prices can be sold."]},
        )


@transaction.atomic
def provision_license(
    tenant: Tenant,
    *,
    account: CustomerAccount,
    price: Price | None,
    seats: int,
    actor: Actor,
    tier: Tier | None = None,
    status: str = LicenseStatus.ACTIVE,
    period_start: datetime | None = None,
    term_years: int = 1,
    addons: list[AddOn] = (),  # type: ignore[assignment]
    stripe_customer_id: str = "",
    stripe_subscription_id: str = "",
    stripe_subscription_item_id: str = "",
    reason: str = "",
    reference: str = "",
) -> License:
    """A new licence for an account that has none (a sale recorded, a free plan, an import).

    A free tier may have no price at all: give `tier` and no `price`; it bills nothing.
    """
    if account.tenant_id != tenant.pk:
        raise InvalidInput("Invalid input.", details={"account": ["Not an account of this tenant."]})
    if price is not None:
        _check_price(tenant, price)
        tier = price.tier
    elif tier is None or tier.tenant_id != tenant.pk or not tier.is_free or tier.state != GovernanceState.PUBLISHED:
        raise InvalidInput(
            "Invalid input.",
            details={"price": ["A price is needed unless the tier is a published free tier of this tenant."]},
        )
    if License.objects.for_tenant(tenant).filter(account=account).exists():
        raise Conflict("This account already has a licence.", code=BillingErrorCode.CHANGE_IN_FLIGHT)
    start = period_start or timezone.now()
    interval = price.interval if price is not None else "month"
    license = License(
        tenant=tenant,
        account=account,
        tier=tier,
        price=price,
        seats=seats,
        interval=interval,
        term_years=term_years,
        current_period_start=start,
        current_period_end=add_interval(start, interval),
        commitment_ends_at=add_interval(start, "year", term_years) if term_years > 1 else None,
        status=status,
        currency=price.currency if price is not None else tier.currency,
        stripe_customer_id=stripe_customer_id,
        stripe_subscription_id=stripe_subscription_id,
        stripe_subscription_item_id=stripe_subscription_item_id,
    )
    addon_prices = latest_addon_prices(tenant, addons=addons, interval=interval)
    license.mrr = compute_mrr(price=price, seats=seats, addon_prices=addon_prices)
    _clean(license)
    license.save()
    if addons:
        license.addons.set(addons)
    record_change(
        license,
        kind="new",
        before={},
        actor=actor,
        reason=reason or "Licence provisioned",
        reference=reference,
        mrr_before=0,
        effective_at=start,
    )
    record_audit(
        tenant, actor=actor, action="license.created", obj=license, after=snapshot(license, LICENSE_AUDIT_FIELDS)
    )
    announce(license)
    return license
