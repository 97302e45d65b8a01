"""Offers for the lifecycle and API tests, made as the engine makes them (options, anchor, discount, an
estimated quote from `prorate`), written directly so these tests don't depend on the engine."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from django.utils import timezone

from accounts.models import CustomerAccount, Tenant
from billing.models import License
from billing.proration import PriceLine, prorate
from catalog.models import Price
from tests.billing.factories import Catalog, make_catalog, make_license
from tests.upgrades.offers.conftest import make_live_settings
from upgrades.offers.models import Offer, OfferSettings, OfferState
from upgrades.offers.selectors import get_live_settings


@dataclass
class Holding:
    tenant: Tenant
    account: CustomerAccount
    catalog: Catalog
    license: License


def holding(tenant: Tenant, account: CustomerAccount, *, price_key: str = "team-month", seats: int = 3) -> Holding:
    """A published catalog and an account holding `price_key` (no Stripe: for tests that never pay)."""
    catalog = make_catalog(tenant)
    return Holding(tenant, account, catalog, make_license(account, catalog.prices[price_key], seats=seats))


def option_for(price: Price, *, seats: int, monthly_price: Price | None = None, addons: tuple[Price, ...] = ()) -> dict:
    """The option dict of offers.md: what the customer would hold and pay, per interval."""
    tier = price.tier
    amount = price.amount * seats + sum(a.amount * seats for a in addons)
    months = 12 if price.interval == "year" else 1
    saving = None
    if monthly_price is not None and price.interval == "year":
        yearly_at_monthly = monthly_price.amount * seats * 12
        saved = yearly_at_monthly - amount
        saving = {"amount": saved, "percent": f"{saved * 100 / yearly_at_monthly:.2f}", "versus": "monthly"}
    return {
        "key": f"{tier.key}-{price.interval}",
        "interval": price.interval,
        "term_years": 1,
        "tier": tier.key,
        "tier_name": tier.name,
        "addons": [a.addon.key for a in addons],
        "seats": seats,
        "price_ids": [price.pk, *(a.pk for a in addons)],
        "list_amount": amount,
        "amount": amount,
        "monthly_equivalent": amount // months,
        "saving": saving,
        "discount": None,
    }


def estimate(license: License, option: dict, *, at: datetime | None = None) -> dict[str, Any]:
    """The engine's estimate of the quote (billing's `prorate`), source "estimate"."""
    at = (at or timezone.now()).replace(microsecond=0)
    new_price = Price.objects.get(pk=option["price_ids"][0])
    proration = prorate(
        current=PriceLine(license.price.amount, license.seats, license.interval, license.currency),
        new=PriceLine(new_price.amount, option["seats"], new_price.interval, new_price.currency),
        period_start=license.current_period_start,
        period_end=license.current_period_end,
        at=at,
    )
    return {
        "lines": [
            {
                "description": line.description,
                "amount": line.amount,
                "period_start": line.period_start.isoformat(),
                "period_end": line.period_end.isoformat(),
            }
            for line in proration.lines
        ],
        "amount_due_now": proration.amount_due_now,
        "next_renewal_amount": proration.next_renewal_amount,
        "next_renewal_at": proration.next_renewal_at.isoformat(),
        "currency": license.currency,
        "source": "estimate",
        "quoted_at": at.isoformat(),
        "option": option["key"],
    }


def make_offer(
    held: Holding,
    *,
    state: str = str(OfferState.SENT),
    target: str = "business",
    expires_in: timedelta = timedelta(days=21),
    settings: OfferSettings | None = None,
    **fields: Any,
) -> Offer:
    """An offer of `target` (monthly and annual options, the anchor, an estimate of the monthly quote)."""
    settings = settings or get_live_settings(held.tenant) or make_live_settings(held.tenant)
    prices = held.catalog.prices
    seats = held.license.seats
    monthly = option_for(prices[f"{target}-month"], seats=seats)
    yearly = option_for(prices[f"{target}-year"], seats=seats, monthly_price=prices[f"{target}-month"])
    now = timezone.now()
    values: dict[str, Any] = {
        "tenant": held.tenant,
        "account": held.account,
        "settings_version": settings,
        "state": state,
        "target_kind": "tier",
        "target_key": target,
        "holding": {
            "tier": {"key": held.license.tier.key, "version": held.license.tier.version},
            "price": {"id": held.license.price_id, "amount": held.license.price.amount, "interval": "month"},
            "seats": seats,
            "addons": [],
        },
        "evidence": {
            "sentence": "You used 92% of your 100k API calls on 5 of the last 7 days; at this pace you will need "
            "about 140k next month.",
            "model": {"name": "linear_trend", "inputs": {"window_days": 28}},
            "meters": [
                {
                    "meter": "api_calls",
                    "feature": "api",
                    "unit": "calls",
                    "used": 92000,
                    "limit": 100000,
                    "projected": 140000,
                    "days_near_limit": 5,
                    "window_days": 7,
                }
            ],
            "signal": None,
        },
        "options": [monthly, yearly],
        "recommended_option": monthly["key"],
        "anchor": None,
        "discount": None,
        "quote": estimate(held.license, monthly),
        "quoted_at": now,
        "roi": {"monthly_value": 42000, "currency": "USD", "drivers": []},
        "currency": held.license.currency,
        "expires_at": now + expires_in,
        "sent_at": now if state not in (OfferState.DRAFT, OfferState.AWAITING_REVIEW) else None,
    }
    values.update(fields)
    return Offer.objects.create(**values)
