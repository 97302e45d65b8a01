"""Pricing of offers: options with savings and policy discounts, the quote, and the value (ROI).

    price_offer(tenant, *, license, recommendation, settings, variant="", now=None) -> OfferPricing
    estimate_quote(*, license, option, now=None) -> dict        # billing's own proration, source "estimate"
    quote_from_plan_change(plan_change) -> dict                  # billing's stored Stripe preview, source "stripe"
    quote_is_stale(quote, *, now, max_age) -> bool
    compute_roi(tenant, *, account, settings, evidence, option, inputs=None) -> dict

An option: {"key" ("team-month", "team-year", "team-year-2y"), "interval", "term_years", "tier",
"tier_name", "addons": [keys], "seats", "price_ids": [tier price, add-on prices...], "lines" (each
price: unit amount, quantity, amount), "list_amount" and "amount" (per interval, before and after the
discount), "monthly_equivalent", "monthly_change" (against the licence's MRR), "saving": {"amount",
"percent", "versus": "monthly"} | null, "discount": {"percent", "amount", "explanation",
"within_policy", "variant", ...} | null, "changes", "anchor": bool, "label", "currency"}.
Amounts are integer minor units; percentages strings with two places.
"""

from __future__ import annotations

from upgrades.offers.pricing.offer import OfferPricing, PricingBatch, price_offer
from upgrades.offers.pricing.quotes import estimate_quote, quote_from_plan_change, quote_is_stale
from upgrades.offers.pricing.roi import compute_roi

__all__ = [
    "OfferPricing",
    "PricingBatch",
    "compute_roi",
    "estimate_quote",
    "price_offer",
    "quote_from_plan_change",
    "quote_is_stale",
]
