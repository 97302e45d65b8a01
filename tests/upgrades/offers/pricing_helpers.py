"""Test data for the pricing tests: the billing test catalog, a licence with exact dates, a policy,
and recommendation-shaped inputs (SimpleNamespace with the engine's attributes, so these tests do
not depend on the engine's module)."""

from __future__ import annotations

import datetime
from types import SimpleNamespace

from django.utils import timezone

from billing.models import License
from billing.services.licenses import compute_mrr
from catalog.models import DiscountPolicy, GovernanceState, Price, Tier
from tests.billing.factories import Catalog, make_catalog

UTC = datetime.UTC


def at(*args: int) -> datetime.datetime:
    return datetime.datetime(*args, tzinfo=UTC)


def pricing_catalog(tenant) -> Catalog:
    """Team 29.00 / 290.00 per seat < Business 99.00 / 990.00 < Scale 199.00 / 1,990.00; SSO 5.00 / 50.00."""
    catalog = make_catalog(tenant)
    now = timezone.now()
    scale = Tier.objects.create(
        tenant=tenant,
        product=catalog.product,
        key="scale",
        name="Scale",
        rank=9,
        state=GovernanceState.PUBLISHED,
        published_at=now,
        is_anchor=True,
    )
    catalog.tiers["scale"] = scale
    for interval, amount in (("month", 19900), ("year", 199000)):
        catalog.prices[f"scale-{interval}"] = Price.objects.create(
            tenant=tenant,
            tier=scale,
            key=f"scale-{interval}",
            interval=interval,
            amount=amount,
            state=GovernanceState.PUBLISHED,
            published_at=now,
        )
    return catalog


def licence(
    account,
    price: Price,
    *,
    seats: int = 3,
    start: datetime.datetime,
    end: datetime.datetime,
    addon_prices: list[Price] = (),  # type: ignore[assignment]
    subscription: str = "sub_test",
    **fields,
) -> License:
    row = License.objects.create(
        tenant_id=account.tenant_id,
        account=account,
        tier=price.tier,
        price=price,
        seats=seats,
        interval=price.interval,
        current_period_start=start,
        current_period_end=end,
        currency=price.currency,
        mrr=compute_mrr(price=price, seats=seats, addon_prices=list(addon_prices)),
        stripe_subscription_id=subscription,
        **fields,
    )
    if addon_prices:
        row.addons.set([p.addon for p in addon_prices])
    return row


def policy(tenant, **fields) -> DiscountPolicy:
    fields.setdefault("term_rules", [{"years": 2, "percent": "10"}, {"years": 3, "percent": "15"}])
    fields.setdefault("volume_rules", [{"min_seats": 3, "max_seats": 9, "percent": "5"}])
    fields.setdefault("cap_percent", 20)
    return DiscountPolicy.objects.create(
        tenant=tenant,
        key="policy",
        name="Policy",
        state=GovernanceState.PUBLISHED,
        published_at=timezone.now(),
        **fields,
    )


def candidate(catalog: Catalog, tier: str, *, interval: str = "month", addons: tuple[str, ...] = (), kind="tier"):
    addon_rows = tuple(catalog.addons[a] for a in addons)
    return SimpleNamespace(
        kind=kind,
        key=tier if kind == "tier" else "+".join(addons),
        tier=catalog.tiers[tier],
        addons=addon_rows,
        bundle=None,
        tier_price=catalog.prices[f"{tier}-{interval}"],
        addon_prices=tuple(catalog.prices[f"{a}-{interval}"] for a in addons),
        changes={"gained": ["sso"], "lost": [], "limits": []},
        monthly_amount=0,
    )


EVIDENCE = {
    "sentence": "You used 92% of your 10,000 API calls.",
    "model": {"name": "least_squares_weekly_trend", "inputs": {}},
    "meters": [
        {
            "meter": "api_calls",
            "feature": "api_calls",
            "unit": "API calls",
            "used": 9200,
            "limit": 10000,
            "projected": 14000,
            "days_near_limit": 5,
            "window_days": 30,
        }
    ],
    "signal": None,
}


def recommendation(catalog: Catalog, tier: str = "business", *, anchor: str | None = "scale", interval="month", **kw):
    return SimpleNamespace(
        target_kind="tier",
        target_key=tier,
        candidate=candidate(catalog, tier, interval=interval, **kw),
        anchor=candidate(catalog, anchor, interval=interval) if anchor else None,
        evidence=EVIDENCE,
        holding={},
        alternatives=[],
    )
