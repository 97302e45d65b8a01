"""Offers with the snapshot shapes the engine and pricing write (DESIGN.md, upgrades/offers/pricing), for the
admin tests: the pages render what is stored, so the rows are written directly here."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from django.utils import timezone

from accounts.models import CustomerAccount
from upgrades.offers.models import Offer, OfferSettings, OfferState
from upgrades.offers.services.lifecycle import transition_offer

PATHS: dict[str, list[str]] = {
    OfferState.DRAFT: [],
    OfferState.AWAITING_REVIEW: [OfferState.AWAITING_REVIEW],
    OfferState.SENT: [OfferState.SENT],
    OfferState.VIEWED: [OfferState.SENT, OfferState.VIEWED],
    OfferState.WITHDRAWN: [OfferState.SENT, OfferState.WITHDRAWN],
}


def option(key: str, interval: str, amount: int, monthly: int, saving: dict | None = None) -> dict[str, Any]:
    return {"key": key, "interval": interval, "term_years": 1, "tier": "business", "tier_name": "Business",
            "addons": [], "seats": 5, "price_ids": [1], "list_amount": amount, "amount": amount,
            "monthly_equivalent": monthly, "saving": saving, "discount": None}  # fmt: skip


def make_offer(
    account: CustomerAccount,
    settings: OfferSettings,
    *,
    state: str = OfferState.SENT,
    target_key: str = "business",
    discount_percent: str = "0",
    approval_needed: bool = False,
    created_by_label: str = "engine",
) -> Offer:
    now = timezone.now()
    offer = Offer.objects.create(
        tenant_id=account.tenant_id,
        account=account,
        settings_version=settings,
        target_kind="tier",
        target_key=target_key,
        holding={
            "tier": "team",
            "tier_name": "Team",
            "tier_version": 1,
            "price": {"id": 1, "amount": 2900, "interval": "month"},
            "seats": 5,
            "addons": [],
            "monthly_amount": 14_500,
        },  # fmt: skip
        evidence={
            "sentence": "API calls reached 95% of the Team limit on 6 of the last 7 days; at this pace they pass "
            "50,000 on 24 Dec 2026.",
            "model": {"name": "linear", "inputs": {"window_days": 7}},
            "meters": [
                {
                    "meter": "api_calls",
                    "feature": "API calls",
                    "unit": "calls",
                    "used": 47_500,
                    "limit": 50_000,
                    "projected": 61_000,
                    "days_near_limit": 6,
                    "window_days": 7,
                }
            ],  # fmt: skip
            "signal": None,
        },
        options=[
            option("business-month", "month", 7900, 7900),
            option("business-year", "year", 79_000, 6583, {"amount": 15_800, "percent": "16.67", "versus": "monthly"}),
        ],
        recommended_option="business-year",
        anchor={**option("enterprise-year", "year", 199_000, 16_583), "tier_name": "Enterprise"},
        discount={
            "percent": discount_percent,
            "amount": 7900 if discount_percent != "0" else 0,
            "explanation": "Launch month: 10 % off the first year.",
            "within_policy": not approval_needed,
            "variant": "launch10",
        },  # fmt: skip
        discount_approval_needed=approval_needed,
        quote={
            "lines": [
                {
                    "description": "Unused time on Team (5 seats)",
                    "amount": -1450,
                    "period_start": "2026-12-02T00:00:00Z",
                    "period_end": "2026-12-17T00:00:00Z",
                },
                {
                    "description": "Business annual (5 seats)",
                    "amount": 79_000,
                    "period_start": "2026-12-02T00:00:00Z",
                    "period_end": "2027-12-02T00:00:00Z",
                },
            ],
            "amount_due_now": 77_550,
            "next_renewal_amount": 79_000,
            "next_renewal_at": "2027-12-02T00:00:00Z",
            "currency": "USD",
            "source": "estimate",
            "quoted_at": now.isoformat(),
            "option": "business-year",
        },  # fmt: skip
        quoted_at=now,
        roi={
            "sentence": "Business pays for itself in 4 months.",
            "monthly_value": 21_000,
            "payback_months": "3.8",
            "drivers": [{"label": "Ops time saved", "value": 18_000, "sentence": "95 calls a day at 0.002 h"}],
        },  # fmt: skip
        currency="USD",
        expires_at=now + timedelta(days=21),
        created_by_label=created_by_label,
        variant="launch10" if discount_percent != "0" else "",
    )
    for step in PATHS[state]:
        transition_offer(offer.tenant, offer=offer, to_state=step, actor="engine", now=now)
    offer.refresh_from_db()
    return offer
