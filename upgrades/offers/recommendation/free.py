"""Accounts with no licence row hold the tenant's default free tier (catalog.selectors.get_default_tier):
the prime audience of a first upgrade. The engine treats them as holding an unsaved licence on that
tier — no price, one seat, monthly, the tenant's currency, nothing billed — so candidates, the quote
(a "new" subscription from today) and the evidence come out as for any other holding.

The licence is never saved here: buying goes through billing (its first-purchase path), which makes
the licence row.
"""

from __future__ import annotations

import datetime

from accounts.models import CustomerAccount, Tenant
from billing.models import License
from catalog.models import Tier


def default_free_tier(tenant: Tenant) -> Tier | None:
    from catalog.selectors import get_default_tier

    return get_default_tier(tenant)


def free_tier_licence(tenant: Tenant, *, account: CustomerAccount, tier: Tier, now: datetime.datetime) -> License:
    """What an account without a licence row holds: the free tier (an unsaved licence, pk None)."""
    return License(
        tenant=tenant,
        account=account,
        tier=tier,
        price=None,
        seats=1,
        interval="month",
        currency=getattr(tenant, "default_currency", "") or "USD",
        current_period_start=now,
        current_period_end=now,
        mrr=0,
    )


def is_free_tier_licence(license: License) -> bool:
    return license.pk is None
